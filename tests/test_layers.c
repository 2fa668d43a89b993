// test_layers.c: the generated layers' forward passes against values worked
// out by hand on tiny nets (tests/gen_testnets.c, emitted into
// build/gradcheck/), compiled in float with -DCNN_EXPOSE_ACT (activations)
// and -DCNN_INPUT_GRAD (the max-pool tie rule shows in the input gradient).
#include <CUnit/CUnit.h>
#include <math.h>
#include <string.h>

#include "tl_bn_train.h"
#include "tl_conv2_train.h"
#include "tl_conv_train.h"
#include "tl_drop_train.h"
#include "tl_lsm_train.h"
#include "tl_pool_train.h"
#include "mnist14k_train.h"

// Float results agree with the hand values to a few ulps of their size.
#define NEAR(a, b) CU_ASSERT(fabs((double)(a) - (double)(b)) <= 1e-5 * (1 + fabs((double)(b))))

// 3x3 conv with bias on a 4x4 ramp (direct path: one input channel).
static void test_conv3x3(void) {
  float *p = tl_conv_net.params;
  for (int j = 0; j < 9; j++) {
    p[j] = (float)(j + 1);  // channel 0: 1..9
    p[9 + j] = 0;
  }
  p[9 + 0] = -1;  // channel 1: -x[oy][ox] + 2 x[oy+1][ox+1] - 1
  p[9 + 4] = 2;
  p[18] = 0.5f;
  p[19] = -1;
  float x[2 * 16];
  for (int j = 0; j < 16; j++)
    x[j] = x[16 + j] = (float)j;
  uint8_t y[2] = {0, 1};
  double loss = tl_conv_net.forward(x, y, 1, 1, NULL);
  const float *a = tl_conv_activation(1);
  // out0 = 45 * (4 oy + ox) + 303 + 0.5; out1 = 4 oy + ox + 9
  const float want[8] = {303.5f, 348.5f, 483.5f, 528.5f, 9, 10, 13, 14};
  for (int j = 0; j < 8; j++)
    NEAR(a[j], want[j]);
  const float *g = tl_conv_activation(2);
  NEAR(g[0], 416);
  NEAR(g[1], 11.5);
  NEAR(tl_conv_net.logprobs[1], -404.5);
  NEAR(loss, 0);
}

// 3x3 conv, stride 2, padding 1, no bias, two input channels (im2col + GEMM).
static void test_conv_stride_pad(void) {
  float *p = tl_conv2_net.params;
  for (int j = 0; j < 18; j++)
    p[j] = j < 9 ? 1.0f : 0.0f;
  p[9 + 4] = 10;  // channel 1: 10 x the centre
  float x[2 * 32];
  for (int j = 0; j < 16; j++) {
    x[j] = 1;            // channel 0: counts the window's in-bounds pixels
    x[16 + j] = (float)j; // channel 1: a ramp
  }
  tl_conv2_net.forward(x, NULL, 1, 0, NULL);
  const float *a = tl_conv2_activation(1);
  NEAR(a[0], 4);
  NEAR(a[1], 26);
  NEAR(a[2], 86);
  NEAR(a[3], 109);
}

// BatchNorm on a known batch: batch statistics, affine, running stats.
static void test_batchnorm(void) {
  cnn_rng r;
  cnn_rng_seed(&r, 1, 1);
  tl_bn_net.init(&r);
  float *p = tl_bn_net.params;  // gamma [2], beta [2]
  p[0] = 2, p[1] = 1, p[2] = 0.5f, p[3] = -1;
  // Channel 0 holds 1..4 in image 0 and 5..8 in image 1; channel 1 is all 3.
  float x[2 * 8];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++) {
      x[i * 8 + j] = (float)(i * 4 + j + 1);
      x[i * 8 + 4 + j] = 3;
    }
  uint8_t y[2] = {0, 1};
  tl_bn_net.forward(x, y, 2, 1, &r);
  const float *a = tl_bn_activation(1);
  // mean 4.5, biased variance 5.25
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++) {
      NEAR(a[i * 8 + j], 2 * (i * 4 + j + 1 - 4.5) / sqrt(5.25 + 1e-5) + 0.5);
      NEAR(a[i * 8 + 4 + j], -1);
    }
  const float *s = tl_bn_net.state;  // running mean [2], running var [2]
  NEAR(s[0], 0.45);
  NEAR(s[1], 0.3);
  NEAR(s[2], 0.9 + 0.1 * 5.25 * 8 / 7);  // the unbiased variance: 1.5
  NEAR(s[3], 0.9);
}

