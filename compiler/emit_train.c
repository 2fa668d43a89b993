// emit_train.c: generates NAME_train.{c,h} — static C forward and backward
// passes over a fixed batch, every shape a literal. Activations are stored
// per image in CHW order ([batch][c][h][w]); images are split into fixed
// groups processed in parallel (OpenMP), each group with its own im2col
// buffer and partial sums, so results do not depend on the thread count.
// For speed, work is fused where the data is still in cache: a conv followed
// by a BatchNorm sums the BN statistics per image right after its GEMM; BN,
// the dropout and ReLU after it run as one sweep (forward) and two sweeps
// (backward); dropout masks come from a vectorizable counter-based hash.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "emit_util.h"

// Everything one emission needs: the net and the buffer plan.
typedef struct Ctx {
  FILE *f;
  const Net *net;
  const char *P;   // symbol prefix: the network's name
  int batch, ngroup, gsize;
  int L;
  long *tsize;     // values per image of tensor k (0: input, L: output)
  int *buf;        // activation buffer of tensor k (in-place layers share)
  int *gmode;      // grad of tensor k: 0 none, 1 always, 2 under CNN_INPUT_GRAD
  int *bufg;       // grad mode of each buffer (max over its tensors)
  long maxcol;     // largest im2col matrix of one image
  int has_dropout;
} Ctx;

// printf into the output file.
static void W(Ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(c->f, fmt, ap);
  va_end(ap);
}

// Whether a conv reads its input directly as the GEMM operand (no im2col).
static int conv_is_pointwise(const Layer *l) {
  return l->k == 1 && l->stride == 1 && l->pad == 0;
}

// Whether a conv is computed with direct loops instead of im2col + GEMM: only
// when the GEMM's inner dimension (in.c * k * k) is tiny. mnist14k's first
// conv (1 channel, 3x3: 9) measured faster as im2col + GEMM than as direct
// loops (their 26-wide rows do not vectorize at -O2).
static int conv_is_direct(const Layer *l) {
  return l->in.c * l->k * l->k < 8 && l->pad == 0 && l->stride == 1 && l->k > 1;
}

// Opens "#ifdef CNN_INPUT_GRAD" when mode is 2 (code only the input gradient needs).
static void ig_open(Ctx *c, int mode) {
  if (mode == 2)
    W(c, "#ifdef CNN_INPUT_GRAD\n");
}

// Closes what ig_open opened.
static void ig_close(Ctx *c, int mode) {
  if (mode == 2)
    W(c, "#endif\n");
}

// The per-group image loop header: opens two braces that group_end closes.
static void group_begin(Ctx *c) {
  W(c, "  CNN_OMP(omp parallel for schedule(static))\n"
       "  for (int g = 0; g < NGROUP; g++) {\n");
}

// Opens the loop over the images of group g (after group-level setup).
static void images_begin(Ctx *c) {
  W(c, "    for (int i = g * GSIZE; i < n && i < (g + 1) * GSIZE; i++) {\n");
}

// Closes images_begin and group_begin.
static void group_end(Ctx *c) {
  W(c, "    }\n  }\n");
}

// Emits the one-line shape comment over a layer's functions.
static void layer_comment(Ctx *c, int k) {
  const Layer *l = &c->net->layers[k];
  W(c, "\n// Layer %d: %s", k, layer_kind_name(l->kind));
  if (l->kind == L_CONV)
    W(c, " %dx%d, stride %d, pad %d, %s bias", l->k, l->k, l->stride, l->pad, l->bias ? "with" : "no");
  if (l->kind == L_MAXPOOL)
    W(c, " %dx%d, stride %d, pad %d", l->k, l->k, l->stride, l->pad);
  if (l->kind == L_DROPOUT)
    W(c, " p=%g", l->p);
  W(c, ": %dx%dx%d -> %dx%dx%d (HxWxC), RF %d, %ld params, %ld MACs/image.\n", l->in.h, l->in.w,
    l->in.c, l->out.h, l->out.w, l->out.c, l->rf, l->n_params, l->macs);
}

// The body of a stride-1, unpadded col2im, one input row at a time: each
// element takes its k column values in one pass (kx ascending, the order of
// the plain loop nest, so the sums are the same bits). Adding the k shifted
// rows one after another instead makes every store overlap the next row's
// loads, which stalls on store forwarding.
static void emit_col2im_rows(Ctx *c, const Layer *l, int P) {
  int K = l->k, OW = l->out.w, IW = l->in.w;
  W(c, "  for (int c = 0; c < %d; c++)\n    for (int ky = 0; ky < %d; ky++)\n", l->in.c, K);
  W(c, "      for (int oy = 0; oy < %d; oy++) {\n", l->out.h);
  W(c, "        cnn_real *restrict xr = x + (c * %d + oy + ky) * %d;\n", l->in.h, IW);
  W(c, "        const cnn_real *restrict d = col + (c * %d + ky) * %d + oy * %d; // + kx * %d\n", K, K * P, OW, P);
  // Interior: all k terms exist.
  W(c, "        for (int ix = %d; ix < %d; ix++)\n          xr[ix] = xr[ix]", K - 1, OW);
  for (int kx = 0; kx < K; kx++)
    W(c, " + d[%d + ix]", kx * P - kx);
  W(c, ";\n");
  // The k - 1 columns at each edge: the terms that exist, kx ascending.
  W(c, "        for (int ix = 0; ix < %d; ix++)\n", K - 1);
  W(c, "          for (int kx = 0; kx <= ix; kx++)\n            xr[ix] += d[kx * %d + ix - kx];\n", P);
  W(c, "        for (int ix = %d; ix < %d; ix++)\n", OW, IW);
  W(c, "          for (int kx = ix - %d; kx < %d; kx++)\n            xr[ix] += d[kx * %d + ix - kx];\n", OW - 1, K, P);
  W(c, "      }\n}\n");
}

// im2col (or col2im when back) for one image of conv layer k, as a function.
static void emit_im2col(Ctx *c, int k, int back) {
  const Layer *l = &c->net->layers[k];
  int P = l->out.h * l->out.w;
  if (back)
    W(c, "// Adds the column gradient of one image back onto its input gradient.\n"
         "CNN_CLONES static void %s_l%d_col2im(const cnn_real *restrict col, cnn_real *restrict x) {\n", c->P, k);
  else
    W(c, "// Unfolds one image: col[(c*%d+ky)*%d+kx][oy*%d+ox] = x[c][oy*%d+ky-%d][ox*%d+kx-%d].\n"
         "CNN_CLONES static void %s_l%d_im2col(const cnn_real *restrict x, cnn_real *restrict col) {\n",
      l->k, l->k, l->out.w, l->stride, l->pad, l->stride, l->pad, c->P, k);
  if (back && l->stride == 1 && !l->pad && l->out.w >= l->k) {
    emit_col2im_rows(c, l, P);
    return;
  }
  W(c, "  for (int c = 0; c < %d; c++)\n"
       "    for (int ky = 0; ky < %d; ky++)\n"
       "      for (int kx = 0; kx < %d; kx++) {\n",
    l->in.c, l->k, l->k);
  W(c, "        %scnn_real *restrict d = col + ((c * %d + ky) * %d + kx) * %d;\n", back ? "const " : "",
    l->k, l->k, P);
  W(c, "        for (int oy = 0; oy < %d; oy++) {\n", l->out.h);
  W(c, "          const int iy = oy * %d + ky - %d;\n", l->stride, l->pad);
  if (l->pad) {
    W(c, "          if (iy < 0 || iy >= %d) {\n", l->in.h);
    if (!back)
      W(c, "            for (int ox = 0; ox < %d; ox++)\n              d[oy * %d + ox] = 0;\n", l->out.w, l->out.w);
    W(c, "            continue;\n          }\n");
  }
  if (!back && l->stride == 1 && !l->pad) {
    // Stride 1, no padding: each output row is a contiguous run of the input row.
    W(c, "          memcpy(d + oy * %d, x + (c * %d + iy) * %d + kx, %d * sizeof(cnn_real));\n", l->out.w, l->in.h,
      l->in.w, l->out.w);
    W(c, "        }\n      }\n}\n");
    return;
  }
  W(c, "          for (int ox = 0; ox < %d; ox++) {\n", l->out.w);
  W(c, "            const int ix = ox * %d + kx - %d;\n", l->stride, l->pad);
  const char *src = "x[(c * %d + iy) * %d + ix]";
  char sbuf[96];
  snprintf(sbuf, sizeof sbuf, src, l->in.h, l->in.w);
  if (back) {
    if (l->pad)
      W(c, "            if (ix >= 0 && ix < %d)\n  ", l->in.w);
    W(c, "            %s += d[oy * %d + ox];\n", sbuf, l->out.w);
  } else {
    if (l->pad)
      W(c, "            d[oy * %d + ox] = ix >= 0 && ix < %d ? %s : 0;\n", l->out.w, l->in.w, sbuf);
    else
      W(c, "            d[oy * %d + ox] = %s;\n", l->out.w, sbuf);
  }
  W(c, "          }\n        }\n      }\n}\n");
}

