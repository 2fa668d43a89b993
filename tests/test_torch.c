// test_torch.c: the generated training code and the runtime's SGD against
// PyTorch's numbers for the same network (after llm.c's test_gpt2.c).
// tests/torch_reference.py wrote tests/data/torch_ref.bin (inputs, labels,
// initial parameters and BN state, and what PyTorch computed from them, in
// float32); this loads it into the generated network (NET, from NET_HEADER:
// mnist14k_nodrop, models/mnist14k without dropout, or torch_kinds, the
// newer layer kinds) and repeats PyTorch's run:
//   train forward -> loss, backward -> gradients, BN running statistics;
//   SGD(lr 0.01, momentum 0.9, nesterov, weight decay 1e-4) step;
//   train forward/backward again -> loss, gradients; SGD step -> parameters;
//   eval forward -> log-probabilities.
// Both sides are float32 with different summation orders, so the bounds are
// relative to each quantity's largest magnitude.
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sgd.h"

#ifndef NET_HEADER
#define NET_HEADER "mnist14k_nodrop_train.h"
#define NET mnist14k_nodrop_net
#define REF_DEFAULT "tests/data/torch_ref.bin"
#endif
#include NET_HEADER

#define MAX_TENSORS 256

typedef struct Ref {
  uint32_t B, C, H, W, classes, n_params, n_state;
  uint32_t n_tensors, tensor[MAX_TENSORS]; // sizes of the parameter tensors, in order
  uint8_t *y;
  float *x, *params0, *state0, *grads1, *state1, *grads2, *state2, *params2, *logprobs;
  float loss1, loss2;
} Ref;

// What the C side computed, following the same steps.
typedef struct Got {
  double loss1, loss2;
  float *grads1, *state1, *grads2, *state2, *params2, *logprobs;
} Got;

static Ref ref;
static Got got;
static int loaded;

static int read_f32(FILE *f, float *dst, size_t n) {
  return fread(dst, sizeof(float), n, f) == n ? 0 : -1;
}

static float *alloc_f32(size_t n) {
  return calloc(n ? n : 1, sizeof(float));
}

static int load(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "test_torch: cannot open %s\n", path);
    return -1;
  }
  char magic[8];
  uint32_t hdr[8];
  int ok = fread(magic, 1, 8, f) == 8 && memcmp(magic, "CNNTORCH", 8) == 0 &&
           fread(hdr, 4, 8, f) == 8 && hdr[0] == 2;
  if (ok) {
    ref.B = hdr[1], ref.C = hdr[2], ref.H = hdr[3], ref.W = hdr[4];
    ref.classes = hdr[5], ref.n_params = hdr[6], ref.n_state = hdr[7];
    ok = ref.B >= 1 && (int)ref.B <= NET.batch &&
         (int)ref.C == NET.in_c && (int)ref.H == NET.in_h &&
         (int)ref.W == NET.in_w && (int)ref.classes == NET.classes &&
         ref.n_params == NET.n_params && ref.n_state == NET.n_state;
  }
  if (!ok) {
    fprintf(stderr, "test_torch: %s: bad header or shapes differ from the network\n", path);
    fclose(f);
    return -1;
  }
  uint64_t total = 0;
  ok = fread(&ref.n_tensors, 4, 1, f) == 1 && ref.n_tensors >= 1 && ref.n_tensors <= MAX_TENSORS &&
       fread(ref.tensor, 4, ref.n_tensors, f) == ref.n_tensors;
  for (uint32_t t = 0; ok && t < ref.n_tensors; t++)
    total += ref.tensor[t];
  if (!ok || total != ref.n_params) {
    fprintf(stderr, "test_torch: %s: bad tensor table\n", path);
    fclose(f);
    return -1;
  }
  size_t B = ref.B, np = ref.n_params, ns = ref.n_state, nx = B * ref.C * ref.H * ref.W;
  uint32_t y32[256];
  ok = B <= 256 && fread(y32, 4, B, f) == B;
  ref.y = malloc(B);
  for (size_t i = 0; ok && i < B; i++) {
    ok = y32[i] < ref.classes;
    ref.y[i] = (uint8_t)y32[i];
  }
  ref.x = alloc_f32(nx), ref.params0 = alloc_f32(np), ref.state0 = alloc_f32(ns);
  ref.grads1 = alloc_f32(np), ref.state1 = alloc_f32(ns), ref.grads2 = alloc_f32(np);
  ref.state2 = alloc_f32(ns), ref.params2 = alloc_f32(np), ref.logprobs = alloc_f32(B * ref.classes);
  ok = ok && !read_f32(f, ref.x, nx) && !read_f32(f, ref.params0, np) && !read_f32(f, ref.state0, ns) &&
       !read_f32(f, &ref.loss1, 1) && !read_f32(f, ref.grads1, np) && !read_f32(f, ref.state1, ns) &&
       !read_f32(f, &ref.loss2, 1) && !read_f32(f, ref.grads2, np) && !read_f32(f, ref.state2, ns) &&
       !read_f32(f, ref.params2, np) && !read_f32(f, ref.logprobs, B * ref.classes) && fgetc(f) == EOF;
  fclose(f);
  if (!ok)
    fprintf(stderr, "test_torch: %s: truncated or malformed\n", path);
  return ok ? 0 : -1;
}

