// conv_lanes.c: training kernels for small-map convs with images as the
// vector lanes (see conv_lanes.h). On a 9x9 map a vector of 16 columns
// covers a row badly (the direct kernels used 72-77% of their lanes there)
// and the input gradient's bordered dy makes a third to a half of its taps
// zeros; with one image per lane every lane is used, every loop bound is a
// constant of the shape, and the input gradient visits only the taps that
// exist. The cost is a transpose of the tensors in and out (a vl x vl block
// at a time, in registers). Tiles: the forward keeps OB output channels x
// Q columns of an output row; the input gradient CB input channels x Q
// columns of an input row; the weight gradient OB channels x the window's
// taps, summed over all positions of one image per lane.
#include "conv_lanes.h"

#include <stdio.h>

// The vector type and register count of d's width.
static const char *ltype(const LaneDims *d) {
  return d->vl == 16 ? "cnn_v16" : "cnn_v8";
}
static int lregs(const LaneDims *d) {
  return d->vl == 16 ? 32 : 16;
}

int lanes_per_group(int gsize) {
  int gl = 1;
  while (gl < gsize)
    gl *= 2;
  return gl <= 8 ? gl : 0;
}

void emit_lanes_images(TrainCtx *c, const LaneDims *d, const char *ind) {
  int m = d->vl / d->gl;
  W(c, "%sint li[%d];\n", ind, d->vl);
  W(c, "%sfor (int u = 0; u < %d; u++) {\n", ind, d->vl);
  W(c, "%s  const int g = s * %d + u / %d, i = g * GSIZE + u %% %d;\n", ind, m, d->gl, d->gl);
  W(c, "%s  li[u] = u %% %d < GSIZE && g < NGROUP && i < n ? i : -1;\n%s}\n", ind, d->gl, ind);
}

// Swaps vectors r0..r(vl-1) for their transpose: stage h exchanges bit h of
// the row and column indices (two shuffles of two rows each).
static void emit_transpose(TrainCtx *c, const LaneDims *d, const char *ind) {
  int vl = d->vl;
  for (int h = vl / 2; h >= 1; h /= 2)
    for (int r = 0; r < vl; r++) {
      if (r & h)
        continue;
      W(c, "%s{ const %s t0 = __builtin_shufflevector(r%d, r%d", ind, ltype(d), r, r | h);
      for (int col = 0; col < vl; col++)
        W(c, ", %d", col & h ? vl + col - h : col);
      W(c, "), t1 = __builtin_shufflevector(r%d, r%d", r, r | h);
      for (int col = 0; col < vl; col++)
        W(c, ", %d", col & h ? vl + col : col + h);
      W(c, "); r%d = t0; r%d = t1; }\n", r, r | h);
    }
}

// The pack (or unpack when back): full blocks of vl values transposed in
// registers where the compiler has __builtin_shufflevector, the rest (and
// everything elsewhere) one value at a time.
static void emit_pack(TrainCtx *c, const LaneDims *d, const char *dst, const char *src, long size, int back,
                      const char *ind) {
  int vl = d->vl;
  long full = size / vl * vl;
  const char *vt = ltype(d);
  W(c, "%s{ // %s\n", ind, back ? "unpack: lanes to images" : "pack: images to lanes");
  W(c, "%s  long j0 = 0;\n", ind);
  if (full) {
    W(c, "#if CNN_HAS_SHUFFLEVECTOR\n");
    W(c, "%s  for (; j0 < %ld; j0 += %d) {\n", ind, full, vl);
    W(c, "%s    %s r0", ind, vt);
    for (int u = 1; u < vl; u++)
      W(c, ", r%d", u);
    W(c, ";\n");
    for (int u = 0; u < vl; u++) {
      if (back)
        W(c, "%s    memcpy(&r%d, %s + (size_t)(j0 + %d) * %d, sizeof r%d);\n", ind, u, src, u, vl, u);
      else
        W(c, "%s    if (li[%d] >= 0) memcpy(&r%d, %s + (size_t)li[%d] * %ld + j0, sizeof r%d); else r%d = (%s){0};\n",
          ind, u, u, src, u, size, u, u, vt);
    }
    char in2[64];
    snprintf(in2, sizeof in2, "%s    ", ind);
    emit_transpose(c, d, in2);
    for (int u = 0; u < vl; u++) {
      if (back)
        W(c, "%s    if (li[%d] >= 0) memcpy(%s + (size_t)li[%d] * %ld + j0, &r%d, sizeof r%d);\n", ind, u, dst, u, size,
          u, u);
      else
        W(c, "%s    memcpy(%s + (size_t)(j0 + %d) * %d, &r%d, sizeof r%d);\n", ind, dst, u, vl, u, u);
    }
    W(c, "%s  }\n#endif\n", ind);
  }
  W(c, "%s  for (int u = 0; u < %d; u++)\n", ind, vl);
  W(c, "%s    for (long j = j0; j < %ld; j++)\n", ind, size);
  if (back)
    W(c, "%s      if (li[u] >= 0)\n%s        %s[(size_t)li[u] * %ld + j] = %s[j * %d + u];\n", ind, ind, dst, size, src, vl);
  else
    W(c, "%s      %s[j * %d + u] = li[u] >= 0 ? %s[(size_t)li[u] * %ld + j] : 0;\n", ind, dst, vl, src, size);
  W(c, "%s}\n", ind);
}