// Emits the sum of expr over one HxW plane into double s (and of expr2 into
// sq): eight cnn_real lanes over the flattened plane (a constant 8-wide inner
// loop that gcc vectorizes at -O2), then the lanes added in double. The
// order is fixed, so results do not depend on the thread count.
static void emit_plane_sum(Ctx *c, const Layer *l, const char *expr, const char *expr2, const char *ind) {
  int HW = l->out.h * l->out.w, H8 = HW / 8 * 8;
  W(c, "%scnn_real as[8] = {0}%s;\n", ind, expr2 ? ", aq[8] = {0}" : "");
  if (H8) {
    W(c, "%sfor (int b = 0; b < %d; b += 8)\n", ind, H8);
    W(c, "%s  for (int u = 0; u < 8; u++) {\n", ind);
    W(c, "%s    const int p = b + u;\n", ind);
    W(c, "%s    as[u] += %s;\n", ind, expr);
    if (expr2)
      W(c, "%s    aq[u] += %s;\n", ind, expr2);
    W(c, "%s  }\n", ind);
  }
  if (H8 < HW) {
    W(c, "%sfor (int p = %d; p < %d; p++) {\n", ind, H8, HW);
    W(c, "%s  as[p - %d] += %s;\n", ind, H8, expr);
    if (expr2)
      W(c, "%s  aq[p - %d] += %s;\n", ind, H8, expr2);
    W(c, "%s}\n", ind);
  }
  W(c, "%sdouble s = 0%s;\n", ind, expr2 ? ", sq = 0" : "");
  W(c, "%sfor (int u = 0; u < 8; u++) {\n%s  s += as[u];\n", ind, ind);
  if (expr2)
    W(c, "%s  sq += aq[u];\n", ind);
  W(c, "%s}\n", ind);
}

// The layers fused into BatchNorm layer k's sweep: a dropout right after it
// (*dk, else -1) and a ReLU after that (*rk, else -1).
static void bn_group(const Ctx *c, int k, int *dk, int *rk) {
  const Net *n = c->net;
  int j = k + 1;
  *dk = *rk = -1;
  if (j < n->n_layers && n->layers[j].kind == L_DROPOUT)
    *dk = j++;
  if (j < n->n_layers && n->layers[j].kind == L_RELU)
    *rk = j;
}

// Whether conv layer k feeds a BatchNorm, whose per-image statistics it then
// sums right after each image's GEMM, while the output is still in cache.
static int conv_feeds_bn(const Ctx *c, int k) {
  return k + 1 < c->net->n_layers && c->net->layers[k + 1].kind == L_BATCHNORM;
}

// Whether layer k is a dropout or ReLU fused into a BatchNorm's sweep.
static int absorbed(const Ctx *c, int k) {
  for (int b = k - 1; b >= 0 && b >= k - 2; b--) {
    if (c->net->layers[b].kind != L_BATCHNORM)
      continue;
    int dk, rk;
    bn_group(c, b, &dk, &rk);
    return k == dk || k == rk;
  }
  return 0;
}

// Declares BN layer k's per-image partial sums (emitted before whichever
// function fills them first).
static void emit_bn_partials(Ctx *c, int k) {
  int C = c->net->layers[k].out.c;
  W(c, "// Layer %d's per-image, per-channel sums (summed over the batch in double):\n"
       "// of x and x^2 in forward, of dy and dy * xhat in backward.\n", k);
  W(c, "static double %s_l%d_ps[BATCH][%d], %s_l%d_pq[BATCH][%d];\n", c->P, k, C, c->P, k, C);
}

// The expression of dropout layer k's keep decision for value index `idx`
// of the current image (keys in key[0], key[1]).
static void emit_keep_expr(Ctx *c, int k, const char *idx) {
  W(c, "(%s_mix32(%s_mix32((uint32_t)(%s) ^ key[0]) + key[1]) >> 8) < L%d_KEEP24", c->P, c->P, idx, k);
}

// Dropout layer k's constants: keep probability 1 - p as a 24-bit threshold
// (the same resolution as a float uniform draw), and the 1 / (1 - p) scale.
static void emit_drop_consts(Ctx *c, int k) {
  const Layer *l = &c->net->layers[k];
  double keep = (double)(float)(1.0 - l->p);
  unsigned long t = (unsigned long)(keep * 16777216.0);
  if ((double)t < keep * 16777216.0)
    t++;
  W(c, "// Layer %d: keep a value with probability 1 - p = %.9g (hash < %lu / 2^24)\n"
       "// and scale it by 1 / (1 - p).\n", k, keep, t);
  W(c, "#define L%d_KEEP24 %luu\n", k, t);
  W(c, "#define L%d_SCALE ((cnn_real)1 / (cnn_real)%.17g)\n", k, 1.0 - l->p);
}
// Adds the per-group partial gradients NAME[g][..] of layer k, in group
// order (so results do not depend on the thread count), into grads + off.
static void emit_group_sum(Ctx *c, int k, const char *name, char var, long count, long off) {
  const char *P = c->P;
  W(c, "  for (int %c = 0; %c < %ld; %c++) {\n", var, var, count, var);
  W(c, "    cnn_real s = %s_l%d_%s[0][%c];\n", P, k, name, var);
  W(c, "    for (int g = 1; g < used; g++)\n      s += %s_l%d_%s[g][%c];\n", P, k, name, var);
  W(c, "    %s_grads[%ld + %c] = s;\n  }\n", P, off, var);
}