static float *copy_f32(const cnn_real *src, size_t n) {
  float *d = alloc_f32(n);
  for (size_t i = 0; i < n; i++)
    d[i] = (float)src[i];
  return d;
}

// Loads the reference and runs the whole C side once; the tests compare.
static int run_all(void) {
  const char *path = getenv("TORCH_REF");
  if (load(path && *path ? path : REF_DEFAULT) != 0)
    return -1;
  cnn_net *net = &NET;
  printf("%s: kernels %s\n", net->name, net->kernels());
  const int n = (int)ref.B;
  cnn_rng rng;
  cnn_rng_seed(&rng, 1, 0);
  memcpy(net->params, ref.params0, ref.n_params * sizeof(float));
  memcpy(net->state, ref.state0, ref.n_state * sizeof(float));
  cnn_sgd opt;
  char err[256];
  if (cnn_sgd_init(&opt, net->n_params, 0.01, 0.9, 0, 1e-4, 1, err, sizeof err) != 0) {
    fprintf(stderr, "test_torch: %s\n", err);
    return -1;
  }
  got.loss1 = net->forward(ref.x, ref.y, n, 1, &rng);
  net->backward();
  got.grads1 = copy_f32(net->grads, net->n_params);
  got.state1 = copy_f32(net->state, net->n_state);
  cnn_sgd_step(&opt, net->params, net->grads);

  got.loss2 = net->forward(ref.x, ref.y, n, 1, &rng);
  net->backward();
  got.grads2 = copy_f32(net->grads, net->n_params);
  got.state2 = copy_f32(net->state, net->n_state);
  cnn_sgd_step(&opt, net->params, net->grads);
  got.params2 = copy_f32(net->params, net->n_params);

  net->forward(ref.x, NULL, n, 0, &rng);
  got.logprobs = copy_f32(net->logprobs, (size_t)n * ref.classes);
  cnn_sgd_free(&opt);
  loaded = 1;
  return 0;
}

// A missing or bad reference fails every test (not just the suite's setup,
// which CUnit would not count as a failure).
static int suite_init(void) {
  run_all();
  return 0;
}

static int suite_clean(void) {
  float *fs[] = {ref.x, ref.params0, ref.state0, ref.grads1, ref.state1, ref.grads2, ref.state2,
                 ref.params2, ref.logprobs, got.grads1, got.state1, got.grads2, got.state2,
                 got.params2, got.logprobs};
  for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++)
    free(fs[i]);
  free(ref.y);
  return 0;
}

// Largest |a - b| over n values, with the largest |b| (the scale) and where.
static double max_diff(const float *a, const float *b, size_t n, double *scale, size_t *at) {
  double d = 0, s = 0;
  *at = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)a[i] - (double)b[i]);
    if (e > d)
      d = e, *at = i;
    if (fabs((double)b[i]) > s)
      s = fabs((double)b[i]);
  }
  if (scale)
    *scale = s;
  return d;
}

// |got - want| <= tol * max|want| over the array.
static void check_rel(const char *what, const float *g, const float *want, size_t n, double tol) {
  double scale;
  size_t at;
  double d = max_diff(g, want, n, &scale, &at);
  printf("\n  %-28s max abs err %.3e (rel to max %.3e: %.3e) at [%zu]: %.9g vs torch %.9g ", what, d,
         scale, scale > 0 ? d / scale : d, at, g[at], want[at]);
  CU_ASSERT(d <= tol * scale);
}

#define REQUIRE_LOADED() CU_ASSERT_FATAL(loaded)

static void check_loss(const char *what, double g, float want) {
  double rel = fabs(g - (double)want) / fabs((double)want);
  printf("\n  %-28s %.9g vs torch %.9g, rel err %.3e ", what, g, (double)want, rel);
  CU_ASSERT(rel <= 1e-5);
}

