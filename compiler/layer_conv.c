// layer_conv.c: conv(out_channels, kernel = 3, stride = 1, padding = 0,
// bias = true, groups = 1) — PyTorch's Conv2d, with Keras 'same' padding.
// Training: im2col + GEMM per image (and per group), or direct loops when
// the inner dimension is tiny; inference: a row function of the plan.
#include <stdio.h>
#include <string.h>

#include "layers.h"

static const ParamSpec conv_params[] = {
    {"out_channels", "channels", P_INT, true}, {"kernel", "k", P_PAIR, false},
    {"stride", NULL, P_PAIR, false},           {"padding", "pad", P_PAD, false},
    {"bias", NULL, P_BOOL, false},             {"groups", NULL, P_INT, false}};

// Reads the arguments: 3x3 windows, stride 1, no padding, bias, one group.
static bool conv_args(ArgList *a, Layer *l) {
  bool ok = arg_int(a, 0, "out_channels", 1, 1, &l->units);
  ok &= arg_pair(a, 1, "kernel", 1, 3, &l->kh, &l->kw);
  ok &= arg_pair(a, 2, "stride", 1, 1, &l->sh, &l->sw);
  ok &= arg_padding(a, 3, l);
  l->bias = a->has[4] ? a->v[4].b : true;
  ok &= arg_int(a, 5, "groups", 1, 1, &l->groups);
  return ok;
}

// Checks the window against the input and sets the output shape.
static bool conv_shape(Layer *l, char *msg, size_t n) {
  const Shape s = l->in;
  l->out.c = l->units;
  if (s.c % l->groups || l->out.c % l->groups) {
    snprintf(msg, n, "conv groups %d must divide its %d input and %d output channels", l->groups, s.c,
             l->out.c);
    return false;
  }
  if (l->same) {
    same_padding(s.h, l->kh, l->sh, &l->pt, &l->pb);
    same_padding(s.w, l->kw, l->sw, &l->pl, &l->pr);
  } else if (l->pt >= l->kh || l->pl >= l->kw) {
    snprintf(msg, n, "conv padding %d must be smaller than its kernel %d", l->pt >= l->kh ? l->pt : l->pl,
             l->pt >= l->kh ? l->kh : l->kw);
    return false;
  }
  int oh = window_out(s.h, l->kh, l->sh, l->pt, l->pb), ow = window_out(s.w, l->kw, l->sw, l->pl, l->pr);
  if (oh <= 0 || ow <= 0) {
    char win[32];
    fmt_window(win, sizeof win, l->kh, l->kw);
    snprintf(msg, n, "conv kernel %s is larger than its %dx%dx%d input%s", win, s.h, s.w, s.c,
             l->pt + l->pb + l->pl + l->pr ? " (with padding)" : "");
    return false;
  }
  l->out.h = oh;
  l->out.w = ow;
  return rf_window(l, l->kh, l->kw, l->sh, l->sw);
}

// Weights out.c x in.c/groups x kh x kw, a bias per output channel.
static bool conv_costs(Layer *l) {
  long w = l->out.c;
  if (!mul_ok(&w, l->in.c / l->groups) || !mul_ok(&w, l->kh) || !mul_ok(&w, l->kw))
    return false;
  l->n_params = w + (l->bias ? l->out.c : 0);
  l->macs = l->out.h;
  return mul_ok(&l->macs, l->out.w) && mul_ok(&l->macs, w);
}

