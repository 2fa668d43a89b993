// schedule.c: PyTorch's constant, StepLR and OneCycleLR (cos) as functions of
// the step, so a resumed run needs no scheduler state.
#include "schedule.h"

#include <math.h>

// OneCycleLR's _annealing_cos: from start (pct 0) to end (pct 1).
static double anneal_cos(double start, double end, double pct) {
  const double pi = 3.14159265358979323846;
  return end + (start - end) / 2.0 * (cos(pi * pct) + 1.0);
}

// torch.optim.lr_scheduler.OneCycleLR._get_lr with three_phase=False.
static void onecycle(const cnn_train_config *c, long steps_per_epoch, uint64_t step,
                     double *lr, double *momentum) {
  double total = (double)c->epochs * (double)steps_per_epoch;
  double initial = c->max_lr / c->div_factor, min_lr = initial / c->final_div_factor;
  double s = (double)step;
  if (s > total - 1)
    s = total - 1;
  double end1 = c->pct_start * total - 1, end2 = total - 1;
  double pct;
  if (s <= end1) {
    pct = end1 > 0 ? s / end1 : 1.0;
    *lr = anneal_cos(initial, c->max_lr, pct);
    *momentum = c->cycle_momentum ? anneal_cos(c->max_momentum, c->base_momentum, pct)
                                  : c->momentum;
  } else {
    pct = end2 > end1 ? (s - end1) / (end2 - end1) : 1.0;
    *lr = anneal_cos(c->max_lr, min_lr, pct);
    *momentum = c->cycle_momentum ? anneal_cos(c->base_momentum, c->max_momentum, pct)
                                  : c->momentum;
  }
}

// The value for step `step` (0-based) of the run.
void cnn_schedule_at(const cnn_train_config *c, long steps_per_epoch, uint64_t step,
                     double *lr, double *momentum) {
  *lr = c->lr;
  *momentum = c->momentum;
  if (steps_per_epoch <= 0)
    return;
  switch (c->sched) {
  case CNN_SCHED_CONSTANT:
    break;
  case CNN_SCHED_STEP: {
    // StepLR multiplies the current lr by gamma each step_size epochs; the
    // repeated product matches its rounding.
    uint64_t epoch = step / (uint64_t)steps_per_epoch;
    uint64_t k = c->step_size > 0 ? epoch / (uint64_t)c->step_size : 0;
    for (uint64_t i = 0; i < k; i++)
      *lr *= c->gamma;
    break;
  }
  case CNN_SCHED_ONECYCLE:
    onecycle(c, steps_per_epoch, step, lr, momentum);
    break;
  }
}