void emit_lanes_pack(TrainCtx *c, const LaneDims *d, const char *dst, const char *src, long size,
                     const char *ind) {
  emit_pack(c, d, dst, src, size, 0, ind);
}

void emit_lanes_unpack(TrainCtx *c, const LaneDims *d, const char *dst, const char *src, long size,
                       const char *ind) {
  emit_pack(c, d, dst, src, size, 1, ind);
}

// A tile of b channels x q columns of a row of width n: the most
// accumulators that leave a register for each of the tile's b * kw weights
// and the vector loaded (b * q + b * kw + 1), columns split evenly; of
// equal counts, b dividing the channels. (3 channels x 9 columns with the
// weights re-read ran 20% slower than 2 x 9 in a 11x11 -> 9x9 forward.)
static void row_tile(const LaneDims *d, int chans, int n, int *bb, int *qq) {
  int regs = lregs(d), best = 0, bq = 1;
  for (int b = 1; b <= chans && b <= 8; b++) {
    int qmax = (regs - b * d->kw - 1) / b;
    if (qmax < 1)
      break;
    int parts = (n + qmax - 1) / qmax, q = (n + parts - 1) / parts;
    int score = b * q * 2 + (chans % b == 0);
    if (score > best) {
      best = score;
      *bb = b;
      bq = q;
    }
  }
  *qq = bq;
}

// One tile of the forward: channels o + 0..b-1, output row oy, columns
// [x0, x0 + q): for each c and ky, each input column of the window's reach
// once, into the outputs it feeds (kx ascending for each).
static void fwd_tile(TrainCtx *c, const LaneDims *d, const char *xl, const char *w, const char *yl,
                     const char *bias, const char *oe, int b, int x0, int q, const char *ind) {
  const char *vt = ltype(d);
  int vl = d->vl, wst = d->c * d->kh * d->kw;
  for (int j = 0; j < b; j++) {
    W(c, "%s%s", ind, vt);
    for (int t = 0; t < q; t++) {
      if (bias)
        W(c, "%s a%d_%d = (%s){0} + %s[%s + %d]", t ? "," : "", j, t, vt, bias, oe, j);
      else
        W(c, "%s a%d_%d = {0}", t ? "," : "", j, t);
    }
    W(c, ";\n");
  }
  W(c, "%sfor (int c = 0; c < %d; c++)\n%s  for (int ky = 0; ky < %d; ky++) {\n", ind, d->c, ind, d->kh);
  W(c, "%s    const cnn_real *restrict xr = %s + (size_t)((c * %d + oy + ky) * %d) * %d;\n", ind, xl, d->h, d->w, vl);
  W(c, "%s    const cnn_real *restrict wr = %s + (((%s) * %d + c) * %d + ky) * %d;\n", ind, w, oe, d->c, d->kh, d->kw);
  for (int j = 0; j < b; j++) {
    W(c, "%s    const cnn_real", ind);
    for (int kx = 0; kx < d->kw; kx++)
      W(c, "%s w%d_%d = wr[%d]", kx ? "," : "", j, kx, j * wst + kx);
    W(c, ";\n");
  }
  int ix1 = x0 + q - 1 + d->kw - 1;
  for (int ix = x0; ix <= ix1; ix++) {
    W(c, "%s    { %s v; memcpy(&v, xr + %d, sizeof v);", ind, vt, ix * vl);
    for (int kx = 0; kx < d->kw; kx++) {
      int ox = ix - kx;
      if (ox < x0 || ox >= x0 + q)
        continue;
      for (int j = 0; j < b; j++)
        W(c, " a%d_%d += w%d_%d * v;", j, ox - x0, j, kx);
    }
    W(c, " }\n");
  }
  W(c, "%s  }\n", ind);
  for (int j = 0; j < b; j++)
    for (int t = 0; t < q; t++)
      W(c, "%smemcpy(%s + (size_t)(((%s + %d) * %d + oy) * %d + %d) * %d, &a%d_%d, sizeof a%d_%d);\n", ind, yl, oe, j,
        d->oh, d->ow, x0 + t, vl, j, t, j, t);
}

