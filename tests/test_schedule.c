// test_schedule.c: lr and momentum at chosen steps against values worked
// out by hand from PyTorch's StepLR and OneCycleLR (cos) formulas.
#include <CUnit/CUnit.h>
#include <math.h>
#include <string.h>

#include "schedule.h"

#define NEAR(a, b) CU_ASSERT(fabs((a) - (b)) < 1e-12)

// The defaults of the reference run.
static cnn_train_config base(void) {
  cnn_train_config c;
  memset(&c, 0, sizeof c);
  c.epochs = 20;
  c.batch = 64;
  c.lr = 0.01;
  c.momentum = 0.9;
  return c;
}

// Constant: the same at every step.
static void test_constant(void) {
  cnn_train_config c = base();
  double lr, m;
  for (uint64_t s = 0; s < 20000; s += 937) {
    cnn_schedule_at(&c, 938, s, &lr, &m);
    CU_ASSERT_EQUAL(lr, 0.01);
    CU_ASSERT_EQUAL(m, 0.9);
  }
}

// StepLR(step_size=2, gamma=0.5), lr 0.1, 10 steps per epoch:
// epochs 0-1 -> 0.1, 2-3 -> 0.05, 4-5 -> 0.025, 6 -> 0.0125.
static void test_step(void) {
  cnn_train_config c = base();
  c.sched = CNN_SCHED_STEP;
  c.lr = 0.1;
  c.step_size = 2;
  c.gamma = 0.5;
  double lr, m;
  const struct { uint64_t step; double lr; } v[] = {
      {0, 0.1}, {19, 0.1}, {20, 0.05}, {39, 0.05}, {40, 0.025}, {59, 0.025}, {60, 0.0125}};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    cnn_schedule_at(&c, 10, v[i].step, &lr, &m);
    NEAR(lr, v[i].lr);
    CU_ASSERT_EQUAL(m, 0.9);
  }
  // gamma 0.1 each epoch: the repeated product, as StepLR computes it
  c.step_size = 1;
  c.gamma = 0.1;
  cnn_schedule_at(&c, 10, 30, &lr, &m);
  CU_ASSERT_EQUAL(lr, 0.1 * 0.1 * 0.1 * 0.1);
}

// OneCycleLR(max_lr=0.1, epochs=2, steps_per_epoch=50, pct_start=0.3,
// div_factor=25, final_div_factor=1e4), momentum 0.85..0.95.
//   total 100; initial_lr = 0.1/25 = 0.004; min_lr = 0.004/1e4 = 4e-7
//   phase 1 ends at 0.3*100 - 1 = 29, phase 2 at 99
//   cos(s, e, pct) = e + (s - e)/2 * (1 + cos(pi*pct))
static cnn_train_config onecycle(void) {
  cnn_train_config c = base();
  c.sched = CNN_SCHED_ONECYCLE;
  c.epochs = 2;
  c.max_lr = 0.1;
  c.pct_start = 0.3;
  c.div_factor = 25;
  c.final_div_factor = 1e4;
  c.cycle_momentum = 1;
  c.base_momentum = 0.85;
  c.max_momentum = 0.95;
  return c;
}

// The points of the cycle.
static void test_onecycle(void) {
  cnn_train_config c = onecycle();
  double lr, m;
  // step 0: initial_lr, max_momentum
  cnn_schedule_at(&c, 50, 0, &lr, &m);
  NEAR(lr, 0.004);
  NEAR(m, 0.95);
  // step 10: pct 10/29; cos(0.004, 0.1, 10/29) = 0.1 - 0.048*(1 + cos(pi*10/29))
  //   = 0.029516394846410082; cos(0.95, 0.85, 10/29) = 0.9234204220349895
  cnn_schedule_at(&c, 50, 10, &lr, &m);
  NEAR(lr, 0.029516394846410082);
  NEAR(m, 0.9234204220349895);
  // step 29: the peak
  cnn_schedule_at(&c, 50, 29, &lr, &m);
  NEAR(lr, 0.1);
  NEAR(m, 0.85);
  // step 64: pct (64-29)/(99-29) = 0.5, cos(pi/2) = 0:
  //   lr = 4e-7 + (0.1 - 4e-7)/2 = 0.0500002, momentum = (0.85+0.95)/2 = 0.9
  cnn_schedule_at(&c, 50, 64, &lr, &m);
  NEAR(lr, 0.0500002);
  NEAR(m, 0.9);
  // step 80: pct 51/70: lr = 0.017103395290759563, m = 0.9328969362969856
  cnn_schedule_at(&c, 50, 80, &lr, &m);
  NEAR(lr, 0.017103395290759563);
  NEAR(m, 0.9328969362969856);
  // step 99: the end, min_lr and max_momentum; and past the end stays there
  cnn_schedule_at(&c, 50, 99, &lr, &m);
  NEAR(lr, 4e-7);
  NEAR(m, 0.95);
  cnn_schedule_at(&c, 50, 150, &lr, &m);
  NEAR(lr, 4e-7);
}

// A fractional phase boundary: 1 epoch of 10 steps, pct_start 0.25 ->
// phase 1 ends at 1.5. Step 1: pct 1/1.5, cos(2pi/3) = -1/2:
// lr = 0.1 + (0.004-0.1)/2 * 0.5 = 0.076. Step 2 is in phase 2 with
// pct (2-1.5)/(9-1.5) = 1/15: lr = 0.09890738440717015.
static void test_onecycle_fractional(void) {
  cnn_train_config c = onecycle();
  c.epochs = 1;
  c.pct_start = 0.25;
  double lr, m;
  cnn_schedule_at(&c, 10, 1, &lr, &m);
  NEAR(lr, 0.076);
  cnn_schedule_at(&c, 10, 2, &lr, &m);
  NEAR(lr, 0.09890738440717015);
}

// Without cycle_momentum the optimizer's momentum is left alone.
static void test_onecycle_no_momentum(void) {
  cnn_train_config c = onecycle();
  c.cycle_momentum = 0;
  double lr, m;
  cnn_schedule_at(&c, 50, 10, &lr, &m);
  NEAR(lr, 0.029516394846410082);
  CU_ASSERT_EQUAL(m, 0.9);
}

// The suite.
void register_tests(void) {
  CU_pSuite s = CU_add_suite("schedule", NULL, NULL);
  CU_add_test(s, "constant", test_constant);
  CU_add_test(s, "step", test_step);
  CU_add_test(s, "onecycle", test_onecycle);
  CU_add_test(s, "onecycle fractional boundary", test_onecycle_fractional);
  CU_add_test(s, "onecycle without momentum", test_onecycle_no_momentum);
}