// Conv layer k: forward and backward (GEMM or direct).
static void emit_conv(Ctx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int IC = l->in.c, OC = l->out.c, K = l->k;
  int KK = IC * K * K, NP = l->out.h * l->out.w;
  long WSZ = (long)OC * KK;
  long off = (long)l->param_off;
  int ib = c->buf[k], ob = c->buf[k + 1];
  int dxmode = c->gmode[k];
  int bwmode = c->gmode[k + 1];
  int direct = conv_is_direct(l), pw = conv_is_pointwise(l);
  layer_comment(c, k);
  if (!direct && !pw) {
    emit_im2col(c, k, 0);
    if (dxmode) {
      ig_open(c, dxmode);
      emit_im2col(c, k, 1);
      ig_close(c, dxmode);
    }
  }
  // forward
  W(c, "// y[%d][%d] = W[%d][%d] * x%s%s.\n", OC, NP, OC, KK, direct ? " (direct loops)" : pw ? " (1x1: x is the GEMM operand)" : " unfolded",
    l->bias ? " + b" : "");
  int stats = conv_feeds_bn(c, k);
  if (stats)
    emit_bn_partials(c, k + 1);
  if (stats)
    W(c, "// In training, also sums each image's output per channel for layer %d's statistics.\n", k + 1);
  W(c, "CNN_CLONES static void %s_l%d_conv_forward(int n%s) {\n", P, k, stats ? ", int training" : "");
  W(c, "  const cnn_real *restrict w = %s_params + %ld;\n", P, off);
  if (l->bias)
    W(c, "  const cnn_real *restrict b = %s_params + %ld;\n", P, off + WSZ);
  group_begin(c);
  if (!direct && !pw)
    W(c, "    cnn_real *restrict col = %s_col[g];\n", P);
  images_begin(c);
  W(c, "      const cnn_real *restrict x = %s_a%d + (size_t)i * %ld;\n", P, ib, c->tsize[k]);
  W(c, "      cnn_real *restrict y = %s_a%d + (size_t)i * %ld;\n", P, ob, c->tsize[k + 1]);
  if (direct) {
    // Each weight sweeps the whole output plane: contiguous, vectorizable.
    W(c, "      for (int o = 0; o < %d; o++) {\n", OC);
    W(c, "        cnn_real *restrict yo = y + o * %d;\n", NP);
    W(c, "        for (int p = 0; p < %d; p++)\n          yo[p] = %s;\n", NP, l->bias ? "b[o]" : "0");
    W(c, "        for (int c = 0; c < %d; c++)\n", IC);
    W(c, "          for (int ky = 0; ky < %d; ky++)\n", K);
    W(c, "            for (int kx = 0; kx < %d; kx++) {\n", K);
    W(c, "              const cnn_real wv = w[((o * %d + c) * %d + ky) * %d + kx];\n", IC, K, K);
    W(c, "              const cnn_real *restrict xs = x + (c * %d + ky) * %d + kx;\n", l->in.h, l->in.w);
    W(c, "              for (int oy = 0; oy < %d; oy++)\n", l->out.h);
    W(c, "                for (int ox = 0; ox < %d; ox++)\n", l->out.w);
    W(c, "                  yo[oy * %d + ox] += wv * xs[oy * %d + ox];\n", l->out.w, l->in.w);
    W(c, "            }\n      }\n");
  } else {
    if (!pw)
      W(c, "      %s_l%d_im2col(x, col);\n", P, k);
    W(c, "      GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, %d, %d, %d, 1, w, %d, %s, %d, 0, y, %d);\n", OC,
      NP, KK, KK, pw ? "x" : "col", NP, NP);
    if (l->bias)
      W(c, "      for (int o = 0; o < %d; o++)\n        for (int p = 0; p < %d; p++)\n          y[o * %d + p] += b[o];\n",
        OC, NP, NP);
  }
  if (stats) {
    W(c, "      if (training)\n        for (int c = 0; c < %d; c++) {\n", OC);
    W(c, "          const cnn_real *restrict x = y + c * %d;\n", NP);
    emit_plane_sum(c, l, "x[p]", "x[p] * x[p]", "          ");
    W(c, "          %s_l%d_ps[i][c] = s;\n          %s_l%d_pq[i][c] = sq;\n", P, k + 1, P, k + 1);
    W(c, "        }\n");
  }
  group_end(c);
  W(c, "}\n");

  if (!bwmode)
    return;
  ig_open(c, bwmode);
  W(c, "\n// Per-group partial weight%s gradients, summed in group order.\n", l->bias ? " and bias" : "");
  W(c, "static cnn_real %s_l%d_dw[NGROUP][%ld];\n", P, k, WSZ);
  if (l->bias)
    W(c, "static cnn_real %s_l%d_db[NGROUP][%d];\n", P, k, OC);
  W(c, "// dW = dy * x^T%s%s.\n", l->bias ? ", db = sum dy" : "", dxmode ? ", dx = W^T * dy" : "");
  W(c, "CNN_CLONES static void %s_l%d_conv_backward(int n) {\n", P, k);
  if (dxmode) {
    ig_open(c, dxmode);
    W(c, "  const cnn_real *restrict w = %s_params + %ld;\n", P, off);
    ig_close(c, dxmode);
  }
  group_begin(c);
  W(c, "    cnn_real *restrict dw = %s_l%d_dw[g];\n", P, k);
  if (l->bias)
    W(c, "    cnn_real *restrict db = %s_l%d_db[g];\n", P, k);
  if (!direct && !pw) {
    W(c, "    cnn_real *restrict col = %s_col[g];\n", P);
    if (dxmode) {
      ig_open(c, dxmode);
      W(c, "    cnn_real *restrict dcol = %s_dcol[g];\n", P);
      ig_close(c, dxmode);
    }
  }
  images_begin(c);
  W(c, "      const int first = i == g * GSIZE;\n");
  W(c, "      const cnn_real *restrict x = %s_a%d + (size_t)i * %ld;\n", P, ib, c->tsize[k]);
  W(c, "      const cnn_real *restrict dy = %s_d%d + (size_t)i * %ld;\n", P, ob, c->tsize[k + 1]);
  if (direct) {
    // Row-wise accumulators keep the sum vectorizable and its order fixed.
    W(c, "      for (int o = 0; o < %d; o++)\n", OC);
    W(c, "        for (int c = 0; c < %d; c++)\n", IC);
    W(c, "          for (int ky = 0; ky < %d; ky++)\n", K);
    W(c, "            for (int kx = 0; kx < %d; kx++) {\n", K);
    W(c, "              const cnn_real *restrict xs = x + (c * %d + ky) * %d + kx;\n", l->in.h, l->in.w);
    W(c, "              const cnn_real *restrict dyo = dy + o * %d;\n", NP);
    W(c, "              cnn_real acc[%d] = {0};\n", l->out.w);
    W(c, "              for (int oy = 0; oy < %d; oy++)\n", l->out.h);
    W(c, "                for (int ox = 0; ox < %d; ox++)\n", l->out.w);
    W(c, "                  acc[ox] += dyo[oy * %d + ox] * xs[oy * %d + ox];\n", l->out.w, l->in.w);
    W(c, "              cnn_real s = 0;\n");
    W(c, "              for (int ox = 0; ox < %d; ox++)\n                s += acc[ox];\n", l->out.w);
    W(c, "              const int j = ((o * %d + c) * %d + ky) * %d + kx;\n", IC, K, K);
    W(c, "              dw[j] = first ? s : dw[j] + s;\n");
    W(c, "            }\n");
  } else {
    if (!pw)
      W(c, "      %s_l%d_im2col(x, col);\n", P, k);
    W(c, "      GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, %d, %d, %d, 1, dy, %d, %s, %d, first ? 0 : 1, dw, %d);\n", OC,
      KK, NP, NP, pw ? "x" : "col", NP, KK);
  }
  if (l->bias) {
    W(c, "      for (int o = 0; o < %d; o++) {\n", OC);
    W(c, "        cnn_real s = first ? 0 : db[o];\n");
    W(c, "        for (int p = 0; p < %d; p++)\n          s += dy[o * %d + p];\n", NP, NP);
    W(c, "        db[o] = s;\n      }\n");
  }
  if (dxmode) {
    ig_open(c, dxmode);
    W(c, "      cnn_real *restrict dx = %s_d%d + (size_t)i * %ld;\n", P, c->buf[k], c->tsize[k]);
    if (pw) {
      W(c, "      GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, %d, %d, %d, 1, w, %d, dy, %d, 0, dx, %d);\n", KK, NP,
        OC, KK, NP, NP);
    } else if (direct) {
      // Direct convs are only used for 1-channel inputs, which come first.
      W(c, "      for (int q = 0; q < %ld; q++)\n        dx[q] = 0;\n", c->tsize[k]);
      W(c, "      for (int o = 0; o < %d; o++)\n", OC);
      W(c, "        for (int c = 0; c < %d; c++)\n", IC);
      W(c, "          for (int ky = 0; ky < %d; ky++)\n", K);
      W(c, "            for (int kx = 0; kx < %d; kx++) {\n", K);
      W(c, "              const cnn_real wv = w[((o * %d + c) * %d + ky) * %d + kx];\n", IC, K, K);
      W(c, "              cnn_real *restrict xs = dx + (c * %d + ky) * %d + kx;\n", l->in.h, l->in.w);
      W(c, "              for (int oy = 0; oy < %d; oy++)\n", l->out.h);
      W(c, "                for (int ox = 0; ox < %d; ox++)\n", l->out.w);
      W(c, "                  xs[oy * %d + ox] += wv * dy[o * %d + oy * %d + ox];\n", l->in.w, NP, l->out.w);
      W(c, "            }\n");
    } else {
      W(c, "      GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, %d, %d, %d, 1, w, %d, dy, %d, 0, dcol, %d);\n", KK, NP,
        OC, KK, NP, NP);
      W(c, "      for (int q = 0; q < %ld; q++)\n        dx[q] = 0;\n", c->tsize[k]);
      W(c, "      %s_l%d_col2im(dcol, dx);\n", P, k);
    }
    ig_close(c, dxmode);
  }
  group_end(c);
  W(c, "  const int used = (n + GSIZE - 1) / GSIZE;\n");
  emit_group_sum(c, k, "dw", 'j', WSZ, off);
  if (l->bias)
    emit_group_sum(c, k, "db", 'o', OC, off + WSZ);
  W(c, "}\n");
  ig_close(c, bwmode);
}