void emit_lanes_forward(TrainCtx *c, const LaneDims *d, const char *xl, const char *w, const char *yl,
                        const char *bias, const char *ind) {
  int b, q;
  row_tile(d, d->o, d->ow, &b, &q);
  int full = d->o / b * b;
  char in2[64];
  snprintf(in2, sizeof in2, "%s    ", ind);
  W(c, "%s// %d output channels x %d columns of a row per register tile.\n", ind, b, q);
  W(c, "%sfor (int oy = 0; oy < %d; oy++) {\n", ind, d->oh);
  if (full) {
    W(c, "%s  for (int o = 0; o < %d; o += %d) {\n", ind, full, b);
    for (int x0 = 0; x0 < d->ow; x0 += q) {
      W(c, "%s  {\n", ind);
      fwd_tile(c, d, xl, w, yl, bias, "o", b, x0, x0 + q <= d->ow ? q : d->ow - x0, in2);
      W(c, "%s  }\n", ind);
    }
    W(c, "%s  }\n", ind);
  }
  if (d->o > full) {
    char oe[24];
    snprintf(oe, sizeof oe, "%d", full);
    for (int x0 = 0; x0 < d->ow; x0 += q) {
      W(c, "%s  {\n", ind);
      fwd_tile(c, d, xl, w, yl, bias, oe, d->o - full, x0, x0 + q <= d->ow ? q : d->ow - x0, in2);
      W(c, "%s  }\n", ind);
    }
  }
  W(c, "%s}\n", ind);
}

// One tile of the input gradient: input channels c + 0..b-1, input row y,
// columns [x0, x0 + q): for each o and each ky whose dy row exists (ky
// descending), each dy column that reaches the tile once, into the inputs
// it feeds (kx descending for each, as the flipped window runs).
static void igrad_tile(TrainCtx *c, const LaneDims *d, const char *dyl, const char *w, const char *dxl,
                       const char *ce, int b, int x0, int q, const char *ind) {
  const char *vt = ltype(d);
  int vl = d->vl, kk = d->kh * d->kw;
  for (int j = 0; j < b; j++) {
    W(c, "%s%s", ind, vt);
    for (int t = 0; t < q; t++)
      W(c, "%s a%d_%d = {0}", t ? "," : "", j, t);
    W(c, ";\n");
  }
  W(c, "%sfor (int o = 0; o < %d; o++)\n", ind, d->o);
  W(c, "%s  for (int ky = ky1; ky >= ky0; ky--) {\n", ind);
  W(c, "%s    const cnn_real *restrict dr = %s + (size_t)((o * %d + y - ky) * %d) * %d;\n", ind, dyl, d->oh, d->ow, vl);
  W(c, "%s    const cnn_real *restrict wr = %s + (o * %d + %s) * %d + ky * %d;\n", ind, w, d->c, ce, kk, d->kw);
  // dy column jx feeds input columns jx + kx; at the map's edges some kx none.
  int j0 = x0 - (d->kw - 1) > 0 ? x0 - (d->kw - 1) : 0, j1 = x0 + q - 1 < d->ow - 1 ? x0 + q - 1 : d->ow - 1;
  for (int j = 0; j < b; j++) {
    W(c, "%s    const cnn_real", ind);
    for (int kx = 0, first = 1; kx < d->kw; kx++) {
      int used = 0;
      for (int jx = j0; jx <= j1; jx++)
        used |= jx + kx >= x0 && jx + kx < x0 + q;
      if (used)
        W(c, "%s w%d_%d = wr[%d]", first ? "" : ",", j, kx, j * kk + kx), first = 0;
    }
    W(c, ";\n");
  }
  for (int jx = j0; jx <= j1; jx++) {
    W(c, "%s    { %s v; memcpy(&v, dr + %d, sizeof v);", ind, vt, jx * vl);
    for (int kx = d->kw - 1; kx >= 0; kx--) {
      int x = jx + kx;
      if (x < x0 || x >= x0 + q)
        continue;
      for (int j = 0; j < b; j++)
        W(c, " a%d_%d += w%d_%d * v;", j, x - x0, j, kx);
    }
    W(c, " }\n");
  }
  W(c, "%s  }\n", ind);
  for (int j = 0; j < b; j++)
    for (int t = 0; t < q; t++)
      W(c, "%smemcpy(%s + (size_t)(((%s + %d) * %d + y) * %d + %d) * %d, &a%d_%d, sizeof a%d_%d);\n", ind, dxl, ce, j,
        d->h, d->w, x0 + t, vl, j, t, j, t);
}

