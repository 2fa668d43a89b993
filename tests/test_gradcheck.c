// test_gradcheck.c: central finite differences in double against the
// generated backward passes. Each net (tests/gen_testnets.c) is emitted into
// build/gradcheck/NAME/ and compiled with -DCNN_REAL=double -DCNN_INPUT_GRAD,
// which keeps the gradient of the input, so every layer's input gradient is
// checked too (through the input of the whole net). The Makefile builds it
// twice: GC_WIDTH 8 on the direct convs' 8-wide kernels, 16 on the 16-wide
// ones (as portable code, so on any CPU).
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc_bn_train.h"
#include "gc_conv2_train.h"
#include "gc_conv_train.h"
#include "gc_dropout_train.h"
#include "gc_fc_train.h"
#include "gc_pool_train.h"
#include "gc_groups_train.h"
#include "gc_rect_train.h"
#include "gc_relu_train.h"
#include "gc_residual2_train.h"
#include "gc_residual_train.h"
#include "gc_same_train.h"
#include "gc_smooth_train.h"
#include "gc_wgrad_train.h"
#include "gc_bnfuse_train.h"
#include "gc_wgrad2_train.h"
#include "gc_valid_train.h"
#include "gc_lanes_train.h"
#include "gc_bnpool_train.h"
#include "gc_bndx_train.h"
#include "mnist14k_train.h"

// Largest relative error seen by each suite, reported at the end.
static double worst_all;

// |a - b| relative to the larger magnitude, with a floor of 1e-4: the
// differences of a double loss near 2 carry ~5e-11 of rounding noise, so
// gradients below the floor are held to an absolute 1e-10 instead (still
// 1e-5 of mnist14k's typical gradients, far below any real backward bug).
static double rel_err(double a, double b) {
  double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
  return fabs(a - b) / (m > 1e-4 ? m : 1e-4);
}

// One training-mode loss with the same dropout masks every time.
static double loss_of(cnn_net *net, const double *x, const uint8_t *y, int n) {
  cnn_rng r;
  cnn_rng_seed(&r, 1234, 7);
  return net->forward(x, y, n, 1, &r);
}

// Fourth-order central difference of the loss in *v with step h.
static double fd4(cnn_net *net, double *v, const double *x, const uint8_t *y, int n, double h) {
  double keep = *v, f[4];
  const double off[4] = {2 * h, h, -h, -2 * h};
  for (int s = 0; s < 4; s++) {
    *v = keep + off[s];
    f[s] = loss_of(net, x, y, n);
  }
  *v = keep;
  return (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h);
}

// Compares one value's backward gradient g with finite differences; a value
// whose differences at h = 1e-5 and 1e-6 disagree sits on a ReLU or max-pool
// kink (or rounds badly) and is skipped.
static double check_one(cnn_net *net, double *v, const double *x, const uint8_t *y, int n, double g,
                        const char *what, size_t j, double worst, int *kinks) {
  double fd = fd4(net, v, x, y, n, 1e-5);
  double e = rel_err(fd, g);
  if (e > 1e-6) {
    double fd2 = fd4(net, v, x, y, n, 1e-6);
    if (rel_err(fd, fd2) > 1e-6 && rel_err(fd2, g) < rel_err(fd, g)) {
      ++*kinks;
      return worst;
    }
    printf("\n  %s %s %zu: fd %.10g backward %.10g", net->name, what, j, fd, g);
  }
  return e > worst ? e : worst;
}

// Checks up to max_p params and max_x inputs (all when the net is smaller)
// of net on n random images; returns the largest relative error.
static double gradcheck(cnn_net *net, const cnn_real *(*input_grad)(void), int n, int max_p, int max_x) {
  cnn_rng r;
  cnn_rng_seed(&r, 99, 3);
  net->init(&r);
  // Move every parameter off its default so that BN's gamma 1, beta 0 are not special.
  for (size_t j = 0; j < net->n_params; j++)
    net->params[j] += 0.4 * (cnn_rng_uniform(&r) - 0.5);
  size_t nx = (size_t)n * net->in_c * net->in_h * net->in_w;
  double *x = malloc(nx * sizeof *x);
  uint8_t *y = malloc((size_t)n);
  double *g = malloc(net->n_params * sizeof *g);
  double *gx = malloc(nx * sizeof *gx);
  for (size_t j = 0; j < nx; j++)
    x[j] = 2.0 * cnn_rng_uniform(&r) - 1.0 + 1e-3 * cnn_rng_uniform(&r);
  for (int i = 0; i < n; i++)
    y[i] = (uint8_t)cnn_rng_below(&r, (uint32_t)net->classes);
  double l0 = loss_of(net, x, y, n);
  CU_ASSERT(isfinite(l0) && l0 > 0);
  net->backward();
  memcpy(g, net->grads, net->n_params * sizeof *g);
  memcpy(gx, input_grad(), nx * sizeof *gx);
  double worst = 0;
  int kinks = 0;
  size_t np = net->n_params < (size_t)max_p ? net->n_params : (size_t)max_p;
  for (size_t t = 0; t < np; t++) {
    size_t j = np == net->n_params ? t : cnn_rng_below(&r, (uint32_t)net->n_params);
    worst = check_one(net, &net->params[j], x, y, n, g[j], "param", j, worst, &kinks);
  }
  size_t nxs = nx < (size_t)max_x ? nx : (size_t)max_x;
  for (size_t t = 0; t < nxs; t++) {
    size_t j = nxs == nx ? t : cnn_rng_below(&r, (uint32_t)nx);
    worst = check_one(net, &x[j], x, y, n, gx[j], "input", j, worst, &kinks);
  }
  // A ReLU or max-pool kink inside the stencil is rare; many would be a bug.
  CU_ASSERT(kinks * 100 <= (int)(np + nxs));
  printf(" [%s: %d kinks skipped]", net->name, kinks);
  printf(" [%s: %zu params, %zu inputs, max rel err %.2e] ", net->name, np, nxs, worst);
  worst_all = worst > worst_all ? worst : worst_all;
  free(x);
  free(y);
  free(g);
  free(gx);
  return worst;
}

