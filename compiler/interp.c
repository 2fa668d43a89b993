// interp.c: the reference float forward of an inference plan over whole
// HWC maps — the arithmetic of the generated float code without its rings.
#include "interp.h"

#include <stdlib.h>
#include <string.h>

// One op over a whole input map in (HWC) into out (HWC).
static void run_op(const InferPlan *p, int i, const float *in, float *out) {
  const InferOp *op = &p->ops[i];
  int H = op->in.h, W = op->in.w, C = op->in.c, OC = op->out.c, k = op->k, s = op->stride,
      pd = op->pad;
  float pad = i == 0 ? (float)p->in_pad : 0.0f;
  for (int y = 0; y < op->out.h; y++)
    for (int x = 0; x < op->out.w; x++)
      for (int o = 0; o < OC; o++) {
        float acc;
        if (op->kind == IOP_CONV) {
          acc = op->bf[o];
          const float *w = op->wf + (size_t)o * k * k * C;
          for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
              for (int c = 0; c < C; c++) {
                int iy = y * s - pd + ky, ix = x * s - pd + kx;
                float v = iy < 0 || iy >= H || ix < 0 || ix >= W ? pad
                                                                 : in[((size_t)iy * W + ix) * C + c];
                acc += w[(ky * k + kx) * C + c] * v;
              }
        } else if (op->kind == IOP_MAXPOOL) {
          acc = -3.4e38f;
          for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
              int iy = y * s - pd + ky, ix = x * s - pd + kx;
              if (iy >= 0 && iy < H && ix >= 0 && ix < W && in[((size_t)iy * W + ix) * C + o] > acc)
                acc = in[((size_t)iy * W + ix) * C + o];
            }
        } else {
          acc = 0.0f;
          for (int iy = 0; iy < H; iy++)
            for (int ix = 0; ix < W; ix++)
              acc += in[((size_t)iy * W + ix) * C + o];
          acc *= 1.0f / (float)(H * W);
        }
        if (op->relu && acc < 0.0f)
          acc = 0.0f;
        out[((size_t)y * op->out.w + x) * OC + o] = acc;
      }
}

int interp_float(const InferPlan *p, const uint8_t *image, float *scores, double *absmax) {
  size_t big = (size_t)p->ops[0].in.c * p->ops[0].in.h * p->ops[0].in.w;
  for (int i = 0; i < p->n_ops; i++) {
    size_t n = (size_t)p->ops[i].out.c * p->ops[i].out.h * p->ops[i].out.w;
    if (n > big)
      big = n;
  }
  float *a = malloc(big * sizeof *a), *b = malloc(big * sizeof *b);
  if (!a || !b) {
    free(a);
    free(b);
    return -1;
  }
  for (size_t j = 0; j < (size_t)p->ops[0].in.c * p->ops[0].in.h * p->ops[0].in.w; j++)
    a[j] = image[j];
  for (int i = 0; i < p->n_ops; i++) {
    run_op(p, i, a, b);
    const InferOp *op = &p->ops[i];
    size_t n = (size_t)op->out.c * op->out.h * op->out.w;
    for (size_t j = 0; absmax && j < n; j++) {
      double v = b[j] < 0 ? -b[j] : b[j];
      if (v > absmax[i])
        absmax[i] = v;
    }
    float *t = a;
    a = b;
    b = t;
  }
  memcpy(scores, a, sizeof *scores * (size_t)p->ops[p->n_ops - 1].out.c);
  free(a);
  free(b);
  return 0;
}