void emit_lanes_igrad(TrainCtx *c, const LaneDims *d, const char *dyl, const char *w, const char *dxl,
                      const char *ind) {
  int b, q;
  row_tile(d, d->c, d->w, &b, &q);
  int full = d->c / b * b;
  char in2[64];
  snprintf(in2, sizeof in2, "%s    ", ind);
  W(c, "%s// %d input channels x %d columns of a row per register tile.\n", ind, b, q);
  W(c, "%sfor (int y = 0; y < %d; y++) {\n", ind, d->h);
  W(c, "%s  const int ky0 = y - %d > 0 ? y - %d : 0, ky1 = y < %d ? y : %d; // the dy rows that exist\n", ind, d->oh - 1,
    d->oh - 1, d->kh - 1, d->kh - 1);
  if (full) {
    W(c, "%s  for (int c = 0; c < %d; c += %d) {\n", ind, full, b);
    for (int x0 = 0; x0 < d->w; x0 += q) {
      W(c, "%s  {\n", ind);
      igrad_tile(c, d, dyl, w, dxl, "c", b, x0, x0 + q <= d->w ? q : d->w - x0, in2);
      W(c, "%s  }\n", ind);
    }
    W(c, "%s  }\n", ind);
  }
  if (d->c > full) {
    char ce[24];
    snprintf(ce, sizeof ce, "%d", full);
    for (int x0 = 0; x0 < d->w; x0 += q) {
      W(c, "%s  {\n", ind);
      igrad_tile(c, d, dyl, w, dxl, ce, d->c - full, x0, x0 + q <= d->w ? q : d->w - x0, in2);
      W(c, "%s  }\n", ind);
    }
  }
  W(c, "%s}\n", ind);
}

// Emits dst[g] = the sum of vector v's lanes of each group of the set,
// pairwise (lanes 2k + 1 to 2k, then 4k + 2 to 4k, ...), for dst an
// expression of g.
static void emit_group_lanes(TrainCtx *c, const LaneDims *d, const char *v, const char *dst, const char *ind) {
  int vl = d->vl, m = vl / d->gl;
  W(c, "%s{\n#if CNN_HAS_SHUFFLEVECTOR\n", ind);
  W(c, "%s  %s r = %s;\n", ind, ltype(d), v);
  for (int h = 1; h < d->gl; h *= 2) {
    W(c, "%s  r = r + __builtin_shufflevector(r, r", ind);
    for (int u = 0; u < vl; u++)
      W(c, ", %d", u ^ h);
    W(c, ");\n");
  }
  for (int k = 0; k < m; k++)
    W(c, "%s  { const int g = s * %d + %d; if (g < NGROUP) %s = r[%d]; }\n", ind, m, k, dst, k * d->gl);
  W(c, "#else\n");
  // The same pairs, one value at a time.
  for (int k = 0; k < m; k++) {
    W(c, "%s  { const int g = s * %d + %d; if (g < NGROUP) %s = ", ind, m, k, dst);
    int n = d->gl;
    // a balanced sum written out: positions k*gl .. k*gl + gl - 1
    for (int i = 0; i < n; i++) {
      int opens = 0;
      for (int s = n; s > 1; s /= 2)
        if (i % s == 0)
          opens++;
      for (int o = 0; o < opens; o++)
        W(c, "(");
      W(c, "(%s)[%d]", v, k * d->gl + i);
      int closes = 0;
      for (int s = n; s > 1; s /= 2)
        if ((i + 1) % s == 0)
          closes++;
      for (int o = 0; o < closes; o++)
        W(c, ")");
      if (i + 1 < n)
        W(c, " + ");
    }
    W(c, "; }\n");
  }
  W(c, "#endif\n%s}\n", ind);
}

