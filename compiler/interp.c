// interp.c: the reference float forward of an inference plan over whole
// HWC maps — the arithmetic of the generated float code without its rings.
#include "interp.h"

#include <stdlib.h>
#include <string.h>

// One op over its whole input maps (HWC; in2 for an add) into out (HWC).
static void run_op(const InferPlan *p, int i, const float *in, const float *in2, float *out) {
  const InferOp *op = &p->ops[i];
  int H = op->in.h, W = op->in.w, C = op->in.c, OC = op->out.c;
  int icg = C / op->groups, ocg = OC / op->groups;
  float pad = op->src < 0 ? (float)p->in_pad : 0.0f;
  for (int y = 0; y < op->out.h; y++)
    for (int x = 0; x < op->out.w; x++)
      for (int o = 0; o < OC; o++) {
        float acc;
        if (op->kind == IOP_CONV) {
          acc = op->bf[o];
          const float *w = op->wf + (size_t)o * op->kh * op->kw * icg;
          int c0 = o / ocg * icg;
          for (int ky = 0; ky < op->kh; ky++)
            for (int kx = 0; kx < op->kw; kx++)
              for (int c = 0; c < icg; c++) {
                int iy = y * op->sh - op->pt + ky, ix = x * op->sw - op->pl + kx;
                float v = iy < 0 || iy >= H || ix < 0 || ix >= W ? pad
                                                                 : in[((size_t)iy * W + ix) * C + c0 + c];
                acc += w[(ky * op->kw + kx) * icg + c] * v;
              }
        } else if (op->kind == IOP_MAXPOOL || op->kind == IOP_AVGPOOL) {
          bool mx = op->kind == IOP_MAXPOOL;
          acc = mx ? -3.4e38f : 0.0f;
          for (int ky = 0; ky < op->kh; ky++)
            for (int kx = 0; kx < op->kw; kx++) {
              int iy = y * op->sh - op->pt + ky, ix = x * op->sw - op->pl + kx;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                continue;
              float v = in[((size_t)iy * W + ix) * C + o];
              acc = mx ? (v > acc ? v : acc) : acc + v;
            }
          if (!mx)
            acc *= 1.0f / (float)(op->kh * op->kw);
        } else if (op->kind == IOP_ADD) {
          size_t j = ((size_t)y * W + x) * C + o;
          acc = in[j] + in2[j];
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
  // Every op's whole output, kept to the end (an add reads an early one).
  float **maps = calloc((size_t)p->n_ops, sizeof *maps);
  size_t nimg = (size_t)p->ops[0].in.c * p->ops[0].in.h * p->ops[0].in.w;
  float *img = malloc(nimg * sizeof *img);
  int rc = maps && img ? 0 : -1;
  for (size_t j = 0; rc == 0 && j < nimg; j++)
    img[j] = image[j];
  for (int i = 0; rc == 0 && i < p->n_ops; i++) {
    const InferOp *op = &p->ops[i];
    size_t n = (size_t)op->out.c * op->out.h * op->out.w;
    if (!(maps[i] = malloc(n * sizeof **maps))) {
      rc = -1;
      break;
    }
    run_op(p, i, op->src < 0 ? img : maps[op->src], op->src2 < 0 ? NULL : maps[op->src2], maps[i]);
    for (size_t j = 0; absmax && j < n; j++) {
      double v = maps[i][j] < 0 ? -maps[i][j] : maps[i][j];
      if (v > absmax[i])
        absmax[i] = v;
    }
  }
  if (rc == 0)
    memcpy(scores, maps[p->n_ops - 1], sizeof *scores * (size_t)p->ops[p->n_ops - 1].out.c);
  for (int i = 0; maps && i < p->n_ops; i++)
    free(maps[i]);
  free(maps);
  free(img);
  return rc;
}
