// test_sgd.c: a few steps on known gradients against values worked out by
// hand from torch.optim.SGD's update rule (shown next to each).
#include <CUnit/CUnit.h>
#include <math.h>
#include <string.h>

#include "sgd.h"

#define NEAR(a, b) CU_ASSERT(fabs((double)(a) - (double)(b)) < 1e-6)

// Runs the scalar p through steps with gradients g[] and checks p after each.
static void run(double lr, double mom, double damp, double wd, int nest, float p0,
                const float *g, const double *want, int steps) {
  cnn_sgd o;
  char err[256];
  CU_ASSERT_FATAL(cnn_sgd_init(&o, 1, lr, mom, damp, wd, nest, err, sizeof err) == 0);
  float p = p0;
  for (int i = 0; i < steps; i++) {
    cnn_sgd_step(&o, &p, &g[i]);
    NEAR(p, want[i]);
  }
  CU_ASSERT_EQUAL(o.steps, (uint64_t)steps);
  cnn_sgd_free(&o);
}

static const float G[3] = {1.0f, 0.5f, -0.25f};

// p -= lr*g; with wd: g = 0.5 + 0.01*1 = 0.51, p = 1 - 0.051.
static void test_plain(void) {
  const float g = 0.5f;
  run(0.1, 0, 0, 0, 0, 1.0f, &g, (const double[]){0.95}, 1);
  run(0.1, 0, 0, 0.01, 0, 1.0f, &g, (const double[]){0.949}, 1);
}

// buf: 1 -> 0.9*1+0.5 = 1.4 -> 0.9*1.4-0.25 = 1.01; p: 2-.1, -.14, -.101.
static void test_momentum(void) {
  run(0.1, 0.9, 0, 0, 0, 2.0f, G, (const double[]){1.9, 1.76, 1.659}, 3);
}

// The first step takes g undamped; then buf = 0.9*1 + 0.5*0.5 = 1.15,
// buf = 0.9*1.15 + 0.5*(-0.25) = 0.91.
static void test_dampening(void) {
  run(0.1, 0.9, 0.5, 0, 0, 2.0f, G, (const double[]){1.9, 1.785, 1.694}, 3);
}

// g += 0.9*buf: 1.9, 0.5+1.26 = 1.76, -0.25+0.909 = 0.659.
static void test_nesterov(void) {
  run(0.1, 0.9, 0, 0, 1, 2.0f, G, (const double[]){1.81, 1.634, 1.5681}, 3);
}

// g = 1 + 0.1*2 = 1.2 = buf, p = 1.88; g = 1 + 0.188 = 1.188,
// buf = 1.08 + 1.188 = 2.268, p = 1.88 - 0.2268.
static void test_weight_decay_momentum(void) {
  const float g[2] = {1.0f, 1.0f};
  run(0.1, 0.9, 0, 0.1, 0, 2.0f, g, (const double[]){1.88, 1.6532}, 2);
}

// A schedule changing lr and momentum between steps: step 2 uses lr 0.2,
// momentum 0.5: buf = 0.5*1 + 0.5 = 1, p = 1.9 - 0.2.
static void test_per_step_hyper(void) {
  cnn_sgd o;
  CU_ASSERT_FATAL(cnn_sgd_init(&o, 1, 0.1, 0.9, 0, 0, 0, NULL, 0) == 0);
  float p = 2.0f;
  cnn_sgd_step(&o, &p, &G[0]);
  o.lr = 0.2;
  o.momentum = 0.5;
  cnn_sgd_step(&o, &p, &G[1]);
  NEAR(p, 1.7);
  NEAR(o.buf[0], 1.0);
  cnn_sgd_free(&o);
}

// Saving buf and steps and restoring them continues bit for bit; restoring
// "no buffer" makes the next step a first step again.
static void test_restore(void) {
  enum { N = 257 };
  float p1[N], p2[N], g[N];
  for (int i = 0; i < N; i++) {
    p1[i] = p2[i] = (float)i / 7.0f - 3;
    g[i] = (float)((i * 37) % 11) / 5.0f - 1;
  }
  cnn_sgd a, b;
  CU_ASSERT_FATAL(cnn_sgd_init(&a, N, 0.05, 0.9, 0.1, 1e-3, 0, NULL, 0) == 0);
  CU_ASSERT_FATAL(cnn_sgd_init(&b, N, 0.05, 0.9, 0.1, 1e-3, 0, NULL, 0) == 0);
  cnn_sgd_step(&a, p1, g);
  cnn_sgd_step(&a, p1, g);
  memcpy(p2, p1, sizeof p1);
  cnn_sgd_restore(&b, a.has_buf ? a.buf : NULL, a.steps);
  cnn_sgd_step(&a, p1, g);
  cnn_sgd_step(&b, p2, g);
  CU_ASSERT(memcmp(p1, p2, sizeof p1) == 0);
  CU_ASSERT_EQUAL(b.steps, 3u);
  // no buffer: the step is g itself (undamped): p -= lr*(g + wd*p)
  cnn_sgd_restore(&b, NULL, 0);
  float before = p2[5];
  cnn_sgd_step(&b, p2, g);
  NEAR(p2[5], before - 0.05f * (g[5] + 1e-3f * before));
  cnn_sgd_free(&a);
  cnn_sgd_free(&b);
}

// Hyperparameters torch refuses are refused with a message.
static void test_invalid(void) {
  cnn_sgd o;
  char err[256] = "";
  CU_ASSERT(cnn_sgd_init(&o, 4, 0.1, 0.9, 0.5, 0, 1, err, sizeof err) == -1);
  CU_ASSERT(strstr(err, "nesterov") != NULL);
  err[0] = 0;
  CU_ASSERT(cnn_sgd_init(&o, 4, -0.1, 0.9, 0, 0, 0, err, sizeof err) == -1);
  CU_ASSERT(strstr(err, "lr") != NULL);
  CU_ASSERT(cnn_sgd_init(&o, 4, 0.1, 0, 0, 0, 1, err, sizeof err) == -1);
}

// The suite.
void register_tests(void) {
  CU_pSuite s = CU_add_suite("sgd", NULL, NULL);
  CU_add_test(s, "plain and weight decay", test_plain);
  CU_add_test(s, "momentum", test_momentum);
  CU_add_test(s, "dampening", test_dampening);
  CU_add_test(s, "nesterov", test_nesterov);
  CU_add_test(s, "weight decay + momentum", test_weight_decay_momentum);
  CU_add_test(s, "per-step lr/momentum", test_per_step_hyper);
  CU_add_test(s, "restore", test_restore);
  CU_add_test(s, "invalid", test_invalid);
}