// Eval after training steps uses the running statistics, not the batch's.
static void test_batchnorm_eval(void) {
  cnn_rng r;
  cnn_rng_seed(&r, 1, 1);
  tl_bn_net.init(&r);
  float x[2 * 8];
  for (int j = 0; j < 16; j++)
    x[j] = (float)(j % 8) * 0.5f + (float)(j / 8);
  uint8_t y[2] = {0, 1};
  for (int step = 0; step < 3; step++)
    tl_bn_net.forward(x, y, 2, 1, &r);
  // Image 0 alone: its own statistics would differ from the running ones.
  tl_bn_net.forward(x, y, 1, 0, &r);
  const float *a = tl_bn_activation(1);
  const float *st = tl_bn_net.state, *p = tl_bn_net.params;
  int differs = 0;
  for (int c = 0; c < 2; c++)
    for (int j = 0; j < 4; j++) {
      double v = x[c * 4 + j];
      double want = (v - st[c]) / sqrt(st[2 + c] + 1e-5) * p[c] + p[2 + c];
      NEAR(a[c * 4 + j], want);
      double m = 0, q = 0;
      for (int t = 0; t < 4; t++)
        m += x[c * 4 + t] / 4.0;
      for (int t = 0; t < 4; t++)
        q += (x[c * 4 + t] - m) * (x[c * 4 + t] - m) / 4.0;
      double batch = (v - m) / sqrt(q + 1e-5) * p[c] + p[2 + c];
      differs += fabs(batch - a[c * 4 + j]) > 1e-3;
    }
  CU_ASSERT(differs >= 4);
}

// 2x2 max-pool: the maxima, gap, and a tie's gradient going to the first.
static void test_maxpool_gap(void) {
  const float img[16] = {1, 3, 2, 0, 4, 2, 8, 1, 0, 5, 6, 7, 9, 1, 3, 2};
  float x[2 * 32];
  for (int j = 0; j < 16; j++) {
    x[j] = img[j];
    x[16 + j] = 5;  // channel 1: every window a four-way tie
  }
  uint8_t y[2] = {1, 0};
  tl_pool_net.forward(x, y, 1, 1, NULL);
  const float *a = tl_pool_activation(1);
  NEAR(a[0], 4);
  NEAR(a[1], 8);
  NEAR(a[2], 9);
  NEAR(a[3], 7);
  const float *g = tl_pool_activation(2);
  NEAR(g[0], 7);
  NEAR(g[1], 5);
  tl_pool_net.backward();
  const float *dx = tl_pool_input_grad();
  for (int j = 0; j < 16; j++) {
    int r = j / 4, c = j % 4;
    int first = r % 2 == 0 && c % 2 == 0;
    if (first)
      CU_ASSERT(dx[16 + j] != 0);
    if (!first)
      CU_ASSERT(dx[16 + j] == 0);
  }
  // Channel 0: only the maxima (4 at 4, 8 at 6, 9 at 12, 7 at 11) get gradient.
  for (int j = 0; j < 16; j++)
    CU_ASSERT((dx[j] != 0) == (j == 4 || j == 6 || j == 12 || j == 11));
}

// log-softmax and the mean NLL loss.
static void test_log_softmax(void) {
  float x[6] = {1, 2, 3, 0, 0, 0};
  uint8_t y[2] = {2, 0};
  double loss = tl_lsm_net.forward(x, y, 2, 1, NULL);
  const float *lp = tl_lsm_net.logprobs;
  NEAR(lp[0], -2.40760596444438);
  NEAR(lp[1], -1.40760596444438);
  NEAR(lp[2], -0.40760596444438);
  NEAR(lp[3], -log(3.0));
  NEAR(loss, (0.40760596444438 + log(3.0)) / 2);
}