// "(3x3x16)x16", then stride, padding, groups and bias when not the default.
static void conv_transform(const Layer *l, char *buf, size_t n) {
  int o = snprintf(buf, n, "(%dx%dx%d)x%d", l->kh, l->kw, l->in.c / l->groups, l->out.c);
  if (l->sh == l->sw && l->sh != 1 && o >= 0 && (size_t)o < n)
    o += snprintf(buf + o, n - (size_t)o, " s%d", l->sh);
  else if (l->sh != l->sw && o >= 0 && (size_t)o < n)
    o += snprintf(buf + o, n - (size_t)o, " s%dx%d", l->sh, l->sw);
  if (l->same && o >= 0 && (size_t)o < n)
    o += snprintf(buf + o, n - (size_t)o, " same");
  else if ((l->pt || l->pb || l->pl || l->pr) && o >= 0 && (size_t)o < n) {
    if (l->pt == l->pb && l->pt == l->pl && l->pt == l->pr)
      o += snprintf(buf + o, n - (size_t)o, " p%d", l->pt);
    else
      o += snprintf(buf + o, n - (size_t)o, " p%d,%d,%d,%d", l->pt, l->pb, l->pl, l->pr);
  }
  if (l->groups > 1 && o >= 0 && (size_t)o < n)
    o += snprintf(buf + o, n - (size_t)o, l->groups == l->in.c ? " dw" : " g%d", l->groups);
  if (l->bias && o >= 0 && (size_t)o < n)
    snprintf(buf + o, n - (size_t)o, " +bias");
}

static int has_pad(const Layer *l) {
  return l->pt || l->pb || l->pl || l->pr;
}

// Whether a conv reads its input directly as the GEMM operand (no im2col).
static int conv_is_pointwise(const Layer *l) {
  return l->kh == 1 && l->kw == 1 && l->sh == 1 && l->sw == 1 && !has_pad(l);
}

// Whether a conv is computed with direct loops instead of im2col + GEMM: only
// when the GEMM's inner dimension (in.c * kh * kw) is tiny. mnist14k's first
// conv (1 channel, 3x3: 9) measured faster as im2col + GEMM than as direct
// loops (their 26-wide rows do not vectorize at -O2).
static int conv_is_direct(const Layer *l) {
  return l->groups == 1 && l->in.c * l->kh * l->kw < 8 && !has_pad(l) && l->sh == 1 && l->sw == 1 &&
         l->kh * l->kw > 1;
}

// Values of one image's im2col matrix (0 when the conv needs none).
static long conv_col_size(const Layer *l) {
  if (conv_is_direct(l) || conv_is_pointwise(l))
    return 0;
  return (long)l->in.c * l->kh * l->kw * l->out.h * l->out.w;
}

// The body of a stride-1, unpadded col2im, one input row at a time: each
// element takes its kw column values in one pass (kx ascending, the order of
// the plain loop nest, so the sums are the same bits). Adding the kw shifted
// rows one after another instead makes every store overlap the next row's
// loads, which stalls on store forwarding.
static void emit_col2im_rows(TrainCtx *c, const Layer *l, int P) {
  int KH = l->kh, KW = l->kw, OW = l->out.w, IW = l->in.w;
  W(c, "  for (int c = 0; c < %d; c++)\n    for (int ky = 0; ky < %d; ky++)\n", l->in.c, KH);
  W(c, "      for (int oy = 0; oy < %d; oy++) {\n", l->out.h);
  W(c, "        cnn_real *restrict xr = x + (c * %d + oy + ky) * %d;\n", l->in.h, IW);
  W(c, "        const cnn_real *restrict d = col + (c * %d + ky) * %d + oy * %d; // + kx * %d\n", KH, KW * P, OW, P);
  // Interior: all kw terms exist.
  W(c, "        for (int ix = %d; ix < %d; ix++)\n          xr[ix] = xr[ix]", KW - 1, OW);
  for (int kx = 0; kx < KW; kx++)
    W(c, " + d[%d + ix]", kx * P - kx);
  W(c, ";\n");
  // The kw - 1 columns at each edge: the terms that exist, kx ascending.
  W(c, "        for (int ix = 0; ix < %d; ix++)\n", KW - 1);
  W(c, "          for (int kx = 0; kx <= ix; kx++)\n            xr[ix] += d[kx * %d + ix - kx];\n", P);
  W(c, "        for (int ix = %d; ix < %d; ix++)\n", OW, IW);
  W(c, "          for (int kx = ix - %d; kx < %d; kx++)\n            xr[ix] += d[kx * %d + ix - kx];\n", OW - 1, KW, P);
  W(c, "      }\n}\n");
}