// BatchNorm2d layer k: batch statistics in training, running ones in eval;
// a dropout and a ReLU right after it are fused into its normalizing sweep.
static void emit_bn(Ctx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int C = l->out.c, HW = l->out.h * l->out.w;
  long off = (long)l->param_off, soff = (long)l->state_off;
  int ib = c->buf[k], ob = c->buf[k + 1];
  long sz = c->tsize[k];
  int dk, rk;
  bn_group(c, k, &dk, &rk);
  int stats_in_conv = k > 0 && c->net->layers[k - 1].kind == L_CONV;
  int bw = c->gmode[k + 1], dxm = c->gmode[k];
  int keep_store = dk >= 0 && rk < 0;  // the mask is needed by backward only without a ReLU
  layer_comment(c, k);
  if (dk >= 0)
    layer_comment(c, dk);
  if (rk >= 0)
    layer_comment(c, rk);
  if (dk >= 0 || rk >= 0)
    W(c, "// Fused: one sweep per image normalizes%s%s while the image is in cache\n"
         "// (in place in the output buffer, [batch][%d][%d]).\n",
      dk >= 0 ? ", drops" : "", rk >= 0 ? ", rectifies" : "", C, HW);
  if (!stats_in_conv)
    emit_bn_partials(c, k);
  W(c, "// The batch mean and 1/sqrt(var + eps), which backward reuses.\n");
  W(c, "static cnn_real %s_l%d_mean[%d], %s_l%d_invstd[%d];\n", P, k, C, P, k, C);
  if (dk >= 0) {
    emit_drop_consts(c, dk);
    unsigned long t16 = (unsigned long)((double)(float)(1.0 - c->net->layers[dk].p) * 65536.0 + 0.5);
    W(c, "// In the fused sweep, two draws per hash: keep when a 16-bit half < %lu (1 - p = %.6f).\n",
      t16, t16 / 65536.0);
    W(c, "#define L%d_KEEP16 %luu\n", dk, t16);
    W(c, "// Each group's mask multipliers for one image: 1 / (1 - p) or 0.\n");
    W(c, "static cnn_real %s_l%d_km[NGROUP][%ld];\n", P, dk, sz);
    if (keep_store && bw) {
      ig_open(c, bw);
      W(c, "static uint8_t %s_l%d_keep[BATCH * %ld];\n", P, dk, sz);
      ig_close(c, bw);
    }
  }
  W(c, "// y = (x - mean) / sqrt(var + 1e-5) * gamma + beta; training updates the\n"
       "// running stats with momentum 0.1 and the unbiased variance.%s%s\n",
    dk >= 0 ? "\n// Dropout (training only): y = keep ? y / (1 - p) : 0, masks from "
              "per-image hash keys." : "",
    rk >= 0 ? "\n// ReLU: y = max(y, 0)." : "");
  if (HW % 4 != 0 && sz % 4 == 0) // see `flat` below
    W(c, "// Scale and shift spread per value (planes of %d do not vectorize at -O2).\n"
         "static cnn_real %s_l%d_scv[%ld], %s_l%d_shv[%ld];\n", HW, P, k, sz, P, k, sz);
  W(c, "CNN_CLONES static void %s_l%d_bn_forward(int n, int training) {\n", P, k);
  W(c, "  const cnn_real *restrict gamma = %s_params + %ld, *restrict beta = %s_params + %ld;\n", P, off, P,
    off + C);
  W(c, "  cnn_real *restrict rmean = %s_state + %ld, *restrict rvar = %s_state + %ld;\n", P, soff, P, soff + C);
  W(c, "  cnn_real scale[%d], shift[%d];\n", C, C);
  W(c, "  if (training) {\n");
  if (stats_in_conv) {
    W(c, "    // The per-image sums were taken by layer %d's forward.\n", k - 1);
  } else {
    W(c, "  ");
    group_begin(c);
    W(c, "  ");
    images_begin(c);
    W(c, "        for (int c = 0; c < %d; c++) {\n", C);
    W(c, "          const cnn_real *restrict x = %s_a%d + (size_t)i * %ld + c * %d;\n", P, ib, sz, HW);
    emit_plane_sum(c, l, "x[p]", "x[p] * x[p]", "          ");
    W(c, "          %s_l%d_ps[i][c] = s;\n          %s_l%d_pq[i][c] = sq;\n", P, k, P, k);
    W(c, "        }\n      }\n    }\n");
  }
  W(c, "    const double N = (double)n * %d;\n", HW);
  W(c, "    for (int c = 0; c < %d; c++) {\n", C);
  W(c, "      double s = 0, sq = 0;\n");
  W(c, "      for (int i = 0; i < n; i++) {\n        s += %s_l%d_ps[i][c];\n        sq += %s_l%d_pq[i][c];\n      }\n", P, k, P, k);
  W(c, "      const double mean = s / N;\n");
  W(c, "      double var = sq / N - mean * mean;\n      if (var < 0)\n        var = 0;\n");
  W(c, "      const double invstd = 1 / sqrt(var + 1e-5);\n");
  W(c, "      %s_l%d_mean[c] = (cnn_real)mean;\n      %s_l%d_invstd[c] = (cnn_real)invstd;\n", P, k, P, k);
  W(c, "      rmean[c] = (cnn_real)(0.9 * rmean[c] + 0.1 * mean);\n");
  W(c, "      rvar[c] = (cnn_real)(0.9 * rvar[c] + 0.1 * (N > 1 ? var * N / (N - 1) : var));\n");
  W(c, "      scale[c] = gamma[c] * %s_l%d_invstd[c];\n", P, k);
  W(c, "      shift[c] = beta[c] - %s_l%d_mean[c] * scale[c];\n", P, k);
  W(c, "    }\n  } else {\n");
  W(c, "    for (int c = 0; c < %d; c++) {\n", C);
  W(c, "      scale[c] = gamma[c] * (cnn_real)(1 / sqrt((double)rvar[c] + 1e-5));\n");
  W(c, "      shift[c] = beta[c] - rmean[c] * scale[c];\n    }\n  }\n");
  // Planes whose size is not a multiple of 4 do not vectorize at -O2; their
  // sweep runs over the whole image with scale and shift spread per value.
  int flat = HW % 4 != 0 && sz % 4 == 0;
  if (flat) {
    W(c, "  // Spread per value: the sweep below runs over whole images (%ld values).\n", sz);
    W(c, "  cnn_real *restrict scv = %s_l%d_scv, *restrict shv = %s_l%d_shv;\n", P, k, P, k);
    W(c, "  for (int c = 0; c < %d; c++)\n    for (int p = 0; p < %d; p++) {\n", C, HW);
    W(c, "      scv[c * %d + p] = scale[c];\n      shv[c * %d + p] = shift[c];\n    }\n", HW, HW);
  }
  group_begin(c);
  if (dk >= 0)
    W(c, "    cnn_real *restrict km = %s_l%d_km[g];\n", P, dk);
  if (flat) // restrict copies: the arrays are shared with the other threads
    W(c, "    const cnn_real *restrict sv = %s_l%d_scv, *restrict hv = %s_l%d_shv;\n", P, k, P, k);
  images_begin(c);
  W(c, "      const cnn_real *restrict x = %s_a%d + (size_t)i * %ld;\n", P, ib, sz);
  W(c, "      cnn_real *restrict y = %s_a%d + (size_t)i * %ld;\n", P, ob, sz);
  const char *relu = rk >= 0 ? "          v = v > 0 ? v : 0;\n" : "";
  if (dk >= 0) {
    long half = sz / 2;
    W(c, "      if (training) { // the mask as multipliers: one hash gives two 16-bit draws\n");
    W(c, "        uint32_t key[2];\n        %s_drop_keys(%d, i, key);\n", P, dk);
    W(c, "        for (int j = 0; j < %ld; j++) {\n", half);
    W(c, "          const uint32_t h = %s_mix32(%s_mix32((uint32_t)j ^ key[0]) + key[1]);\n", P, P);
    W(c, "          km[j] = (h & 0xffffu) < L%d_KEEP16 ? L%d_SCALE : 0;\n", dk, dk);
    W(c, "          km[j + %ld] = (h >> 16) < L%d_KEEP16 ? L%d_SCALE : 0;\n        }\n", half, dk, dk);
    if (sz % 2)
      W(c, "        km[%ld] = (%s_mix32(%s_mix32((uint32_t)%ld ^ key[0]) + key[1]) & 0xffffu) < L%d_KEEP16 ? L%d_SCALE : 0;\n",
        sz - 1, P, P, sz - 1, dk, dk);
    if (keep_store && bw) {
      ig_open(c, bw);
      W(c, "        for (int j = 0; j < %ld; j++)\n", sz);
      W(c, "          %s_l%d_keep[(size_t)i * %ld + j] = km[j] != 0;\n", P, dk, sz);
      ig_close(c, bw);
    }
    W(c, "      }\n");
  }
  if (flat) {
    if (dk >= 0) {
      W(c, "      if (training)\n");
      W(c, "        for (int j = 0; j < %ld; j++) {\n", sz);
      W(c, "          cnn_real v = (x[j] * sv[j] + hv[j]) * km[j];\n%s", relu);
      W(c, "          y[j] = v;\n        }\n      else\n");
    }
    W(c, "        for (int j = 0; j < %ld; j++) {\n", sz);
    W(c, "          cnn_real v = x[j] * sv[j] + hv[j];\n%s", relu);
    W(c, "          y[j] = v;\n        }\n");
  } else {
    W(c, "      for (int c = 0; c < %d; c++) {\n", C);
    W(c, "        const cnn_real sc = scale[c], sh = shift[c];\n");
    W(c, "        const cnn_real *restrict xc = x + c * %d;\n        cnn_real *restrict yc = y + c * %d;\n", HW, HW);
    if (dk >= 0) {
      W(c, "        if (training) {\n");
      W(c, "          const cnn_real *restrict kc = km + c * %d;\n", HW);
      W(c, "          for (int p = 0; p < %d; p++) {\n", HW);
      W(c, "            cnn_real v = (xc[p] * sc + sh) * kc[p];\n");
      W(c, "%s", rk >= 0 ? "            v = v > 0 ? v : 0;\n" : "");
      W(c, "            yc[p] = v;\n          }\n          continue;\n        }\n");
    }
    W(c, "        for (int p = 0; p < %d; p++) {\n", HW);
    W(c, "          cnn_real v = xc[p] * sc + sh;\n%s", relu);
    W(c, "          yc[p] = v;\n        }\n");
    W(c, "      }\n");
  }
  group_end(c);
  W(c, "}\n");

  if (!bw)
    return;
  ig_open(c, bw);
  W(c, "\n");
  if (rk >= 0 || dk >= 0)
    W(c, "// First, in place, the gradient at BN's output: dy%s%s.\n", rk >= 0 ? " where y > 0" : "",
      dk >= 0 ? (rk >= 0 ? ", times 1 / (1 - p) (y > 0 implies kept)" : ", times keep / (1 - p)") : "");
  W(c, "// dgamma = sum dy * xhat, dbeta = sum dy;\n"
       "// dx = gamma * invstd * (dy - dbeta / N - xhat * dgamma / N).\n");
  W(c, "CNN_CLONES static void %s_l%d_bn_backward(int n) {\n", P, k);
  group_begin(c);
  images_begin(c);
  W(c, "      for (int c = 0; c < %d; c++) {\n", C);
  W(c, "        const cnn_real *restrict x = %s_a%d + (size_t)i * %ld + c * %d;\n", P, ib, sz, HW);
  W(c, "        cnn_real *restrict dy = %s_d%d + (size_t)i * %ld + c * %d;\n", P, ob, sz, HW);
  if (rk >= 0 || dk >= 0) {
    if (rk >= 0)
      W(c, "        const cnn_real *restrict y = %s_a%d + (size_t)i * %ld + c * %d;\n", P, ob, sz, HW);
    if (keep_store)
      W(c, "        const uint8_t *restrict m = %s_l%d_keep + (size_t)i * %ld + c * %d;\n", P, dk, sz, HW);
    W(c, "        for (int p = 0; p < %d; p++) { // a multiply, not a branch: it vectorizes\n", HW);
    if (rk >= 0 && dk >= 0)
      W(c, "          dy[p] *= (cnn_real)(y[p] > 0) * L%d_SCALE;\n", dk);
    else if (rk >= 0)
      W(c, "          dy[p] *= (cnn_real)(y[p] > 0);\n");
    else
      W(c, "          dy[p] *= (cnn_real)m[p] * L%d_SCALE;\n", dk);
    W(c, "        }\n");
  }
  W(c, "        const cnn_real m_ = %s_l%d_mean[c], is = %s_l%d_invstd[c];\n", P, k, P, k);
  emit_plane_sum(c, l, "dy[p]", "dy[p] * ((x[p] - m_) * is)", "        ");
  W(c, "        %s_l%d_ps[i][c] = s;\n        %s_l%d_pq[i][c] = sq;\n", P, k, P, k);
  W(c, "      }\n");
  group_end(c);
  if (dxm) {
    ig_open(c, dxm);
    W(c, "  const double N = (double)n * %d;\n", HW);
    W(c, "  cnn_real k1[%d], k2[%d], k3[%d];\n", C, C, C);
    ig_close(c, dxm);
  }
  W(c, "  for (int c = 0; c < %d; c++) {\n", C);
  W(c, "    double db = 0, dg = 0;\n");
  W(c, "    for (int i = 0; i < n; i++) {\n      db += %s_l%d_ps[i][c];\n      dg += %s_l%d_pq[i][c];\n    }\n", P, k, P, k);
  W(c, "    %s_grads[%ld + c] = (cnn_real)dg;\n    %s_grads[%ld + c] = (cnn_real)db;\n", P, off, P, off + C);
  if (dxm) {
    ig_open(c, dxm);
    W(c, "    k1[c] = %s_params[%ld + c] * %s_l%d_invstd[c];\n", P, off, P, k);
    W(c, "    k2[c] = (cnn_real)(db / N);\n    k3[c] = (cnn_real)(dg / N);\n");
    ig_close(c, dxm);
  }
  W(c, "  }\n");
  if (dxm) {
    ig_open(c, dxm);
    group_begin(c);
    images_begin(c);
    W(c, "      const cnn_real *restrict x = %s_a%d + (size_t)i * %ld;\n", P, ib, sz);
    W(c, "      const cnn_real *restrict dy = %s_d%d + (size_t)i * %ld;\n", P, ob, sz);
    W(c, "      cnn_real *restrict dx = %s_d%d + (size_t)i * %ld;\n", P, ib, sz);
    W(c, "      for (int c = 0; c < %d; c++) {\n", C);
    W(c, "        const cnn_real m_ = %s_l%d_mean[c], is = %s_l%d_invstd[c];\n", P, k, P, k);
    W(c, "        const cnn_real a = k1[c], b = k2[c], q = k3[c];\n");
    W(c, "        for (int p = 0; p < %d; p++) {\n", HW);
    W(c, "          const cnn_real xh = (x[c * %d + p] - m_) * is;\n", HW);
    W(c, "          dx[c * %d + p] = a * (dy[c * %d + p] - b - xh * q);\n", HW, HW);
    W(c, "        }\n      }\n");
    group_end(c);
    ig_close(c, dxm);
  }
  W(c, "}\n");
  ig_close(c, bw);
}