static void test_loss1(void) {
  REQUIRE_LOADED();
  check_loss("loss, step 1", got.loss1, ref.loss1);
}

// Every gradient tensor, each relative to its own largest value, so that a
// small tensor (a BN's gamma) cannot hide under the largest one.
static void check_grads(const char *what, const float *g, const float *want) {
  size_t off = 0;
  double worst = 0;
  size_t worst_t = 0;
  double gscale;
  size_t gat;
  max_diff(g, want, ref.n_params, &gscale, &gat);
  for (size_t t = 0; t < ref.n_tensors; t++) {
    double scale;
    size_t at;
    double d = max_diff(g + off, want + off, ref.tensor[t], &scale, &at);
    if (scale < 1e-4 * gscale) {
      // Zero by construction (a conv's bias before a BatchNorm): float noise
      // on both sides, so held to 1e-6 of the largest gradient.
      CU_ASSERT(d <= 1e-6 * gscale);
    } else {
      double rel = d / scale;
      if (rel > worst)
        worst = rel, worst_t = t;
      CU_ASSERT(d <= 3e-5 * scale);
    }
    off += ref.tensor[t];
  }
  CU_ASSERT_EQUAL_FATAL(off, ref.n_params);
  printf("\n  %-28s worst tensor #%zu: max abs err / its max |g| = %.3e ", what, worst_t, worst);
  check_rel(what, g, want, ref.n_params, 2e-5);
}

static void test_grads1(void) {
  REQUIRE_LOADED();
  check_grads("gradients, step 1", got.grads1, ref.grads1);
}

// Momentum 0.1 and the unbiased batch variance. The update itself (state1 -
// state0) is compared, relative to its own size, so that a wrong convention
// cannot hide under the running values' larger magnitude.
static void check_state_update(const char *what, const float *g, const float *want) {
  size_t ns = ref.n_state;
  float *dg = alloc_f32(ns), *dw = alloc_f32(ns);
  for (size_t i = 0; i < ns; i++) {
    dg[i] = g[i] - ref.state0[i];
    dw[i] = want[i] - ref.state0[i];
  }
  check_rel(what, g, want, ns, 2e-6);
  char buf[64];
  snprintf(buf, sizeof buf, "%s, update", what);
  check_rel(buf, dg, dw, ns, 2e-5);
  free(dg);
  free(dw);
}

static void test_running_stats1(void) {
  REQUIRE_LOADED();
  check_state_update("BN running stats, step 1", got.state1, ref.state1);
}

static void test_loss2(void) {
  REQUIRE_LOADED();
  check_loss("loss, step 2", got.loss2, ref.loss2);
}

static void test_grads2(void) {
  REQUIRE_LOADED();
  check_grads("gradients, step 2", got.grads2, ref.grads2);
}

static void test_running_stats2(void) {
  REQUIRE_LOADED();
  check_state_update("BN running stats, step 2", got.state2, ref.state2);
}

// The parameters after two SGD steps, and the two steps' total change
// (params2 - params0) relative to its own size: it is ~1e-3 of the weights.
static void test_params2(void) {
  REQUIRE_LOADED();
  size_t np = ref.n_params;
  check_rel("params after 2 SGD steps", got.params2, ref.params2, np, 1e-6);
  float *dg = alloc_f32(np), *dw = alloc_f32(np);
  for (size_t i = 0; i < np; i++) {
    dg[i] = got.params2[i] - ref.params0[i];
    dw[i] = ref.params2[i] - ref.params0[i];
  }
  check_rel("params change over 2 steps", dg, dw, np, 1e-4);
  free(dg);
  free(dw);
}

static void test_eval_logprobs(void) {
  REQUIRE_LOADED();
  check_rel("eval log-probs", got.logprobs, ref.logprobs, (size_t)ref.B * ref.classes, 1e-5);
}

void register_tests(void) {
  CU_pSuite s = CU_add_suite("torch", suite_init, suite_clean);
  CU_add_test(s, "train forward loss, step 1", test_loss1);
  CU_add_test(s, "gradients, step 1", test_grads1);
  CU_add_test(s, "BN running mean/var, step 1", test_running_stats1);
  CU_add_test(s, "train forward loss, step 2 (after SGD)", test_loss2);
  CU_add_test(s, "gradients, step 2", test_grads2);
  CU_add_test(s, "BN running mean/var, step 2", test_running_stats2);
  CU_add_test(s, "params after two SGD steps", test_params2);
  CU_add_test(s, "eval log-probs", test_eval_logprobs);
}
