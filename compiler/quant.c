// quant.c: calibration and int8 quantization. Every activation is symmetric
// (zero point 0), so a conv is a plain integer dot product plus a bias, and
// only the requantization of its output needs a multiplier.
#include "quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "interp.h"

int quant_multiplier(double m, int32_t *mult, int *shift) {
  int e;
  if (!(m > 0) || !isfinite(m))
    return -1;
  double f = frexp(m, &e); // m = f * 2^e, f in [0.5, 1)
  long long q = llround(f * 2147483648.0);
  if (q == 2147483648LL) { // f rounded up to 1
    q /= 2;
    e++;
  }
  int s = 31 - e;
  if (s < 1 || s > 62)
    return -1;
  *mult = (int32_t)q;
  *shift = s;
  return 0;
}

// Sets op's requantization from its per-channel accumulator scales.
static int set_requant(InferOp *op, int n, char *msg, size_t msglen) {
  op->mult = malloc(sizeof *op->mult * n);
  op->shift = malloc(sizeof *op->shift * n);
  if (!op->mult || !op->shift) {
    snprintf(msg, msglen, "out of memory");
    return -1;
  }
  for (int o = 0; o < n; o++) {
    int s;
    if (quant_multiplier(op->acc_scale[o] / op->out_scale, &op->mult[o], &s) < 0) {
      snprintf(msg, msglen, "layer %d: requantization scale %g is out of range", op->first + 1,
               op->acc_scale[o] / op->out_scale);
      return -1;
    }
    op->shift[o] = (int8_t)s;
  }
  return 0;
}

// Quantizes one conv's folded weights and bias for input scale s_in.
static int quant_conv(InferOp *op, double s_in, char *msg, size_t msglen) {
  int oc = op->out.c;
  size_t per = (size_t)op->in.c / op->groups * op->kh * op->kw;
  op->wq = malloc(per * oc);
  op->bq = malloc(sizeof *op->bq * oc);
  if (!op->wq || !op->bq) {
    snprintf(msg, msglen, "out of memory");
    return -1;
  }
  for (int o = 0; o < oc; o++) {
    double mx = 0;
    for (size_t j = 0; j < per; j++)
      mx = fmax(mx, fabs(op->w[o * per + j]));
    double sw = mx > 0 ? mx / 127.0 : 1.0;
    for (size_t j = 0; j < per; j++)
      op->wq[o * per + j] = (int8_t)lround(op->w[o * per + j] / sw);
    op->acc_scale[o] = s_in * sw;
    double bq = round(op->b[o] / op->acc_scale[o]);
    if (fabs(bq) > 2147483647.0 / 2) {
      snprintf(msg, msglen, "layer %d: bias does not fit the int32 accumulator", op->first + 1);
      return -1;
    }
    op->bq[o] = (int32_t)bq;
  }
  return 0;
}

// An add's two multipliers on one shift: out = (a ma + b mb) / 2^shift with
// ma = s_a / s_out. The larger is below 2^22, so with |a|, |b| <= 255 the
// sum stays in 32 bits (one multiply and one multiply-add on a Cortex-M),
// and 22 bits still resolve far finer than one int8 step.
static int quant_add(InferOp *op, double s_a, double s_b, char *msg, size_t msglen) {
  double r[2] = {s_a / op->out_scale, s_b / op->out_scale};
  int e;
  frexp(fmax(r[0], r[1]), &e); // max in [2^(e-1), 2^e)
  op->add_shift = 22 - e;
  if (op->add_shift < 1 || op->add_shift > 30) {
    snprintf(msg, msglen, "layer %d: the add's input scales are out of range", op->first + 1);
    return -1;
  }
  for (int k = 0; k < 2; k++)
    op->add_m[k] = (int32_t)llround(ldexp(r[k], op->add_shift));
  return 0;
}

int quant_calibrate(InferPlan *p, const uint8_t *images, int n, char *msg, size_t msglen) {
  double *absmax = calloc((size_t)p->n_ops, sizeof *absmax);
  float *scores = malloc(sizeof *scores * (size_t)p->ops[p->n_ops - 1].out.c);
  size_t img = (size_t)p->ops[0].in.c * p->ops[0].in.h * p->ops[0].in.w;
  if (!absmax || !scores) {
    free(absmax);
    free(scores);
    snprintf(msg, msglen, "out of memory");
    return -1;
  }
  for (int i = 0; i < n; i++)
    if (interp_float(p, images + img * i, scores, absmax) < 0) {
      free(absmax);
      free(scores);
      snprintf(msg, msglen, "out of memory");
      return -1;
    }
  free(scores);
  // Input: raw pixels, one step = one pixel level (a conv of the image took 1/255std).
  int rc = 0;
  for (int i = 0; i < p->n_ops && rc == 0; i++) {
    InferOp *op = &p->ops[i];
    double s_in = op->src < 0 ? 1.0 : p->ops[op->src].out_scale;
    bool in_u8 = op->src < 0 || p->ops[op->src].out_u8;
    int nch = op->out.c;
    op->acc_scale = malloc(sizeof *op->acc_scale * nch);
    if (!op->acc_scale) {
      snprintf(msg, msglen, "out of memory");
      rc = -1;
      break;
    }
    bool pool = op->kind == IOP_GAP || op->kind == IOP_AVGPOOL;
    if (op->kind == IOP_MAXPOOL)
      op->out_u8 = in_u8;
    else if (op->kind == IOP_ADD)
      op->out_u8 = op->relu || (in_u8 && p->ops[op->src2].out_u8);
    else
      op->out_u8 = op->relu || (pool && in_u8);
    double range = absmax[i] > 0 ? absmax[i] : 1.0;
    op->out_scale = range / (op->out_u8 ? 255.0 : 127.0);
    if (op->kind == IOP_CONV) {
      rc = quant_conv(op, s_in, msg, msglen);
    } else if (pool) {
      for (int o = 0; o < nch; o++)
        op->acc_scale[o] = s_in / (op->kh * op->kw);
    } else if (op->kind == IOP_ADD) {
      for (int o = 0; o < nch; o++)
        op->acc_scale[o] = op->out_scale;
      rc = quant_add(op, s_in, p->ops[op->src2].out_scale, msg, msglen);
    } else {
      op->out_scale = s_in; // max commutes with a positive scale
      for (int o = 0; o < nch; o++)
        op->acc_scale[o] = s_in;
    }
    if (rc == 0 && (op->kind == IOP_CONV || pool) && !op->out_i32)
      rc = set_requant(op, pool ? 1 : nch, msg, msglen);
  }
  free(absmax);
  return rc;
}