// Inverted dropout layer k on its own (not after a BatchNorm), in place.
static void emit_dropout(Ctx *c, int k) {
  const char *P = c->P;
  long sz = c->tsize[k];
  int b = c->buf[k];
  layer_comment(c, k);
  emit_drop_consts(c, k);
  int bw = c->gmode[k + 1];
  ig_open(c, bw);
  W(c, "static uint8_t %s_l%d_keep[BATCH * %ld];\n", P, k, sz);
  ig_close(c, bw);
  W(c, "// In place; identity in eval. Image i's mask hashes its value indices with\n"
       "// keys of (seed, layer %d, i), so it does not depend on the thread count.\n", k);
  W(c, "CNN_CLONES static void %s_l%d_dropout_forward(int n, int training) {\n", P, k);
  W(c, "  if (!training)\n    return;\n");
  group_begin(c);
  images_begin(c);
  W(c, "      uint32_t key[2];\n      %s_drop_keys(%d, i, key);\n", P, k);
  W(c, "      cnn_real *restrict x = %s_a%d + (size_t)i * %ld;\n", P, b, sz);
  if (bw) {
    ig_open(c, bw);
    W(c, "      uint8_t *restrict m = %s_l%d_keep + (size_t)i * %ld;\n", P, k, sz);
    ig_close(c, bw);
  }
  W(c, "      for (int j = 0; j < %ld; j++) {\n", sz);
  W(c, "        const int keep = ");
  emit_keep_expr(c, k, "j");
  W(c, ";\n");
  if (bw) {
    ig_open(c, bw);
    W(c, "        m[j] = (uint8_t)keep;\n");
    ig_close(c, bw);
  }
  W(c, "        x[j] = keep ? x[j] * L%d_SCALE : 0;\n      }\n", k);
  group_end(c);
  W(c, "}\n");
  if (!bw)
    return;
  ig_open(c, bw);
  W(c, "// In place: dx = dy * mask / (1 - p).\n");
  W(c, "CNN_CLONES static void %s_l%d_dropout_backward(int n) {\n", P, k);
  W(c, "  cnn_real *restrict d = %s_d%d;\n  const uint8_t *restrict m = %s_l%d_keep;\n", P, b, P, k);
  W(c, "  CNN_OMP(omp parallel for schedule(static))\n");
  W(c, "  for (long j = 0; j < (long)n * %ld; j++)\n", sz);
  W(c, "    d[j] = m[j] ? d[j] * L%d_SCALE : 0;\n}\n", k);
  ig_close(c, bw);
}

// ReLU layer k, in place; backward reads the output's sign.
static void emit_relu(Ctx *c, int k) {
  const char *P = c->P;
  long sz = c->tsize[k];
  int b = c->buf[k];
  layer_comment(c, k);
  W(c, "// In place: x = max(x, 0).\n");
  W(c, "CNN_CLONES static void %s_l%d_relu_forward(int n) {\n", P, k);
  W(c, "  cnn_real *restrict x = %s_a%d;\n", P, b);
  W(c, "  CNN_OMP(omp parallel for schedule(static))\n");
  W(c, "  for (long j = 0; j < (long)n * %ld; j++)\n", sz);
  W(c, "    x[j] = x[j] > 0 ? x[j] : 0;\n}\n");
  int bw = c->gmode[k + 1];
  if (!bw)
    return;
  ig_open(c, bw);
  W(c, "// In place: dx = dy where the output is positive.\n");
  W(c, "CNN_CLONES static void %s_l%d_relu_backward(int n) {\n", P, k);
  W(c, "  const cnn_real *restrict y = %s_a%d;\n  cnn_real *restrict d = %s_d%d;\n", P, b, P, b);
  W(c, "  CNN_OMP(omp parallel for schedule(static))\n");
  W(c, "  for (long j = 0; j < (long)n * %ld; j++)\n", sz);
  W(c, "    d[j] = y[j] > 0 ? d[j] : 0;\n}\n");
  ig_close(c, bw);
}

// Max-pool layer k; the gradient goes to the first maximum (row-major scan).
// 2x2/2 windows keep no argmax: backward finds it again from the input, with
// compares as multipliers, so neither pass branches on the data.
static void emit_maxpool(Ctx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int ib = c->buf[k], ob = c->buf[k + 1];
  long isz = c->tsize[k], osz = c->tsize[k + 1];
  int bw = c->gmode[k + 1], dxm = c->gmode[k];
  int fast = l->k == 2 && l->stride == 2 && l->pad == 0;
  int IW = l->in.w;
  layer_comment(c, k);
  if (dxm && !fast) {
    ig_open(c, dxm);
    W(c, "// Index (within its image) of the maximum each output took.\n");
    W(c, "static int32_t %s_l%d_arg[BATCH * %ld];\n", P, k, osz);
    ig_close(c, dxm);
  }
  W(c, "CNN_CLONES static void %s_l%d_maxpool_forward(int n, int training) {\n", P, k);
  if (!dxm || fast)
    W(c, "  (void)training;\n");
  group_begin(c);
  images_begin(c);
  W(c, "      const cnn_real *restrict x = %s_a%d + (size_t)i * %ld;\n", P, ib, isz);
  W(c, "      cnn_real *restrict y = %s_a%d + (size_t)i * %ld;\n", P, ob, osz);
  W(c, "      for (int c = 0; c < %d; c++)\n", l->out.c);
  W(c, "        for (int oy = 0; oy < %d; oy++)\n", l->out.h);
  W(c, "          for (int ox = 0; ox < %d; ox++) {\n", l->out.w);
  W(c, "            const int o = (c * %d + oy) * %d + ox;\n", l->out.h, l->out.w);
  if (fast) {
    W(c, "            const int j0 = (c * %d + 2 * oy) * %d + 2 * ox;\n", l->in.h, IW);
    W(c, "            cnn_real m = x[j0];\n");
    int off[3] = {1, IW, IW + 1};
    for (int t = 0; t < 3; t++)
      W(c, "            m = x[j0 + %d] > m ? x[j0 + %d] : m;\n", off[t], off[t]);
    W(c, "            y[o] = m;\n");
  } else {
    W(c, "            int best = -1;\n");
    W(c, "            for (int ky = 0; ky < %d; ky++) {\n", l->k);
    W(c, "              const int iy = oy * %d + ky - %d;\n", l->stride, l->pad);
    if (l->pad)
      W(c, "              if (iy < 0 || iy >= %d)\n                continue;\n", l->in.h);
    W(c, "              for (int kx = 0; kx < %d; kx++) {\n", l->k);
    W(c, "                const int ix = ox * %d + kx - %d;\n", l->stride, l->pad);
    if (l->pad)
      W(c, "                if (ix < 0 || ix >= %d)\n                  continue;\n", IW);
    W(c, "                const int j = (c * %d + iy) * %d + ix;\n", l->in.h, IW);
    W(c, "                if (best < 0 || x[j] > x[best])\n                  best = j;\n");
    W(c, "              }\n            }\n");
    W(c, "            y[o] = x[best];\n");
    if (dxm) {
      ig_open(c, dxm);
      W(c, "            if (training)\n              %s_l%d_arg[(size_t)i * %ld + o] = best;\n", P, k, osz);
      ig_close(c, dxm);
    }
  }
  W(c, "          }\n");
  group_end(c);
  W(c, "}\n");
  if (!bw || !dxm)
    return;
  ig_open(c, dxm);
  W(c, "// Routes each output gradient to its input maximum.\n");
  W(c, "CNN_CLONES static void %s_l%d_maxpool_backward(int n) {\n", P, k);
  group_begin(c);
  images_begin(c);
  W(c, "      const cnn_real *restrict dy = %s_d%d + (size_t)i * %ld;\n", P, ob, osz);
  W(c, "      cnn_real *restrict dx = %s_d%d + (size_t)i * %ld;\n", P, ib, isz);
  if (fast) {
    W(c, "      const cnn_real *restrict x = %s_a%d + (size_t)i * %ld;\n", P, ib, isz);
    // The windows tile the input unless its size is odd; then zero the rest first.
    if (l->in.h != 2 * l->out.h || IW != 2 * l->out.w)
      W(c, "      for (int j = 0; j < %ld; j++)\n        dx[j] = 0;\n", isz);
    W(c, "      for (int c = 0; c < %d; c++)\n", l->out.c);
    W(c, "        for (int oy = 0; oy < %d; oy++)\n", l->out.h);
    W(c, "          for (int ox = 0; ox < %d; ox++) {\n", l->out.w);
    W(c, "            const int j0 = (c * %d + 2 * oy) * %d + 2 * ox;\n", l->in.h, IW);
    W(c, "            const cnn_real a = x[j0], b = x[j0 + 1], d = x[j0 + %d], e = x[j0 + %d];\n", IW, IW + 1);
    W(c, "            cnn_real m = a;\n            m = b > m ? b : m;\n            m = d > m ? d : m;\n"
         "            m = e > m ? e : m;\n");
    // x >= m is x == m here (m is the max), and compiles without the NaN branch of ==.
    W(c, "            // 1 at the first of the four equal to the max, 0 elsewhere.\n");
    W(c, "            const cnn_real ka = (cnn_real)(a >= m), kb = (cnn_real)(b >= m) * (1 - ka);\n");
    W(c, "            const cnn_real kd = (cnn_real)(d >= m) * (1 - ka - kb);\n");
    W(c, "            const cnn_real ke = (cnn_real)(e >= m) * (1 - ka - kb - kd);\n");
    W(c, "            const cnn_real g = dy[(c * %d + oy) * %d + ox];\n", l->out.h, l->out.w);
    W(c, "            dx[j0] = ka * g;\n            dx[j0 + 1] = kb * g;\n");
    W(c, "            dx[j0 + %d] = kd * g;\n            dx[j0 + %d] = ke * g;\n", IW, IW + 1);
    W(c, "          }\n");
  } else {
    W(c, "      const int32_t *restrict arg = %s_l%d_arg + (size_t)i * %ld;\n", P, k, osz);
    W(c, "      for (int j = 0; j < %ld; j++)\n        dx[j] = 0;\n", isz);
    W(c, "      for (int o = 0; o < %ld; o++)\n        dx[arg[o]] += dy[o];\n", osz);
  }
  group_end(c);
  W(c, "}\n");
  ig_close(c, dxm);
}