// im2col (or col2im when back) for one image of conv layer k, as a function.
static void emit_im2col(TrainCtx *c, int k, int back) {
  const Layer *l = &c->net->layers[k];
  int P = l->out.h * l->out.w;
  int rpad = l->pt || l->pb, cpad = l->pl || l->pr;
  if (back)
    W(c, "// Adds the column gradient of one image back onto its input gradient.\n"
         "CNN_CLONES static void %s_l%d_col2im(const cnn_real *restrict col, cnn_real *restrict x) {\n", c->P, k);
  else
    W(c, "// Unfolds one image: col[(c*%d+ky)*%d+kx][oy*%d+ox] = x[c][oy*%d+ky-%d][ox*%d+kx-%d].\n"
         "CNN_CLONES static void %s_l%d_im2col(const cnn_real *restrict x, cnn_real *restrict col) {\n",
      l->kh, l->kw, l->out.w, l->sh, l->pt, l->sw, l->pl, c->P, k);
  if (back && l->sh == 1 && l->sw == 1 && !has_pad(l) && l->out.w >= l->kw) {
    emit_col2im_rows(c, l, P);
    return;
  }
  W(c, "  for (int c = 0; c < %d; c++)\n"
       "    for (int ky = 0; ky < %d; ky++)\n"
       "      for (int kx = 0; kx < %d; kx++) {\n",
    l->in.c, l->kh, l->kw);
  W(c, "        %scnn_real *restrict d = col + ((c * %d + ky) * %d + kx) * %d;\n", back ? "const " : "",
    l->kh, l->kw, P);
  W(c, "        for (int oy = 0; oy < %d; oy++) {\n", l->out.h);
  W(c, "          const int iy = oy * %d + ky - %d;\n", l->sh, l->pt);
  if (rpad) {
    W(c, "          if (iy < 0 || iy >= %d) {\n", l->in.h);
    if (!back)
      W(c, "            for (int ox = 0; ox < %d; ox++)\n              d[oy * %d + ox] = 0;\n", l->out.w, l->out.w);
    W(c, "            continue;\n          }\n");
  }
  if (l->sh == 1 && l->sw == 1 && has_pad(l)) {
    // Stride 1, padded: each row is a run of the input row between zeros
    // (or, back, adds onto one), without a test per element.
    W(c, "          const int lo = kx < %d ? %d - kx : 0, hi = %d - kx < %d ? %d - kx : %d;\n", l->pl, l->pl,
      l->in.w + l->pl, l->out.w, l->in.w + l->pl, l->out.w);
    if (back) {
      W(c, "          cnn_real *restrict xr = x + (c * %d + iy) * %d;\n", l->in.h, l->in.w);
      W(c, "          for (int ox = lo; ox < hi; ox++)\n            xr[ox + kx - %d] += d[oy * %d + ox];\n", l->pl,
        l->out.w);
    } else {
      W(c, "          const cnn_real *restrict xr = x + (c * %d + iy) * %d;\n", l->in.h, l->in.w);
      W(c, "          cnn_real *restrict dr = d + oy * %d;\n", l->out.w);
      W(c, "          for (int ox = 0; ox < lo; ox++)\n            dr[ox] = 0;\n");
      W(c, "          for (int ox = lo; ox < hi; ox++)\n            dr[ox] = xr[ox + kx - %d];\n", l->pl);
      W(c, "          for (int ox = hi; ox < %d; ox++)\n            dr[ox] = 0;\n", l->out.w);
    }
    W(c, "        }\n      }\n}\n");
    return;
  }
  if (!back && l->sh == 1 && l->sw == 1 && !has_pad(l)) {
    // Stride 1, no padding: each output row is a contiguous run of the input row.
    W(c, "          memcpy(d + oy * %d, x + (c * %d + iy) * %d + kx, %d * sizeof(cnn_real));\n", l->out.w, l->in.h,
      l->in.w, l->out.w);
    W(c, "        }\n      }\n}\n");
    return;
  }
  W(c, "          for (int ox = 0; ox < %d; ox++) {\n", l->out.w);
  W(c, "            const int ix = ox * %d + kx - %d;\n", l->sw, l->pl);
  char sbuf[96];
  snprintf(sbuf, sizeof sbuf, "x[(c * %d + iy) * %d + ix]", l->in.h, l->in.w);
  if (back) {
    if (cpad)
      W(c, "            if (ix >= 0 && ix < %d)\n  ", l->in.w);
    W(c, "            %s += d[oy * %d + ox];\n", sbuf, l->out.w);
  } else {
    if (cpad)
      W(c, "            d[oy * %d + ox] = ix >= 0 && ix < %d ? %s : 0;\n", l->out.w, l->in.w, sbuf);
    else
      W(c, "            d[oy * %d + ox] = %s;\n", l->out.w, sbuf);
  }
  W(c, "          }\n        }\n      }\n}\n");
}

