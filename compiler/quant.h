// quant.h: post-training int8 quantization of a folded inference plan.
#ifndef CNNC_QUANT_H
#define CNNC_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "infer_plan.h"

// Runs the float plan over n calibration images (raw HWC pixels, one after
// another) to find each activation's range, then quantizes: per-output-
// channel symmetric int8 weights, per-tensor symmetric activations (uint8
// after ReLU), int32 biases and fixed-point requantization multipliers.
// p must be built with int8 and folded. 0, or -1 with a message.
int quant_calibrate(InferPlan *p, const uint8_t *images, int n, char *msg, size_t msglen);

// Splits a positive real multiplier m into mult in [2^30, 2^31) and shift so
// that m ~ mult / 2^shift; -1 when shift would leave [1, 62].
int quant_multiplier(double m, int32_t *mult, int *shift);

#endif