// Each small net alone: a full batch and a short one, every value checked.
#define SMALL(NAME)                                                                  \
  static void test_##NAME(void) {                                                    \
    CU_ASSERT(gradcheck(&NAME##_net, NAME##_input_grad, NAME##_net.batch, 1 << 30, 1 << 30) <= 1e-6); \
    CU_ASSERT(gradcheck(&NAME##_net, NAME##_input_grad, NAME##_net.batch - 1, 1 << 30, 1 << 30) <= 1e-6); \
  }
SMALL(gc_conv)
SMALL(gc_conv2)
SMALL(gc_bn)
SMALL(gc_dropout)
SMALL(gc_relu)
SMALL(gc_pool)
SMALL(gc_fc)
SMALL(gc_same)
SMALL(gc_groups)
SMALL(gc_rect)
SMALL(gc_residual)
SMALL(gc_residual2)
SMALL(gc_smooth)
SMALL(gc_bnfuse)
SMALL(gc_valid)
SMALL(gc_lanes)
SMALL(gc_bnpool)

// The weight gradient's padded copies of dy, flat and rows, in groups: a
// sample of the parameters (1,344) and of the inputs, a full batch and a
// short one.
static void test_gc_wgrad(void) {
  CU_ASSERT(gradcheck(&gc_wgrad_net, gc_wgrad_input_grad, gc_wgrad_net.batch, 150, 50) <= 1e-6);
  CU_ASSERT(gradcheck(&gc_wgrad_net, gc_wgrad_input_grad, gc_wgrad_net.batch - 1, 150, 50) <= 1e-6);
}

// Each image's weight gradient summed as vectors of lane sums (large maps),
// 8 wide in rows, 16 wide flat, over groups of two images: a sample of the
// parameters and inputs, a full batch and a short one.
static void test_gc_wgrad2(void) {
  CU_ASSERT(gradcheck(&gc_wgrad2_net, gc_wgrad2_input_grad, gc_wgrad2_net.batch, 120, 40) <= 1e-6);
  CU_ASSERT(gradcheck(&gc_wgrad2_net, gc_wgrad2_input_grad, gc_wgrad2_net.batch - 2, 60, 20) <= 1e-6);
}

// A BatchNorm's input gradient written into the large-map conv's padded
// copies of dy: a sample, a full batch and a short one.
static void test_gc_bndx(void) {
  CU_ASSERT(gradcheck(&gc_bndx_net, gc_bndx_input_grad, gc_bndx_net.batch, 120, 40) <= 1e-6);
  CU_ASSERT(gradcheck(&gc_bndx_net, gc_bndx_input_grad, gc_bndx_net.batch - 2, 60, 20) <= 1e-6);
}

// The build runs the kernels of the width it was built for.
static void test_width(void) {
  char want[16];
  snprintf(want, sizeof want, "%d-wide ", GC_WIDTH);
  printf(" [%s] ", mnist14k_net.kernels());
  CU_ASSERT(strncmp(mnist14k_net.kernels(), want, strlen(want)) == 0);
  CU_ASSERT(strncmp(gc_wgrad2_net.kernels(), want, strlen(want)) == 0);
}

// label_smoothing = eps is torch.nn.CrossEntropyLoss(label_smoothing=eps) on
// the log-probabilities: in training the loss is (1 - eps) * NLL + eps * the
// mean over classes of -log p; evaluation returns the plain NLL. Labels at or
// above the class count are ignored, as in the NLL.
static void test_label_smoothing_loss(void) {
  cnn_net *net = &gc_smooth_net;
  const double eps = net->train->label_smoothing;
  CU_ASSERT_DOUBLE_EQUAL(eps, 0.2, 0);
  cnn_rng r;
  cnn_rng_seed(&r, 11, 2);
  net->init(&r);
  double x[4 * 2 * 5 * 5];
  for (size_t j = 0; j < sizeof x / sizeof x[0]; j++)
    x[j] = 2 * cnn_rng_uniform(&r) - 1;
  const uint8_t y[4] = {0, 3, 255, 1};
  const int C = net->classes;
  for (int training = 0; training < 2; training++) {
    double got = net->forward(x, y, 4, training, &r);
    double want = 0;
    for (int i = 0; i < 4; i++) {
      if (y[i] >= C)
        continue;
      const cnn_real *lp = net->logprobs + i * C;
      double mean = 0;
      for (int c = 0; c < C; c++)
        mean -= lp[c] / C;
      want += training ? (1 - eps) * -lp[y[i]] + eps * mean : -lp[y[i]];
    }
    CU_ASSERT_DOUBLE_EQUAL(got, want / 4, 1e-12);
  }
}

// The whole mnist14k on a short batch of 2: 1,200 random params, 200
// inputs. (Its 11x11 and 9x9 convs compute 8 or 16 images' lanes for 2, so
// a sample costs more than it did before them; gc_lanes checks every value
// of those kernels.)
static void test_mnist14k(void) {
  CU_ASSERT(gradcheck(&mnist14k_net, mnist14k_input_grad, 2, 1200, 200) <= 1e-6);
}

// A dropout net's gradient must change with the mask seed (masks are really used).
static void test_dropout_masks_differ(void) {
  cnn_net *net = &gc_dropout_net;
  cnn_rng r;
  cnn_rng_seed(&r, 5, 5);
  net->init(&r);
  double x[4 * 3 * 4 * 4];
  for (size_t j = 0; j < sizeof x / sizeof x[0]; j++)
    x[j] = cnn_rng_uniform(&r) + 0.5;
  uint8_t y[4] = {0, 1, 2, 0};
  cnn_rng a, b;
  cnn_rng_seed(&a, 1, 1);
  cnn_rng_seed(&b, 2, 1);
  double la = net->forward(x, y, 4, 1, &a);
  double lb = net->forward(x, y, 4, 1, &b);
  double le = net->forward(x, y, 4, 0, &b);
  double le2 = net->forward(x, y, 4, 0, &a);
  CU_ASSERT(la != lb);
  CU_ASSERT(le == le2);
}

void register_tests(void) {
  CU_pSuite s = CU_add_suite("gradcheck", NULL, NULL);
  CU_add_test(s, "the direct convs run the kernels of the width built for", test_width);
  CU_add_test(s, "conv 3x3 stride 2 pad 1 bias", test_gc_conv);
  CU_add_test(s, "conv no bias, relu, conv 2x2 pad 1", test_gc_conv2);
  CU_add_test(s, "batchnorm", test_gc_bn);
  CU_add_test(s, "dropout (fixed seed)", test_gc_dropout);
  CU_add_test(s, "relu", test_gc_relu);
  CU_add_test(s, "maxpool 2/2 and 3/2 pad 1", test_gc_pool);
  CU_add_test(s, "gap, 1x1 conv, BN on 1x1, 1x1 conv", test_gc_fc);
  CU_add_test(s, "stride 2 'same' padding, rectangular kernel and stride", test_gc_same);
  CU_add_test(s, "depthwise, grouped and grouped 1x1 convs", test_gc_groups);
  CU_add_test(s, "10x4-like conv, maxpool 2x1, avgpool, flatten, dense", test_gc_rect);
  CU_add_test(s, "residual: identity, projection, out-of-place body", test_gc_residual);
  CU_add_test(s, "residual on the input, empty shortcut, flatten copy", test_gc_residual2);
  CU_add_test(s, "label smoothing 0.2 (cross-entropy loss, its gradient)", test_gc_smooth);
  CU_add_test(s, "label smoothing: the training loss, the eval NLL", test_label_smoothing_loss);
  CU_add_test(s, "weight gradient on padded copies of dy, flat and rows, grouped", test_gc_wgrad);
  CU_add_test(s, "BatchNorm backward sums in the next conv: plain, keep mask, ReLU", test_gc_bnfuse);
  CU_add_test(s, "weight gradient as vectors of lane sums per image, rows and flat", test_gc_wgrad2);
  CU_add_test(s, "unpadded convs' input gradients on wrapped rows: flat and rows, groups", test_gc_valid);
  CU_add_test(s, "convs with the images as lanes: groups of 3, bias, BN between, short batch", test_gc_lanes);
  CU_add_test(s, "BatchNorm sweep and sums run by the max-pool: dropout and ReLU, ReLU", test_gc_bnpool);
  CU_add_test(s, "BatchNorm dx written into the large-map conv's copies of dy", test_gc_bndx);
  CU_add_test(s, "mnist14k sampled", test_mnist14k);
  CU_add_test(s, "dropout masks follow the rng", test_dropout_masks_differ);
}