// One GEMM of the conv: for a single group as written, or inside a loop over
// the groups with each operand advanced by its group's block.
static void emit_gemm(TrainCtx *c, int G, const char *ind, const char *fmt, const char *ga, const char *gb,
                      const char *gc, int m, int nn, int kk, const char *a, int lda, const char *b, int ldb,
                      const char *beta, const char *cc, int ldc) {
  if (G == 1) {
    W(c, "%sGEMM(CblasRowMajor, %s, %d, %d, %d, 1, %s, %d, %s, %d, %s, %s, %d);\n", ind, fmt, m, nn, kk, a, lda, b,
      ldb, beta, cc, ldc);
    return;
  }
  W(c, "%sfor (int gr = 0; gr < %d; gr++) // one GEMM per group\n", ind, G);
  W(c, "%s  GEMM(CblasRowMajor, %s, %d, %d, %d, 1, %s + gr * %s, %d, %s + gr * %s, %d, %s, %s + gr * %s, %d);\n", ind,
    fmt, m, nn, kk, a, ga, lda, b, gb, ldb, beta, cc, gc, ldc);
}

// Conv layer k: forward and backward (GEMM or direct).
static void conv_emit(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int G = l->groups, IC = l->in.c, OC = l->out.c, ICg = IC / G, OCg = OC / G;
  int KH = l->kh, KW = l->kw;
  int KK = ICg * KH * KW, NP = l->out.h * l->out.w;
  long WSZ = (long)OC * KK;
  long off = (long)l->param_off;
  int ib = c->ibuf[k], ob = c->buf[k + 1];
  int dxmode = c->gmode[l->src];
  int bwmode = c->gmode[k + 1];
  int direct = conv_is_direct(l), pw = conv_is_pointwise(l);
  // Group offsets of the weights, the unfolded (or plain) input, the output.
  char gw[32], gx[32], gy[32];
  snprintf(gw, sizeof gw, "%d", OCg * KK);
  snprintf(gx, sizeof gx, "%d", KK * NP);
  snprintf(gy, sizeof gy, "%d", OCg * NP);
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
  if (G == 1)
    W(c, "// y[%d][%d] = W[%d][%d] * x%s%s.\n", OC, NP, OC, KK,
      direct ? " (direct loops)" : pw ? " (1x1: x is the GEMM operand)" : " unfolded", l->bias ? " + b" : "");
  else
    W(c, "// For each of %d groups: y[%d][%d] = W[%d][%d] * x%s%s.\n", G, OCg, NP, OCg, KK,
      pw ? " (1x1: x is the GEMM operand)" : " unfolded", l->bias ? " + b" : "");
  int stats = k + 1 < c->L && c->bn_stats[k + 1] == k;
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
  W(c, "      const cnn_real *restrict x = %s_a%d + (size_t)i * %ld;\n", P, ib, c->isize[k]);
  W(c, "      cnn_real *restrict y = %s_a%d + (size_t)i * %ld;\n", P, ob, c->tsize[k + 1]);
  if (direct) {
    // Each weight sweeps the whole output plane: contiguous, vectorizable.
    W(c, "      for (int o = 0; o < %d; o++) {\n", OC);
    W(c, "        cnn_real *restrict yo = y + o * %d;\n", NP);
    W(c, "        for (int p = 0; p < %d; p++)\n          yo[p] = %s;\n", NP, l->bias ? "b[o]" : "0");
    W(c, "        for (int c = 0; c < %d; c++)\n", IC);
    W(c, "          for (int ky = 0; ky < %d; ky++)\n", KH);
    W(c, "            for (int kx = 0; kx < %d; kx++) {\n", KW);
    W(c, "              const cnn_real wv = w[((o * %d + c) * %d + ky) * %d + kx];\n", IC, KH, KW);
    W(c, "              const cnn_real *restrict xs = x + (c * %d + ky) * %d + kx;\n", l->in.h, l->in.w);
    W(c, "              for (int oy = 0; oy < %d; oy++)\n", l->out.h);
    W(c, "                for (int ox = 0; ox < %d; ox++)\n", l->out.w);
    W(c, "                  yo[oy * %d + ox] += wv * xs[oy * %d + ox];\n", l->out.w, l->in.w);
    W(c, "            }\n      }\n");
  } else {
    if (!pw)
      W(c, "      %s_l%d_im2col(x, col);\n", P, k);
    emit_gemm(c, G, "      ", "CblasNoTrans, CblasNoTrans", gw, gx, gy, OCg, NP, KK, "w", KK, pw ? "x" : "col", NP,
              "0", "y", NP);
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
  W(c, "      const cnn_real *restrict x = %s_a%d + (size_t)i * %ld;\n", P, ib, c->isize[k]);
  W(c, "      const cnn_real *restrict dy = %s_d%d + (size_t)i * %ld;\n", P, ob, c->tsize[k + 1]);
  if (direct) {
    // Row-wise accumulators keep the sum vectorizable and its order fixed.
    W(c, "      for (int o = 0; o < %d; o++)\n", OC);
    W(c, "        for (int c = 0; c < %d; c++)\n", IC);
    W(c, "          for (int ky = 0; ky < %d; ky++)\n", KH);
    W(c, "            for (int kx = 0; kx < %d; kx++) {\n", KW);
    W(c, "              const cnn_real *restrict xs = x + (c * %d + ky) * %d + kx;\n", l->in.h, l->in.w);
    W(c, "              const cnn_real *restrict dyo = dy + o * %d;\n", NP);
    W(c, "              cnn_real acc[%d] = {0};\n", l->out.w);
    W(c, "              for (int oy = 0; oy < %d; oy++)\n", l->out.h);
    W(c, "                for (int ox = 0; ox < %d; ox++)\n", l->out.w);
    W(c, "                  acc[ox] += dyo[oy * %d + ox] * xs[oy * %d + ox];\n", l->out.w, l->in.w);
    W(c, "              cnn_real s = 0;\n");
    W(c, "              for (int ox = 0; ox < %d; ox++)\n                s += acc[ox];\n", l->out.w);
    W(c, "              const int j = ((o * %d + c) * %d + ky) * %d + kx;\n", IC, KH, KW);
    W(c, "              dw[j] = first ? s : dw[j] + s;\n");
    W(c, "            }\n");
  } else {
    if (!pw)
      W(c, "      %s_l%d_im2col(x, col);\n", P, k);
    emit_gemm(c, G, "      ", "CblasNoTrans, CblasTrans", gy, gx, gw, OCg, KK, NP, "dy", NP, pw ? "x" : "col", NP,
              "first ? 0 : 1", "dw", KK);
  }
  if (l->bias) {
    W(c, "      for (int o = 0; o < %d; o++) {\n", OC);
    W(c, "        cnn_real s = first ? 0 : db[o];\n");
    W(c, "        for (int p = 0; p < %d; p++)\n          s += dy[o * %d + p];\n", NP, NP);
    W(c, "        db[o] = s;\n      }\n");
  }
  if (dxmode) {
    ig_open(c, dxmode);
    W(c, "      cnn_real *restrict dx = %s + (size_t)i * %ld;\n", c->dx[k], c->isize[k]);
    if (pw) {
      emit_gemm(c, G, "      ", "CblasTrans, CblasNoTrans", gw, gy, gx, KK, NP, OCg, "w", KK, "dy", NP, "0", "dx", NP);
    } else if (direct) {
      // Direct convs are only used for 1-channel inputs, which come first.
      W(c, "      for (int q = 0; q < %ld; q++)\n        dx[q] = 0;\n", c->isize[k]);
      W(c, "      for (int o = 0; o < %d; o++)\n", OC);
      W(c, "        for (int c = 0; c < %d; c++)\n", IC);
      W(c, "          for (int ky = 0; ky < %d; ky++)\n", KH);
      W(c, "            for (int kx = 0; kx < %d; kx++) {\n", KW);
      W(c, "              const cnn_real wv = w[((o * %d + c) * %d + ky) * %d + kx];\n", IC, KH, KW);
      W(c, "              cnn_real *restrict xs = dx + (c * %d + ky) * %d + kx;\n", l->in.h, l->in.w);
      W(c, "              for (int oy = 0; oy < %d; oy++)\n", l->out.h);
      W(c, "                for (int ox = 0; ox < %d; ox++)\n", l->out.w);
      W(c, "                  xs[oy * %d + ox] += wv * dy[o * %d + oy * %d + ox];\n", l->in.w, NP, l->out.w);
      W(c, "            }\n");
    } else {
      emit_gemm(c, G, "      ", "CblasTrans, CblasNoTrans", gw, gy, gx, KK, NP, OCg, "w", KK, "dy", NP, "0", "dcol",
                NP);
      W(c, "      for (int q = 0; q < %ld; q++)\n        dx[q] = 0;\n", c->isize[k]);
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

// PyTorch's Conv2d init: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
static void conv_init(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  long fan = (long)(l->in.c / l->groups) * l->kh * l->kw;
  emit_uniform_init(c, k, "conv", fan, fan * l->out.c + (l->bias ? l->out.c : 0), (long)l->param_off);
}

// A conv op of the plan; the row functions take square windows, symmetric
// padding and one group for now.
// An op of its own; batchnorm and relu after it fold into it.
static int conv_lower(InferPlan *p, const Net *net, int i, char *msg, size_t n) {
  (void)msg, (void)n;
  infer_plan_new_op(p, &net->layers[i], i, IOP_CONV);
  return 0;
}

// PyTorch's Conv2d; Keras' uneven 'same' padding as a ZeroPad2d before it.
static void conv_torch(const Layer *l, char *mod, size_t n, char *pre, size_t pren) {
  char k[32], s[48] = "", p[48] = "", g[24] = "";
  fmt_torch_pair(k, sizeof k, l->kh, l->kw);
  if (l->sh != 1 || l->sw != 1) {
    char v[32];
    fmt_torch_pair(v, sizeof v, l->sh, l->sw);
    snprintf(s, sizeof s, ", stride=%s", v);
  }
  bool even = l->pt == l->pb && l->pl == l->pr;
  if (!even)
    snprintf(pre, pren, "nn.ZeroPad2d((%d, %d, %d, %d))", l->pl, l->pr, l->pt, l->pb);
  else if (l->pt || l->pl) {
    char v[32];
    fmt_torch_pair(v, sizeof v, l->pt, l->pl);
    snprintf(p, sizeof p, ", padding=%s", v);
  }
  if (l->groups > 1)
    snprintf(g, sizeof g, ", groups=%d", l->groups);
  snprintf(mod, n, "nn.Conv2d(%d, %d, %s%s%s%s%s)", l->in.c, l->out.c, k, s, p, g, l->bias ? "" : ", bias=False");
}

// weight [out][in / groups][kh][kw], then bias [out]: PyTorch's layout.
static int conv_tensors(const Layer *l, LayerTensor t[4]) {
  t[0] = (LayerTensor){"weight", false, 0, 4, {l->out.c, l->in.c / l->groups, l->kh, l->kw}};
  t[1] = (LayerTensor){"bias", false, (long)l->out.c * (l->in.c / l->groups) * l->kh * l->kw, 1, {l->out.c}};
  return l->bias ? 2 : 1;
}

const LayerDef layer_conv = {
    .name = "conv", .params = conv_params, .n_params = 6,
    .args = conv_args, .shape = conv_shape, .costs = conv_costs, .transform = conv_transform, .window = true,
    .fn = "conv", .emit_train = conv_emit, .emit_init = conv_init, .col_size = conv_col_size,
    .lower = conv_lower,
    .torch = conv_torch, .torch_in = 4, .tensors = conv_tensors,
};