// Inverted dropout: kept values scaled by 1/(1-p), about 1-p kept, masks
// differ per image and per seed, the same seed repeats, identity in eval.
static void test_dropout(void) {
  static float x[2 * 1600];
  for (int j = 0; j < 3200; j++)
    x[j] = 1 + (float)(j % 7);
  cnn_rng r;
  cnn_rng_seed(&r, 3, 0);
  tl_drop_net.forward(x, NULL, 2, 1, &r);
  const float *a = tl_drop_activation(1);
  static float first[3200];
  memcpy(first, a, sizeof first);
  int kept = 0, same_mask = 0;
  for (int j = 0; j < 3200; j++) {
    CU_ASSERT(a[j] == 0 || a[j] == x[j] * (1.0f / 0.75f));
    kept += a[j] != 0;
    same_mask += j < 1600 && (a[j] != 0) == (a[1600 + j] != 0);
  }
  CU_ASSERT(kept > 0.70 * 3200 && kept < 0.80 * 3200);
  CU_ASSERT(same_mask < 1500);  // image 1 has its own mask
  cnn_rng_seed(&r, 3, 0);
  tl_drop_net.forward(x, NULL, 2, 1, &r);
  CU_ASSERT(memcmp(first, a, sizeof first) == 0);
  tl_drop_net.forward(x, NULL, 2, 1, &r);  // the rng moved on: new masks
  CU_ASSERT(memcmp(first, a, sizeof first) != 0);
  tl_drop_net.forward(x, NULL, 2, 0, &r);
  CU_ASSERT(memcmp(x, a, sizeof x) == 0);
}

// mnist14k in float, under the sanitizers: a step runs, its gradient is
// non-zero, and the same seed gives the same loss and gradient bit for bit.
static void test_mnist14k_step(void) {
  cnn_net *net = &mnist14k_net;
  static float x[64 * 784], g1[14112];
  uint8_t y[64];
  cnn_rng r;
  cnn_rng_seed(&r, 7, 0);
  for (int j = 0; j < 64 * 784; j++)
    x[j] = cnn_rng_uniform(&r) * 2 - 0.4f;
  for (int i = 0; i < 64; i++)
    y[i] = (uint8_t)(i % 10);
  CU_ASSERT_EQUAL(net->n_params, 14112);
  double loss[2];
  for (int run = 0; run < 2; run++) {
    cnn_rng_seed(&r, 11, 0);
    net->init(&r);
    loss[run] = net->forward(x, y, 61, 1, &r);  // a short batch
    net->backward();
    if (run == 0)
      memcpy(g1, net->grads, sizeof g1);
  }
  CU_ASSERT(isfinite(loss[0]) && loss[0] > 1 && loss[0] < 5);
  CU_ASSERT(loss[0] == loss[1]);
  CU_ASSERT(memcmp(g1, net->grads, sizeof g1) == 0);
  double norm = 0;
  for (int j = 0; j < 14112; j++)
    norm += (double)g1[j] * g1[j];
  CU_ASSERT(norm > 0);
}

void register_tests(void) {
  CU_pSuite s = CU_add_suite("layers", NULL, NULL);
  CU_add_test(s, "conv 3x3 bias on 4x4", test_conv3x3);
  CU_add_test(s, "conv 3x3 stride 2 pad 1", test_conv_stride_pad);
  CU_add_test(s, "batchnorm known batch", test_batchnorm);
  CU_add_test(s, "batchnorm eval uses running stats", test_batchnorm_eval);
  CU_add_test(s, "maxpool, gap, first-max gradient", test_maxpool_gap);
  CU_add_test(s, "log_softmax and NLL", test_log_softmax);
  CU_add_test(s, "dropout", test_dropout);
  CU_add_test(s, "mnist14k step, deterministic", test_mnist14k_step);
}
