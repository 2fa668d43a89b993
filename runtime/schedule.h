// schedule.h: the learning rate and momentum at a global step (0-based, the
// value for the step about to be taken), as PyTorch's schedulers give them:
// constant; StepLR stepped per epoch; OneCycleLR (cos, two phases).
#ifndef CNN_SCHEDULE_H
#define CNN_SCHEDULE_H

#include <stdint.h>

#include "cnn_net.h"

// Writes the lr and momentum for optimizer step `step` of a run with
// steps_per_epoch steps per epoch. Steps past the end keep the last value.
void cnn_schedule_at(const cnn_train_config *c, long steps_per_epoch, uint64_t step,
                     double *lr, double *momentum);

#endif