// Global average pooling layer k.
static void emit_gap(Ctx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int C = l->in.c, HW = l->in.h * l->in.w;
  int ib = c->buf[k], ob = c->buf[k + 1];
  layer_comment(c, k);
  W(c, "// y[c] = mean of x[c] over its %d positions.\n", HW);
  W(c, "CNN_CLONES static void %s_l%d_gap_forward(int n) {\n", P, k);
  W(c, "  for (int i = 0; i < n; i++)\n    for (int c = 0; c < %d; c++) {\n", C);
  W(c, "      const cnn_real *restrict x = %s_a%d + (size_t)i * %ld + c * %d;\n", P, ib, c->tsize[k], HW);
  W(c, "      cnn_real s = 0;\n      for (int p = 0; p < %d; p++)\n        s += x[p];\n", HW);
  W(c, "      %s_a%d[i * %d + c] = s / %d;\n    }\n}\n", P, ob, C, HW);
  int dxm = c->gmode[k];
  if (!c->gmode[k + 1] || !dxm)
    return;
  ig_open(c, dxm);
  W(c, "// dx = dy / %d everywhere.\n", HW);
  W(c, "CNN_CLONES static void %s_l%d_gap_backward(int n) {\n", P, k);
  W(c, "  for (int i = 0; i < n; i++)\n    for (int c = 0; c < %d; c++) {\n", C);
  W(c, "      const cnn_real v = %s_d%d[i * %d + c] / %d;\n", P, ob, C, HW);
  W(c, "      cnn_real *restrict dx = %s_d%d + (size_t)i * %ld + c * %d;\n", P, ib, c->tsize[k], HW);
  W(c, "      for (int p = 0; p < %d; p++)\n        dx[p] = v;\n    }\n}\n", HW);
  ig_close(c, dxm);
}

// log-softmax over the classes of each image (a 1x1 map).
static void emit_log_softmax(Ctx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int C = l->in.c;
  int ib = c->buf[k], ob = c->buf[k + 1];
  layer_comment(c, k);
  W(c, "// y = x - max - log(sum exp(x - max)).\n");
  W(c, "CNN_CLONES static void %s_l%d_log_softmax_forward(int n) {\n", P, k);
  W(c, "  for (int i = 0; i < n; i++) {\n");
  W(c, "    const cnn_real *restrict x = %s_a%d + i * %d;\n", P, ib, C);
  W(c, "    cnn_real *restrict y = %s_a%d + i * %d;\n", P, ob, C);
  W(c, "    cnn_real m = x[0];\n    for (int c = 1; c < %d; c++)\n      m = x[c] > m ? x[c] : m;\n", C);
  W(c, "    cnn_real s = 0;\n    for (int c = 0; c < %d; c++)\n      s += (cnn_real)exp((double)(x[c] - m));\n", C);
  W(c, "    const cnn_real lse = m + (cnn_real)log((double)s);\n");
  W(c, "    for (int c = 0; c < %d; c++)\n      y[c] = x[c] - lse;\n  }\n}\n", C);
  int dxm = c->gmode[k];
  if (!c->gmode[k + 1] || !dxm)
    return;
  ig_open(c, dxm);
  W(c, "// dx = dy - softmax * sum dy.\n");
  W(c, "CNN_CLONES static void %s_l%d_log_softmax_backward(int n) {\n", P, k);
  W(c, "  for (int i = 0; i < n; i++) {\n");
  W(c, "    const cnn_real *restrict y = %s_a%d + i * %d;\n", P, ob, C);
  W(c, "    const cnn_real *restrict dy = %s_d%d + i * %d;\n", P, ob, C);
  W(c, "    cnn_real *restrict dx = %s_d%d + i * %d;\n", P, ib, C);
  W(c, "    cnn_real s = 0;\n    for (int c = 0; c < %d; c++)\n      s += dy[c];\n", C);
  W(c, "    for (int c = 0; c < %d; c++)\n      dx[c] = dy[c] - (cnn_real)exp((double)y[c]) * s;\n  }\n}\n", C);
  ig_close(c, dxm);
}

// The name of layer k's forward function suffix and whether it takes `training`.
static const char *fwd_name(LayerKind k, int *takes_training) {
  *takes_training = k == L_BATCHNORM || k == L_DROPOUT || k == L_MAXPOOL;
  return k == L_BATCHNORM ? "bn" : layer_kind_name(k);
}

// The layer table as a comment at the top of the generated file.
static void emit_table(Ctx *c) {
  const Net *n = c->net;
  W(c, "//   #  layer        input        output       RF  params     MACs\n");
  for (int k = 0; k < n->n_layers; k++) {
    const Layer *l = &n->layers[k];
    char args[32] = "", in[24], out[24];
    if (l->kind == L_CONV || l->kind == L_MAXPOOL)
      snprintf(args, sizeof args, " %dx%d/%d", l->k, l->k, l->stride);
    char name[48];
    snprintf(name, sizeof name, "%s%s", layer_kind_name(l->kind), args);
    snprintf(in, sizeof in, "%dx%dx%d", l->in.h, l->in.w, l->in.c);
    snprintf(out, sizeof out, "%dx%dx%d", l->out.h, l->out.w, l->out.c);
    W(c, "//  %2d  %-12s %-12s %-12s %3d %7ld %8ld\n", k, name, in, out, l->rf, l->n_params, l->macs);
  }
  W(c, "//      total: %ld params, %ld state, %ld MACs per image\n", n->n_params, n->n_state, n->macs);
}

