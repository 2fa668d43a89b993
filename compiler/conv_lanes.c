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
  *bb = 1;
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

// The forward and the input gradient run the same row tile: b channels'
// sums over q columns of one row, each source row read once per tap row
// and each of its vectors used for every sum it feeds. Forward: channels o,
// rows of x, output column ix - kx (kx ascending); input gradient: channels
// c, rows of dy that exist (ky descending), input column jx + kx (kx
// descending, as the flipped window runs). Each sum then runs in the order
// of the direct kernels.
typedef struct RowPass {
  int back;                    // 0: forward, 1: input gradient
  int chans, rows, n, src_n;   // channels tiled, rows and width of the result, width of a source row
  const char *src, *w, *dst, *bias;
} RowPass;

// The result column that source column s feeds through tap kx, if any.
static int row_col(const RowPass *r, int s, int kx) {
  return r->back ? s + kx : s - kx;
}

// One tile: channels ce + 0..b-1, columns [x0, x0 + q) of row `r` (oy or y).
static void row_tile_emit(TrainCtx *c, const LaneDims *d, const RowPass *r, const char *ce, int b, int x0,
                          int q, const char *ind) {
  const char *vt = ltype(d), *row = r->back ? "y" : "oy";
  int vl = d->vl, kk = d->kh * d->kw, wst = r->back ? kk : d->c * kk;
  for (int j = 0; j < b; j++) {
    W(c, "%s%s", ind, vt);
    for (int t = 0; t < q; t++) {
      if (r->bias)
        W(c, "%s a%d_%d = (%s){0} + %s[%s + %d]", t ? "," : "", j, t, vt, r->bias, ce, j);
      else
        W(c, "%s a%d_%d = {0}", t ? "," : "", j, t);
    }
    W(c, ";\n");
  }
  if (r->back) {
    W(c, "%sfor (int o = 0; o < %d; o++)\n%s  for (int ky = ky1; ky >= ky0; ky--) {\n", ind, d->o, ind);
    W(c, "%s    const cnn_real *restrict sr = %s + (size_t)((o * %d + y - ky) * %d) * %d;\n", ind, r->src, d->oh,
      d->ow, vl);
    W(c, "%s    const cnn_real *restrict wr = %s + (o * %d + %s) * %d + ky * %d;\n", ind, r->w, d->c, ce, kk, d->kw);
  } else {
    W(c, "%sfor (int c = 0; c < %d; c++)\n%s  for (int ky = 0; ky < %d; ky++) {\n", ind, d->c, ind, d->kh);
    W(c, "%s    const cnn_real *restrict sr = %s + (size_t)((c * %d + oy + ky) * %d) * %d;\n", ind, r->src, d->h, d->w,
      vl);
    W(c, "%s    const cnn_real *restrict wr = %s + (((%s) * %d + c) * %d + ky) * %d;\n", ind, r->w, ce, d->c, d->kh,
      d->kw);
  }
  // The weights of the taps this tile uses (at a map's edge, not all).
  int used[LANES_MAX_KW] = {0};
  for (int s = 0; s < r->src_n; s++)
    for (int kx = 0; kx < d->kw; kx++)
      used[kx] |= row_col(r, s, kx) >= x0 && row_col(r, s, kx) < x0 + q;
  for (int j = 0; j < b; j++) {
    W(c, "%s    const cnn_real", ind);
    for (int kx = 0, first = 1; kx < d->kw; kx++)
      if (used[kx])
        W(c, "%s w%d_%d = wr[%d]", first ? "" : ",", j, kx, j * wst + kx), first = 0;
    W(c, ";\n");
  }
  for (int s = 0; s < r->src_n; s++) {
    int any = 0;
    for (int kx = 0; kx < d->kw; kx++)
      any |= row_col(r, s, kx) >= x0 && row_col(r, s, kx) < x0 + q;
    if (!any)
      continue;
    W(c, "%s    { %s v; memcpy(&v, sr + %d, sizeof v);", ind, vt, s * vl);
    for (int i = 0; i < d->kw; i++) {
      int kx = r->back ? d->kw - 1 - i : i, t = row_col(r, s, kx);
      if (t < x0 || t >= x0 + q)
        continue;
      for (int j = 0; j < b; j++)
        W(c, " a%d_%d += w%d_%d * v;", j, t - x0, j, kx);
    }
    W(c, " }\n");
  }
  W(c, "%s  }\n", ind);
  for (int j = 0; j < b; j++)
    for (int t = 0; t < q; t++)
      W(c, "%smemcpy(%s + (size_t)(((%s + %d) * %d + %s) * %d + %d) * %d, &a%d_%d, sizeof a%d_%d);\n", ind, r->dst,
        ce, j, r->rows, row, r->n, x0 + t, vl, j, t, j, t);
}

