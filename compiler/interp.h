// interp.h: a plain float interpreter of an inference plan (whole maps, no
// streaming), for int8 calibration and as a second opinion in tests.
#ifndef CNNC_INTERP_H
#define CNNC_INTERP_H

#include <stdint.h>

#include "infer_plan.h"

// Runs the folded float plan on one image (raw pixels, HWC): writes the
// scores (logits) and raises absmax[i] (if absmax) to the largest |value| op
// i produced. 0, or -1 when out of memory.
int interp_float(const InferPlan *p, const uint8_t *image, float *scores, double *absmax);

#endif