// Uppercase copy of s into buf.
static void upper(char *buf, size_t n, const char *s) {
  size_t i = 0;
  for (; s[i] && i + 1 < n; i++)
    buf[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
  buf[i] = '\0';
}

// The header: the descriptor and the train config.
static void emit_header(Ctx *c) {
  const Net *n = c->net;
  char U[128];
  upper(U, sizeof U, c->P);
  W(c, "// %s_train.h: generated by cnnc from the network '%s'. Do not edit.\n", c->P, c->P);
  W(c, "#ifndef %s_TRAIN_H\n#define %s_TRAIN_H\n\n#include \"cnn_net.h\"\n\n", U, U);
  W(c, "#define %s_TRAIN_BATCH %d\n", U, c->batch);
  W(c, "#define %s_TRAIN_IN_C %d\n#define %s_TRAIN_IN_H %d\n#define %s_TRAIN_IN_W %d\n", U, n->input.c, U,
    n->input.h, U, n->input.w);
  W(c, "// Forward multiply-accumulates per image (convolutions).\n#define %s_TRAIN_MACS %ldL\n", U, n->macs);
  W(c, "#define %s_TRAIN_CLASSES %d\n#define %s_TRAIN_N_PARAMS %ld\n#define %s_TRAIN_N_STATE %ld\n\n", U,
    n->classes, U, n->n_params, U, n->n_state);
  W(c, "// The train section of the model, as data.\nextern const cnn_train_config %s_train_config;\n", c->P);
  W(c, "// The network: parameters, init, forward, backward.\nextern cnn_net %s_net;\n\n", c->P);
  W(c, "#ifdef CNN_INPUT_GRAD\n// With -DCNN_INPUT_GRAD: the gradient of the last forward's mean loss\n"
       "// with respect to its input, [n][c][h][w], valid after backward.\n"
       "const cnn_real *%s_input_grad(void);\n#endif\n", c->P);
  W(c, "#ifdef CNN_EXPOSE_ACT\n// With -DCNN_EXPOSE_ACT (tests): the output of layer k - 1, [n][c][h][w]\n"
       "// (k = 0: the input), as the last forward left it.\n"
       "const cnn_real *%s_activation(int k);\n#endif\n\n#endif\n", c->P);
}

// The .c file.
static void emit_source(Ctx *c) {
  const Net *n = c->net;
  const char *P = c->P;
  int L = c->L;
  W(c, "// %s_train.c: generated by cnnc from the network '%s'. Do not edit.\n", P, P);
  W(c, "// Forward and backward passes over at most %d images, in the spirit of\n"
       "// llm.c: one static function pair per layer, every shape a literal.\n//\n", c->batch);
  emit_table(c);
  W(c, "//\n// Layout: activations per image in CHW order, [batch][c][h][w]. Images are\n"
       "// split into NGROUP fixed groups run in parallel; each group owns its im2col\n"
       "// buffer and gradient partial sums, combined in group order, so a run is\n"
       "// bit-for-bit the same whatever the number of threads. Each BatchNorm and\n"
       "// the dropout and ReLU after it run fused, one sweep per image (the conv\n"
       "// before it sums the statistics while its output is in cache). Build with\n"
       "// -DCNN_REAL=double for a double version, -DCNN_INPUT_GRAD to also keep\n"
       "// the gradient of the input.\n");
  W(c, "#include \"%s_train.h\"\n\n#include <math.h>\n#include <stdint.h>\n#include <string.h>\n\n#include <cblas.h>\n\n", P);
  W(c, "#ifdef _OPENMP\n#define CNN_OMP(x) _Pragma(#x)\n#else\n#define CNN_OMP(x)\n#endif\n\n");
  // AVX2 without FMA rounds like the baseline build: every sum whose order
  // could change is written with explicit lanes, and nothing is contracted.
  W(c, "// On x86-64 ELF hosts (gcc, clang >= 14) each layer function is also built\n"
       "// for AVX2 and picked when the program loads. AVX2 without FMA rounds\n"
       "// exactly like the baseline build, so results stay the same bits.\n"
       "// -DCNN_NO_CLONES builds the baseline only.\n");
  emit_clones_macro(c->f, "\"avx2\", \"default\"");
  W(c, "// cblas_sgemm or cblas_dgemm, following cnn_real.\n"
       "#define GEMM _Generic((cnn_real)0, float: cblas_sgemm, double: cblas_dgemm)\n\n");
  W(c, "#define BATCH %d\n#define NGROUP %d\n#define GSIZE %d\n\n", c->batch, c->ngroup, c->gsize);
  W(c, "const cnn_train_config %s_train_config = {\n", P);
  const TrainSpec *t = &n->train;
  static const char *sk[] = {"CNN_SCHED_CONSTANT", "CNN_SCHED_STEP", "CNN_SCHED_ONECYCLE"};
  W(c, "    .epochs = %d, .batch = %d, .seed = %lluULL,\n", t->epochs, c->batch, (unsigned long long)t->seed);
  W(c, "    .lr = %.17g, .momentum = %.17g, .dampening = %.17g, .weight_decay = %.17g, .nesterov = %d,\n", t->lr,
    t->momentum, t->dampening, t->weight_decay, t->nesterov ? 1 : 0);
  W(c, "    .sched = %s, .step_size = %d, .gamma = %.17g,\n", sk[t->sched], t->step_size, t->gamma);
  W(c, "    .max_lr = %.17g, .pct_start = %.17g, .div_factor = %.17g, .final_div_factor = %.17g,\n", t->max_lr,
    t->pct_start, t->div_factor, t->final_div_factor);
  W(c, "    .cycle_momentum = %d, .base_momentum = %.17g, .max_momentum = %.17g,\n", t->cycle_momentum ? 1 : 0,
    t->base_momentum, t->max_momentum);
  W(c, "    .mean = %.17g, .std = %.17g, .rotate = %.17g, .shift = %.17g,\n};\n\n", t->mean, t->std, t->rotate,
    t->shift);

  W(c, "// All parameters (conv weight [out][in][k][k] then bias; BN gamma, beta),\n"
       "// their gradients, and the BN running statistics (mean, var).\n");
  W(c, "static cnn_real %s_params[%ld], %s_grads[%ld];\n", P, n->n_params ? n->n_params : 1, P,
    n->n_params ? n->n_params : 1);
  W(c, "static cnn_real %s_state[%ld];\n\n", P, n->n_state ? n->n_state : 1);
  W(c, "// Activations (in-place layers share their input's buffer) and gradients.\n");
  for (int k = 0; k <= L; k++) {
    if (k > 0 && c->buf[k] == c->buf[k - 1])
      continue;
    W(c, "static cnn_real %s_a%d[BATCH * %ld]; // %s\n", P, c->buf[k], c->tsize[k],
      k == 0 ? "input" : layer_kind_name(n->layers[k - 1].kind));
  }
  for (int b = 0; b <= L; b++) {
    if (!c->bufg[b])
      continue;
    ig_open(c, c->bufg[b]);
    long sz = 0;
    for (int k = 0; k <= L; k++)
      if (c->buf[k] == b)
        sz = c->tsize[k];
    W(c, "static cnn_real %s_d%d[BATCH * %ld];\n", P, b, sz);
    ig_close(c, c->bufg[b]);
  }
  if (c->maxcol) {
    W(c, "// One image's im2col matrix (and its gradient) per group.\n");
    W(c, "static cnn_real %s_col[NGROUP][%ld];\n", P, c->maxcol);
    int dcol_mode = 0;
    for (int k = 0; k < L; k++) {
      const Layer *l = &n->layers[k];
      if (l->kind == L_CONV && !conv_is_direct(l) && !conv_is_pointwise(l) && c->gmode[k] && c->gmode[k + 1]) {
        int m = c->gmode[k] == 1 && c->gmode[k + 1] == 1 ? 1 : 2;
        if (dcol_mode == 0 || m == 1)
          dcol_mode = m;
      }
    }
    if (dcol_mode) {
      ig_open(c, dcol_mode);
      W(c, "static cnn_real %s_dcol[NGROUP][%ld];\n", P, c->maxcol);
      ig_close(c, dcol_mode);
    }
  }
  W(c, "// The last forward: its image count, mode, labels and dropout seed.\n");
  W(c, "static int %s_n, %s_training, %s_has_labels;\nstatic uint8_t %s_y[BATCH];\n", P, P, P, P);
  if (c->has_dropout)
    W(c, "static uint64_t %s_seed;\n", P);

  if (c->has_dropout) {
    W(c, "\n// Dropout masks come from a counter-based hash instead of a sequential RNG:\n"
         "// value j of image i in dropout layer k is kept when mix(mix(j ^ key0) + key1)\n"
         "// is below keep * 2^24, with keys from (seed, k, i). Masks depend only on\n"
         "// the forward's seed (never on the thread count) and the loops vectorize.\n");
    W(c, "// lowbias32 (Wellons): a 32-bit integer hash with good avalanche.\n");
    W(c, "static inline uint32_t %s_mix32(uint32_t x) {\n", P);
    W(c, "  x ^= x >> 16;\n  x *= 0x7feb352du;\n  x ^= x >> 15;\n  x *= 0x846ca68bu;\n  x ^= x >> 16;\n  return x;\n}\n");
    W(c, "// The two keys of image i in dropout layer k: splitmix64 of the seed.\n");
    W(c, "static void %s_drop_keys(int k, int i, uint32_t key[2]) {\n", P);
    W(c, "  uint64_t z = %s_seed + ((uint64_t)k * BATCH + (uint64_t)i + 1) * 0x9e3779b97f4a7c15ull;\n", P);
    W(c, "  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;\n  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;\n"
         "  z ^= z >> 31;\n  key[0] = (uint32_t)z;\n  key[1] = (uint32_t)(z >> 32);\n}\n");
  }
  for (int k = 0; k < L; k++) {
    if (absorbed(c, k))
      continue;
    switch (n->layers[k].kind) {
    case L_CONV: emit_conv(c, k); break;
    case L_BATCHNORM: emit_bn(c, k); break;
    case L_DROPOUT: emit_dropout(c, k); break;
    case L_RELU: emit_relu(c, k); break;
    case L_MAXPOOL: emit_maxpool(c, k); break;
    case L_GAP: emit_gap(c, k); break;
    case L_LOG_SOFTMAX: emit_log_softmax(c, k); break;
    }
  }

  // init
  W(c, "\n// PyTorch's defaults: conv weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))\n"
       "// (kaiming_uniform_ with a = sqrt(5)), BN gamma 1, beta 0, mean 0, var 1.\n");
  W(c, "static void %s_init(cnn_rng *rng) {\n", P);
  int any = 0;
  for (int k = 0; k < L; k++) {
    const Layer *l = &n->layers[k];
    if (l->kind == L_CONV) {
      long fan = (long)l->in.c * l->k * l->k, wsz = fan * l->out.c;
      W(c, "  { // layer %d conv, fan_in %ld\n", k, fan);
      W(c, "    const double bound = 1 / sqrt(%ld.0);\n", fan);
      W(c, "    for (int j = 0; j < %ld; j++)\n", wsz + (l->bias ? l->out.c : 0));
      W(c, "      %s_params[%ld + j] = (cnn_real)(-bound + 2 * bound * cnn_rng_uniform(rng));\n  }\n", P,
        (long)l->param_off);
      any = 1;
    } else if (l->kind == L_BATCHNORM) {
      int C = l->out.c;
      W(c, "  for (int j = 0; j < %d; j++) { // layer %d batchnorm\n", C, k);
      W(c, "    %s_params[%ld + j] = 1;\n    %s_params[%ld + j] = 0;\n", P, (long)l->param_off, P,
        (long)l->param_off + C);
      W(c, "    %s_state[%ld + j] = 0;\n    %s_state[%ld + j] = 1;\n  }\n", P, (long)l->state_off, P,
        (long)l->state_off + C);
    }
  }
  if (!any)
    W(c, "  (void)rng;\n");
  W(c, "}\n");

  // forward
  long in_sz = c->tsize[0];
  int C = n->classes, lb = c->buf[L];
  W(c, "\n// Runs n <= %d images; returns the mean NLL loss when labels are given.\n", c->batch);
  W(c, "static double %s_forward(const cnn_real *x, const uint8_t *y, int n, int training, cnn_rng *rng) {\n", P);
  W(c, "#if defined(_OPENMP) && defined(OPENBLAS_VERSION)\n"
       "  // The GEMMs run inside the parallel image loops: one BLAS thread each.\n"
       "  static int blas_single;\n  if (!blas_single) {\n    openblas_set_num_threads(1);\n    blas_single = 1;\n  }\n#endif\n");
  W(c, "  if (n > BATCH)\n    n = BATCH;\n  if (n < 1)\n    return 0;\n");
  W(c, "  %s_n = n;\n  %s_training = training;\n  %s_has_labels = y != NULL;\n", P, P, P);
  W(c, "  memcpy(%s_a0, x, (size_t)n * %ld * sizeof(cnn_real));\n", P, in_sz);
  if (c->has_dropout)
    W(c, "  if (training && rng) { // two draws, in a fixed order\n    const uint64_t hi = cnn_rng_u32(rng);\n"
         "    %s_seed = hi << 32 | cnn_rng_u32(rng);\n  }\n", P);
  else
    W(c, "  (void)rng;\n");
  for (int k = 0; k < L; k++) {
    if (absorbed(c, k))
      continue;
    int tt;
    const char *nm = fwd_name(n->layers[k].kind, &tt);
    if (n->layers[k].kind == L_CONV && conv_feeds_bn(c, k))
      tt = 1;
    W(c, "  %s_l%d_%s_forward(n%s);\n", P, k, nm, tt ? ", training" : "");
  }
  W(c, "  if (!y)\n    return 0;\n");
  W(c, "  double loss = 0;\n  for (int i = 0; i < n; i++) {\n    %s_y[i] = y[i];\n", P);
  W(c, "    if (y[i] < %d)\n      loss -= %s_a%d[i * %d + y[i]];\n  }\n  return loss / n;\n}\n", C, P, lb, C);

  // backward
  W(c, "\n// Gradient of the last forward's mean loss into %s_grads.\n", P);
  W(c, "static void %s_backward(void) {\n", P);
  W(c, "  const int n = %s_n;\n", P);
  W(c, "  if (!%s_has_labels || !%s_training) {\n", P, P);
  W(c, "    memset(%s_grads, 0, sizeof %s_grads);\n    return;\n  }\n", P, P);
  if (c->gmode[L]) {
    ig_open(c, c->gmode[L]);
    W(c, "  memset(%s_d%d, 0, (size_t)n * %d * sizeof(cnn_real));\n", P, lb, C);
    W(c, "  for (int i = 0; i < n; i++)\n    if (%s_y[i] < %d)\n      %s_d%d[i * %d + %s_y[i]] = (cnn_real)-1 / n;\n",
      P, C, P, lb, C, P);
    ig_close(c, c->gmode[L]);
  } else {
    W(c, "  (void)n;\n");
  }
  for (int k = L - 1; k >= 0; k--) {
    const Layer *l = &n->layers[k];
    int bw = c->gmode[k + 1];
    if (!bw)
      continue;
    // Parameterless layers have nothing to do unless their input needs a grad.
    if ((l->n_params == 0 && !c->gmode[k]) || absorbed(c, k))
      continue;
    int tt;
    const char *nm = fwd_name(l->kind, &tt);
    int mode = l->n_params ? bw : c->gmode[k];
    ig_open(c, mode);
    W(c, "  %s_l%d_%s_backward(n);\n", P, k, nm);
    ig_close(c, mode);
  }
  W(c, "}\n");
  W(c, "\n#ifdef CNN_INPUT_GRAD\nconst cnn_real *%s_input_grad(void) {\n  return %s_d0;\n}\n#endif\n", P, P);
  W(c, "\n#ifdef CNN_EXPOSE_ACT\nconst cnn_real *%s_activation(int k) {\n  switch (k) {\n", P);
  for (int k = 0; k <= L; k++)
    W(c, "  case %d:\n    return %s_a%d;\n", k, P, c->buf[k]);
  W(c, "  }\n  return NULL;\n}\n#endif\n");

  W(c, "\ncnn_net %s_net = {\n", P);
  W(c, "    .name = \"%s\",\n    .batch = BATCH,\n", P);
  W(c, "    .in_c = %d, .in_h = %d, .in_w = %d,\n    .classes = %d,\n", n->input.c, n->input.h, n->input.w, C);
  W(c, "    .shape_hash = 0x%016llxULL,\n", (unsigned long long)n->shape_hash);
  W(c, "    .n_params = %ld, .params = %s_params, .grads = %s_grads,\n", n->n_params, P, P);
  W(c, "    .n_state = %ld, .state = %s_state,\n", n->n_state, P);
  W(c, "    .train = &%s_train_config,\n", P);
  W(c, "    .init = %s_init,\n    .forward = %s_forward,\n    .backward = %s_backward,\n", P, P, P);
  W(c, "    .logprobs = %s_a%d,\n};\n", P, lb);
}

int emit_train(const Net *net, const char *outdir, const EmitOptions *opt) {
  Ctx c = {0};
  c.net = net;
  c.P = net->name;
  c.L = net->n_layers;
  c.batch = opt && opt->batch > 0 ? opt->batch : net->train.batch > 0 ? net->train.batch : 64;
  c.ngroup = c.batch < 8 ? c.batch : 8;
  c.gsize = (c.batch + c.ngroup - 1) / c.ngroup;
  int L = c.L;
  c.tsize = calloc((size_t)L + 1, sizeof *c.tsize);
  c.buf = calloc((size_t)L + 1, sizeof *c.buf);
  c.gmode = calloc((size_t)L + 1, sizeof *c.gmode);
  c.bufg = calloc((size_t)L + 1, sizeof *c.bufg);
  if (!c.tsize || !c.buf || !c.gmode || !c.bufg) {
    fprintf(stderr, "cnnc: error: out of memory\n");
    free(c.tsize), free(c.buf), free(c.gmode), free(c.bufg);
    return 1;
  }
  c.tsize[0] = (long)net->input.c * net->input.h * net->input.w;
  int first_param = L;
  for (int k = 0; k < L; k++) {
    const Layer *l = &net->layers[k];
    c.tsize[k + 1] = l->act_size;
    int inplace = l->kind == L_DROPOUT || l->kind == L_RELU;
    c.buf[k + 1] = inplace ? c.buf[k] : k + 1;
    if (l->n_params && first_param == L)
      first_param = k;
    if (l->kind == L_DROPOUT)
      c.has_dropout = 1;
    if (l->kind == L_CONV && !conv_is_direct(l) && !conv_is_pointwise(l)) {
      long m = (long)l->in.c * l->k * l->k * l->out.h * l->out.w;
      if (m > c.maxcol)
        c.maxcol = m;
    }
  }
  // A tensor's gradient is needed when a layer before it has parameters;
  // the others only for the input gradient (-DCNN_INPUT_GRAD).
  for (int k = 0; k <= L; k++) {
    c.gmode[k] = k > first_param ? 1 : 2;
    if (c.gmode[k] > c.bufg[c.buf[k]] && c.bufg[c.buf[k]] != 1)
      c.bufg[c.buf[k]] = c.gmode[k];
    if (c.gmode[k] == 1)
      c.bufg[c.buf[k]] = 1;
  }

  int rc = 1;
  char name[512];
  EmitFile ef;
  if (emit_mkdirs(outdir) != 0)
    goto done;
  snprintf(name, sizeof name, "%s_train.h", net->name);
  if (emit_file_open(&ef, outdir, name) != 0)
    goto done;
  c.f = ef.f;
  emit_header(&c);
  if (emit_file_close(&ef) != 0)
    goto done;
  snprintf(name, sizeof name, "%s_train.c", net->name);
  if (emit_file_open(&ef, outdir, name) != 0)
    goto done;
  c.f = ef.f;
  emit_source(&c);
  if (emit_file_close(&ef) != 0)
    goto done;
  rc = 0;
done:
  free(c.tsize);
  free(c.buf);
  free(c.gmode);
  free(c.bufg);
  return rc;
}