// Every row of the result, tiled: full tiles of b channels in a loop, the
// rest in one tile; the columns in q-wide pieces.
static void row_pass_emit(TrainCtx *c, const LaneDims *d, const RowPass *r, const char *ind) {
  int b = 1, q = 1;
  row_tile(d, r->chans, r->n, &b, &q);
  int full = r->chans / b * b;
  const char *cv = r->back ? "c" : "o";
  char in4[64];
  snprintf(in4, sizeof in4, "%s    ", ind);
  W(c, "%s// %d %s channels x %d columns of a row per register tile.\n", ind, b, r->back ? "input" : "output", q);
  W(c, "%sfor (int %s = 0; %s < %d; %s++) {\n", ind, r->back ? "y" : "oy", r->back ? "y" : "oy", r->rows,
    r->back ? "y" : "oy");
  if (r->back)
    W(c, "%s  const int ky0 = y - %d > 0 ? y - %d : 0, ky1 = y < %d ? y : %d; // the dy rows that exist\n", ind,
      d->oh - 1, d->oh - 1, d->kh - 1, d->kh - 1);
  for (int part = 0; part < 2; part++) {
    int bb = part ? r->chans - full : b;
    char ce[24];
    if (!bb)
      continue;
    snprintf(ce, sizeof ce, "%d", full);
    if (!part)
      W(c, "%s  for (int %s = 0; %s < %d; %s += %d) {\n", ind, cv, cv, full, cv, b);
    else
      W(c, "%s  {\n", ind);
    for (int x0 = 0; x0 < r->n; x0 += q) {
      W(c, "%s    {\n", ind);
      row_tile_emit(c, d, r, part ? ce : cv, bb, x0, x0 + q <= r->n ? q : r->n - x0, in4);
      W(c, "%s    }\n", ind);
    }
    W(c, "%s  }\n", ind);
  }
  W(c, "%s}\n", ind);
}

void emit_lanes_forward(TrainCtx *c, const LaneDims *d, const char *xl, const char *w, const char *yl,
                        const char *bias, const char *ind) {
  RowPass r = {0, d->o, d->oh, d->ow, d->w, xl, w, yl, bias};
  row_pass_emit(c, d, &r, ind);
}

void emit_lanes_igrad(TrainCtx *c, const LaneDims *d, const char *dyl, const char *w, const char *dxl,
                      const char *ind) {
  RowPass r = {1, d->c, d->h, d->w, d->ow, dyl, w, dxl, NULL};
  row_pass_emit(c, d, &r, ind);
}

// Writes the sum of lanes lo .. lo + n - 1 of vector v, pairwise: ((v0 +
// v1) + (v2 + v3)) for n = 4.
static void emit_pairwise(TrainCtx *c, const char *v, int lo, int n) {
  if (n == 1) {
    W(c, "(%s)[%d]", v, lo);
    return;
  }
  W(c, "(");
  emit_pairwise(c, v, lo, n / 2);
  W(c, " + ");
  emit_pairwise(c, v, lo + n / 2, n / 2);
  W(c, ")");
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
    emit_pairwise(c, v, k * d->gl, d->gl);
    W(c, "; }\n");
  }
  W(c, "#endif\n%s}\n", ind);
}

void emit_lanes_wgrad(TrainCtx *c, const LaneDims *d, const char *xl, const char *dyl, const char *dw,
                      const char *db, const char *ind) {
  const char *vt = ltype(d);
  int vl = d->vl, kk = d->kh * d->kw, regs = lregs(d);
  // b channels' dy and kk taps each, and the x vector: b * kk + b + 1 registers,
  // and five to spare, as GCC keeps the next column's x vectors in registers
  // across iterations: 3 x 9 taps (31 registers) spilled seven sums, and
  // mnist14k's two lane convs' backward ran 16-19% faster at 2 x 9.
  int b = 1;
  for (int t = 2; t <= 8 && t <= d->o && t * kk + t + 6 <= regs; t++)
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