void emit_lanes_wgrad(TrainCtx *c, const LaneDims *d, const char *xl, const char *dyl, const char *dw,
                      const char *db, const char *ind) {
  const char *vt = ltype(d);
  int vl = d->vl, kk = d->kh * d->kw, regs = lregs(d);
  // b channels' dy and kk taps each, and the x vector: b * kk + b + 1 registers, and
  // one to spare (3 x 9 taps spilled three sums, 2 x 9 ran faster).
  int b = 1;
  for (int t = 2; t <= 8 && t <= d->o && t * kk + t + 2 <= regs; t++)
    if (t * kk > b * kk && (d->o % t == 0 || d->o % b != 0))
      b = t;
  int full = d->o / b * b;
  int pin = vl == 16;
  W(c, "%s// %d output channels x the %d taps of one input channel per register tile.\n", ind, b, kk);
  for (int pass = 0; pass < 2; pass++) {
    int bb = pass ? d->o - full : b;
    if (bb == 0)
      continue;
    char oe[24];
    if (pass)
      snprintf(oe, sizeof oe, "%d", full);
    else
      snprintf(oe, sizeof oe, "o");
    if (!pass)
      W(c, "%sfor (int o = 0; o < %d; o += %d)\n", ind, full, b);
    W(c, "%s  for (int c = 0; c < %d; c++) {\n", ind, d->c);
    for (int j = 0; j < bb; j++) {
      W(c, "%s    %s", ind, vt);
      for (int t = 0; t < kk; t++)
        W(c, "%s s%d_%d = {0}", t ? "," : "", j, t);
      W(c, ";\n");
    }
    W(c, "%s    for (int oy = 0; oy < %d; oy++)\n", ind, d->oh);
    W(c, "%s      for (int ox = 0; ox < %d; ox++) {\n", ind, d->ow);
    W(c, "%s        const cnn_real *restrict xr = %s + (size_t)((c * %d + oy) * %d + ox) * %d;\n", ind, xl, d->h,
      d->w, vl);
    for (int j = 0; j < bb; j++)
    {
      W(c, "%s        %s e%d; memcpy(&e%d, %s + (size_t)(((%s + %d) * %d + oy) * %d + ox) * %d, sizeof e%d);", ind, vt, j,
        j, dyl, oe, j, d->oh, d->ow, vl, j);
      if (pin) // as in the direct weight gradient: one load for all the taps
        W(c, " CNN_PIN16(e%d);", j);
      W(c, "\n");
    }
    for (int ky = 0; ky < d->kh; ky++)
      for (int kx = 0; kx < d->kw; kx++) {
        W(c, "%s        { %s v; memcpy(&v, xr + %d, sizeof v);", ind, vt, (ky * d->w + kx) * vl);
        for (int j = 0; j < bb; j++)
          W(c, " s%d_%d += e%d * v;", j, ky * d->kw + kx, j);
        W(c, " }\n");
      }
    W(c, "%s      }\n", ind);
    for (int j = 0; j < bb; j++)
      for (int t = 0; t < kk; t++) {
        char v[32], dst[192];
        snprintf(v, sizeof v, "s%d_%d", j, t);
        snprintf(dst, sizeof dst, "%s[((%s + %d) * %d + c) * %d + %d]", dw, oe, j, d->c, kk, t);
        char in4[64];
        snprintf(in4, sizeof in4, "%s    ", ind);
        emit_group_lanes(c, d, v, dst, in4);
      }
    W(c, "%s  }\n", ind);
  }
  if (db) {
    W(c, "%sfor (int o = 0; o < %d; o++) {\n", ind, d->o);
    W(c, "%s  %s t = {0};\n", ind, vt);
    W(c, "%s  for (int p = 0; p < %d; p++) {\n", ind, d->oh * d->ow);
    W(c, "%s    %s e; memcpy(&e, %s + (size_t)(o * %d + p) * %d, sizeof e); t += e;\n", ind, vt, dyl,
      d->oh * d->ow, vl);
    W(c, "%s  }\n", ind);
    char dst[160];
    snprintf(dst, sizeof dst, "%s[o]", db);
    char in2[64];
    snprintf(in2, sizeof in2, "%s  ", ind);
    emit_group_lanes(c, d, "t", dst, in2);
    W(c, "%s}\n", ind);
  }
}
