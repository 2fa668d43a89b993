// conv_kernels.c: direct convolution kernels for the training code, written
// for one layer's exact shape (see conv_kernels.h). The layout stays CHW:
// a vector (cnn_v8 or cnn_v16, a GCC/clang vector extension, so each
// target gets its own instructions) holds 8 or 16 neighbouring columns of a
// row. The 8-wide kernels are sized for AVX2's 16 registers, the 16-wide
// ones for AVX-512's 32; the generated file holds both and calls the
// 16-wide ones where the CPU has AVX-512.
// The forward tile keeps OB output channels x NV vectors of one output row
// in registers through the whole sum over input channels and window taps,
// loading each input vector once for OB channels; the weight gradient keeps
// OB channels x kw taps of vector sums over the rows. Every sum runs in an
// order fixed by the shape alone, never by the thread count, so a clone
// gives the same bits on any number of threads (the x86-64-v3 clone fuses
// each multiply-add into an FMA, the baseline does not).
#include "conv_kernels.h"

#include <stdio.h>

// The vector type and register count of d's width.
static const char *vtype(const ConvDims *d) {
  return d->vl == CONV_VL_AVX512 ? "cnn_v16" : "cnn_v8";
}
static int vregs(const ConvDims *d) {
  return d->vl == CONV_VL_AVX512 ? 32 : 16;
}

// With FMA a multiply-add needs no register for the product, so a tile
// holds its accumulators, the operands it reuses and one more operand:
// b * n + n + 1 <= the registers (16 for AVX2, 32 for AVX-512). With 16
// that admits 4 channels x 3 vectors (a row of 24),
// which ran at 1.5x the 6 x 2 tile that mul + add allowed (conv 26x26 ->
// 24x24 forward alone, EPYC family 25: 71-86 against 51-59 GFLOP/s). Two FMA pipes
// take two vector multiply-adds a cycle; the loads (two a cycle) must keep
// up. Without FMA (the baseline clone) the same tile spills a register.

// Cycles (in half-cycle units) of one tap of a tile of b channels x n
// vectors: b * n multiply-adds, or n + b loads if those take longer, or
// the FMA latency (4 cycles) when fewer than 8 accumulators cannot cover
// it, plus about two for the loop and the addresses (which favours larger
// tiles).
static int tap_cost(int b, int n) {
  int t = b * n > b + n ? b * n : b + n;
  return (t > 8 ? t : 8) + 2;
}

// Cost of covering o channels with tiles of b (the last one smaller).
static int channels_cost(int o, int b, int n) {
  return o / b * tap_cost(b, n) + (o % b ? tap_cost(o % b, n) : 0);
}

// The cheapest channel count of a tile with n reused vectors in regs
// registers, up to 16. Of equal costs, one that divides o: 8 + 8 channels
// ran 6% faster than 9 + 7 at 16 lanes (conv 26x26 -> 24x24 forward).
static int best_channels(int o, int n, int regs) {
  int best = 1;
  for (int b = 2; b <= 16 && b <= o && b * n + n + 1 <= regs; b++) {
    int cb = channels_cost(o, b, n), cbest = channels_cost(o, best, n);
    if (cb < cbest || (cb == cbest && (o % b == 0 || o % best != 0)))
      best = b;
  }
  return best;
}

void conv_fwd_tile(const ConvDims *d, int *ob, int *nv) {
  int vec = (d->ow + d->vl - 1) / d->vl, best = 0, regs = vregs(d);
  // Rows of vec vectors in chunks of n (the last chunk smaller): the n
  // whose chunks cost least over the row. A single output channel (a
  // depthwise conv's group) takes as many vectors as the registers hold:
  // its tile's only independent sums are its vectors.
  int most = d->o == 1 ? (regs - 1) / 2 : 4;
  for (int n = 1; n <= most && n <= vec; n++) {
    int cost = vec / n * channels_cost(d->o, best_channels(d->o, n, regs), n);
    if (vec % n)
      cost += channels_cost(d->o, best_channels(d->o, vec % n, regs), vec % n);
    if (!best || cost < best) {
      best = cost;
      *nv = n;
    }
  }
  *ob = best_channels(d->o, *nv, regs);
}

// Whether d's window is one value (a 1x1 conv's, or a strided one's on its
// phases when it fits in the stride).
static int window_1x1(const ConvDims *d) {
  return d->kh * d->kw == 1;
}

// The x vectors a weight-gradient tile reuses for each dy vector: the kw
// shifted ones of a window row, or for a 1x1 conv those of several input
// channels (a divisor of c, the cheapest per channel): with one, each
// multiply-add took a load of its own (a 1x1 64 -> 64 conv's backward ran
// at a fifth of the FMA peak).
static int wgrad_taps(const ConvDims *d) {
  if (!window_1x1(d))
    return d->kw;
  int best = 1, regs = vregs(d);
  for (int n = 2; n <= 4; n++)
    if (d->c % n == 0 && channels_cost(d->o, best_channels(d->o, n, regs), n) * best <
                             channels_cost(d->o, best_channels(d->o, best, regs), best) * n)
      best = n;
  return best;
}

int conv_wgrad_tile(const ConvDims *d) {
  // kw sums per channel, the kw shifted x vectors reused, one dy vector.
  return best_channels(d->o, wgrad_taps(d), vregs(d));
}

// Window rows per weight-gradient tile: all of them for a tile of one
// channel (a depthwise conv's), whose kw sums alone would be too few
// chains to keep the multiply-adds busy; else one.
static int wgrad_rows(const ConvDims *d) {
  return conv_wgrad_tile(d) == 1 && d->kh > 1 && d->kh * d->kw + 3 <= vregs(d) ? d->kh : 1;
}

// Inner when the group's x and dy fit in cache together, or when they take
// less room than the vectors of lane sums that image by image would read and
// write for every image (many weights on a small map: a 16x16x32 -> 8x8x64
// stride-2 conv's 2 MB of lane sums made its backward 2.8x slower).
int conv_wgrad_images_inner(const ConvDims *d, int gsize) {
  long bytes = ((long)d->c * d->h * d->w + (long)d->o * d->oh * d->ow) * 4 * gsize;
  long lanes = (long)d->o * d->c * d->kh * d->kw * d->vl * 4;
  return bytes <= 192 * 1024 || lanes >= bytes;
}

// Lanes a kernel covers per output channel: rows mode, each row of ow in
// whole vectors; flat mode, the plane as one run of vectors over x's row
// stride, from the first output to the last ((oh - 1) * w + ow).
static long rows_lanes(const ConvDims *d) {
  return (long)d->oh * ((d->ow + d->vl - 1) / d->vl * d->vl);
}
static long flat_lanes(const ConvDims *d) {
  long p = (long)(d->oh - 1) * d->w + d->ow;
  return (p + d->vl - 1) / d->vl * d->vl;
}

// Window rows the rows mode runs over a plane: each output row skips those
// that read only zero rows.
static long rows_taps(const ConvDims *d) {
  long t = 0;
  for (int oy = 0; oy < d->oh; oy++) {
    int ky0 = oy < d->zt ? d->zt - oy : 0, ky1 = oy > d->h - d->zb - d->kh ? d->h - d->zb - oy : d->kh;
    t += ky1 > ky0 ? ky1 - ky0 : 0;
  }
  return t;
}

// One forward tile: output channels o .. o + ob - 1 (o is the C expression
// oexpr), columns col .. of row oy, nv vectors, the last with `lanes` valid
// values.
static void fwd_tile(TrainCtx *c, const ConvDims *d, const char *x, const char *w, const char *y,
                     const char *bias, const char *ind, int ob, const char *oexpr, int nv, const char *col,
                     int lanes, int clip) {
  long ckk = (long)d->c * d->kh * d->kw, plane = (long)d->oh * d->ow;
  W(c, "%s  const cnn_real *restrict wo = %s + (%s) * %ld;\n", ind, w, oexpr, ckk);
  for (int b = 0; b < ob; b++) {
    W(c, "%s  %s", ind, vtype(d));
    for (int v = 0; v < nv; v++) {
      if (bias)
        W(c, "%s a%d_%d = (%s){0} + %s[%s + %d]", v ? "," : "", b, v, vtype(d), bias, oexpr, b);
      else
        W(c, "%s a%d_%d = {0}", v ? "," : "", b, v);
    }
    W(c, ";\n");
  }
  W(c, "%s  for (int c = 0; c < %d; c++)\n", ind, d->c);
  if (clip) // taps on zero rows add nothing (not even a sign of zero): skipped
    W(c, "%s    for (int ky = ky0; ky < ky1; ky++) {\n", ind);
  else
    W(c, "%s    for (int ky = 0; ky < %d; ky++) {\n", ind, d->kh);
  W(c, "%s      const cnn_real *restrict xr = %s + (c * %d + oy + ky) * %d + %s;\n", ind, x, d->h, d->w, col);
  W(c, "%s      const cnn_real *restrict wr = wo + (c * %d + ky) * %d;\n", ind, d->kh, d->kw);
  W(c, "%s      for (int kx = 0; kx < %d; kx++) {\n", ind, d->kw);
  W(c, "%s        %s", ind, vtype(d));
  for (int v = 0; v < nv; v++)
    W(c, "%s x%d", v ? "," : "", v);
  W(c, ";\n");
  for (int v = 0; v < nv; v++)
    W(c, "%s        memcpy(&x%d, xr + kx + %d, sizeof x%d);\n", ind, v, v * d->vl, v);
  W(c, "%s        const cnn_real", ind);
  for (int b = 0; b < ob; b++)
    W(c, "%s w%d = wr[kx + %ld]", b ? "," : "", b, b * ckk);
  W(c, ";\n");
  for (int b = 0; b < ob; b++) {
    W(c, "%s       ", ind);
    for (int v = 0; v < nv; v++)
      W(c, " a%d_%d += w%d * x%d;", b, v, b, v);
    W(c, "\n");
  }
  W(c, "%s      }\n%s    }\n", ind, ind);
  W(c, "%s  cnn_real *restrict yr = %s + (%s) * %ld + oy * %d + %s;\n", ind, y, oexpr, plane, d->ow, col);
  for (int b = 0; b < ob; b++) {
    for (int v = 0; v < nv; v++) {
      if (v < nv - 1 || lanes == d->vl)
        W(c, "%s  memcpy(yr + %ld, &a%d_%d, sizeof a%d_%d);\n", ind, b * plane + v * d->vl, b, v, b, v);
      else {
        // Lane by lane with constant indices: a loop or a partial memcpy
        // over the accumulator would keep it in memory through the sum.
        W(c, "%s ", ind);
        for (int u = 0; u < lanes; u++)
          W(c, " yr[%ld] = a%d_%d[%d];", b * plane + v * d->vl + u, b, v, u);
        W(c, "\n");
      }
    }
  }
}

// The loops over output channel blocks for one column chunk of row oy
// (with clip, over taps ky0 .. ky1 - 1 only).
static void fwd_channels(TrainCtx *c, const ConvDims *d, const char *x, const char *w, const char *y,
                         const char *bias, const char *ind, int ob, int nv, const char *col, int lanes,
                         int clip) {
  int full = d->o / ob * ob;
  W(c, "%sfor (int o = 0; o < %d; o += %d) { // %d channels x %d columns\n", ind, full, ob, ob,
    (nv - 1) * d->vl + lanes);
  fwd_tile(c, d, x, w, y, bias, ind, ob, "o", nv, col, lanes, clip);
  W(c, "%s}\n", ind);
  if (full < d->o) {
    W(c, "%s{ // the last %d channels\n", ind, d->o - full);
    char oe[16];
    snprintf(oe, sizeof oe, "%d", full);
    fwd_tile(c, d, x, w, y, bias, ind, d->o - full, oe, nv, col, lanes, clip);
    W(c, "%s}\n", ind);
  }
}

// The taps ky0 .. ky1 - 1 that read a row outside the zero ones for the
// output rows r0 .. r1 (C expressions) of d.
static void clip_taps(TrainCtx *c, const ConvDims *d, const char *ind, const char *r0, const char *r1) {
  W(c, "%sconst int ky0 = %s < %d ? %d - %s : 0, ky1 = %s > %d ? %d - %s : %d;\n", ind, r1, d->zt, d->zt, r1, r0,
    d->h - d->zb - d->kh, d->h - d->zb, r0, d->kh);
}

// clip_taps for a chunk of a flat run on rows of flatw: columns col + lo ..
// col + hi with var, else lo .. hi.
static void chunk_taps(TrainCtx *c, const ConvDims *d, const char *ind, int flatw, int var, int lo, int hi) {
  char r0[48], r1[48];
  if (var) {
    snprintf(r0, sizeof r0, "col / %d", flatw);
    snprintf(r1, sizeof r1, "(col + %d) / %d", hi, flatw);
  } else {
    snprintf(r0, sizeof r0, "%d", lo / flatw);
    snprintf(r1, sizeof r1, "%d", hi / flatw);
  }
  clip_taps(c, d, ind, r0, r1);
}

// Output rows oy0 .. oy1 - 1 of emit_conv_direct, in tiles of ob channels x
// nv vectors; with clip, each row runs only the taps that read rows outside
// the zero ones. A flat run (flatw, the row stride it runs on; one row)
// clips each chunk of columns by the rows it spans.
static void direct_rows(TrainCtx *c, const ConvDims *d, const char *x, const char *w, const char *y,
                        const char *bias, const char *ind, int ob, int nv, int oy0, int oy1, int clip,
                        int flatw) {
  int chunk = nv * d->vl, full = d->ow / chunk * chunk, rest = d->ow - full, fc = clip && flatw;
  char in2[32], in4[32];
  snprintf(in2, sizeof in2, "%s  ", ind);
  snprintf(in4, sizeof in4, "%s    ", ind);
  W(c, "%sfor (int oy = %d; oy < %d; oy++) {\n", ind, oy0, oy1);
  if (fc)
    W(c, "%s  // Each chunk of columns runs the taps that read its rows' nonzero ones.\n", ind);
  else if (clip)
    clip_taps(c, d, in2, "oy", "oy");
  if (rest == 0 && full == chunk) {
    if (fc)
      chunk_taps(c, d, in2, flatw, 0, 0, chunk - 1);
    fwd_channels(c, d, x, w, y, bias, in2, ob, nv, "0", d->vl, clip);
  } else if (full == 0) {
    // One chunk narrower than nv vectors: the last vector is partial.
    if (fc)
      chunk_taps(c, d, in2, flatw, 0, 0, d->ow - 1);
    fwd_channels(c, d, x, w, y, bias, in2, ob, nv, "0", d->ow - (nv - 1) * d->vl, clip);
  } else {
    W(c, "%s  for (int col = 0; col < %d; col += %d) {\n", ind, full, chunk);
    if (fc)
      chunk_taps(c, d, in4, flatw, 1, 0, chunk - 1);
    fwd_channels(c, d, x, w, y, bias, in4, ob, nv, "col", d->vl, clip);
    W(c, "%s  }\n", ind);
    if (rest) {
      char cs[16];
      snprintf(cs, sizeof cs, "%d", full);
      int rv = (rest + d->vl - 1) / d->vl;
      if (fc) { // its own taps, in a scope of its own
        W(c, "%s  {\n", ind);
        chunk_taps(c, d, in4, flatw, 0, full, d->ow - 1);
      }
      fwd_channels(c, d, x, w, y, bias, fc ? in4 : in2, best_channels(d->o, rv, vregs(d)), rv, cs,
                   rest - (rv - 1) * d->vl, clip);
      if (fc)
        W(c, "%s  }\n", ind);
    }
  }
  W(c, "%s}\n", ind);
}

// Flat only where it saves lanes (rows of 9 take 16), where no zero rows
// are skipped, and where the copy out is small beside the sums.
// A single output channel (a depthwise conv's group) runs flat on a narrow
// map even with zero rows and few taps: its rows of a few values each would
// use a fraction of a vector's lanes.
// When x's rows are as long as y's (w == ow: an input gradient's bordered dy
// laid with each row's right border wrapped onto the next row's left one),
// the flat run is y's own plane, with no copy: flat where its lanes, every
// tap included, cost less than the rows' with their zero rows skipped. (A
// flat run skips a zero row's taps only for a chunk of columns whose rows
// all read it: direct_rows.)
int conv_fwd_flat(const ConvDims *d) {
  if (d->oh <= 1 || flat_lanes(d) >= rows_lanes(d))
    return 0;
  if (d->w == d->ow && d->o > 1)
    return flat_lanes(d) * d->kh < rows_lanes(d) / d->oh * rows_taps(d);
  return d->o == 1 || (d->zt == 0 && d->zb == 0 && d->c * d->kh * d->kw >= 16);
}

int conv_fwd_flat_copies(const ConvDims *d) {
  return conv_fwd_flat(d) && d->w != d->ow;
}

long conv_fwd_flat_size(const ConvDims *d) {
  return (long)d->o * ((long)(d->oh - 1) * d->w + d->ow);
}

void emit_conv_direct(TrainCtx *c, const ConvDims *d, const char *x, const char *w, const char *y,
                      const char *bias, const char *tmp, const char *ind) {
  int ob, nv;
  int copies = conv_fwd_flat_copies(d);
  if (conv_fwd_flat(d) && (tmp || !copies)) {
    // The plane as one row on x's row stride: outputs oy * w + ox. Where
    // x's rows are longer than y's, the columns ow .. w - 1 of each row are
    // computed into tmp and dropped with the copy; where they are as long
    // (wrapped), the run is y's own plane.
    ConvDims f = *d;
    f.oh = 1;
    f.ow = (d->oh - 1) * d->w + d->ow;
    conv_fwd_tile(&f, &ob, &nv);
    W(c, "%s// %d output channels x %d vectors of %d per register tile, over each plane as\n", ind, ob, nv, d->vl);
    int clip = d->zt || d->zb;
    if (!copies) {
      W(c, "%s// one run (flat): a row's last taps read the next row's first, zero, columns.\n", ind);
      direct_rows(c, &f, x, w, y, bias, ind, ob, nv, 0, 1, clip, d->w);
      return;
    }
    W(c, "%s// one run on the input's row stride (flat), then copied row by row.\n", ind);
    direct_rows(c, &f, x, w, tmp, bias, ind, ob, nv, 0, 1, clip, d->w);
    W(c, "%sfor (int o = 0; o < %d; o++)\n%s  for (int oy = 0; oy < %d; oy++)\n", ind, d->o, ind, d->oh);
    W(c, "%s    memcpy(%s + (o * %d + oy) * %d, %s + o * %d + oy * %d, %d * sizeof(cnn_real));\n", ind, y, d->oh,
      d->ow, tmp, f.ow, d->w, d->ow);
    return;
  }
  conv_fwd_tile(d, &ob, &nv);
  W(c, "%s// %d output channels x %d vectors of %d columns per register tile.\n", ind, ob, nv, d->vl);
  // Rows zt .. oh - zb - 1 read no zero row; the ones above and below skip
  // the taps that would (a fifth of the work of a 3x3 input gradient on a
  // 7x7 map).
  int mid0 = d->zt, mid1 = d->oh - d->zb;
  if (mid0 == 0 && mid1 == d->oh) {
    direct_rows(c, d, x, w, y, bias, ind, ob, nv, 0, d->oh, 0, 0);
  } else if (mid0 >= mid1) {
    direct_rows(c, d, x, w, y, bias, ind, ob, nv, 0, d->oh, 1, 0);
  } else {
    if (mid0 > 0)
      direct_rows(c, d, x, w, y, bias, ind, ob, nv, 0, mid0, 1, 0);
    direct_rows(c, d, x, w, y, bias, ind, ob, nv, mid0, mid1, 0, 0);
    if (mid1 < d->oh)
      direct_rows(c, d, x, w, y, bias, ind, ob, nv, mid1, d->oh, 1, 0);
  }
}

// A row loop of whole vectors with a masked partial one after it ran at
// half the speed of a loop of whole vectors alone (conv 24x24 -> 22x22:
// 36 against 59 GFLOP/s, GCC 12, EPYC family 25), so dy is copied with its rows
// padded by zeros; flat where that wastes fewer lanes.
int conv_wgrad_flat(const ConvDims *d) {
  return d->c * d->kh >= 8 && flat_lanes(d) < rows_lanes(d);
}

// The copy costs a pass over dy; each of its vectors is then read c * kh
// times. Below 8 (a first layer, a depthwise conv) the old way is cheaper:
// rows in place, the last vector masked.
int conv_wgrad_copy(const ConvDims *d) {
  return d->c * d->kh >= 8 && (conv_wgrad_flat(d) || d->ow % d->vl);
}

long conv_wgrad_plane(const ConvDims *d) {
  if (!conv_wgrad_copy(d))
    return (long)d->oh * d->ow;
  return conv_wgrad_flat(d) ? flat_lanes(d) : rows_lanes(d);
}

int conv_wgrad_row(const ConvDims *d) {
  if (conv_wgrad_flat(d))
    return d->w;
  return conv_wgrad_copy(d) ? (d->ow + d->vl - 1) / d->vl * d->vl : d->ow;
}

void emit_conv_wgrad_copy(TrainCtx *c, const ConvDims *d, const char *dst, const char *src, const char *ind) {
  W(c, "%sfor (int o = 0; o < %d; o++)\n%s  for (int oy = 0; oy < %d; oy++)\n", ind, d->o, ind, d->oh);
  W(c, "%s    memcpy(%s + o * %ld + oy * %d, %s + (o * %d + oy) * %d, %d * sizeof(cnn_real));\n", ind, dst,
    conv_wgrad_plane(d), conv_wgrad_row(d), src, d->oh, d->ow, d->ow);
}

// One step of the weight-gradient tile: the vector at ve (a C expression)
// of each of the ob dy rows, planes `plane` apart, times the kw shifted x
// vectors; masked, dy's lanes past the row's end are zeroed first.
static void wgrad_step(TrainCtx *c, const ConvDims *d, const char *ind, int ob, long plane, const char *ve,
                       int masked) {
  int nk = wgrad_rows(d);
  if (nk > 1) { // one channel: each x vector read once, by its own sum
    W(c, "%s%s d, xv;\n%smemcpy(&d, dr + %s, sizeof d);\n", ind, vtype(d), ind, ve);
    if (masked)
      W(c, "%sd *= m;\n", ind);
    for (int r = 0; r < nk; r++)
      for (int k = 0; k < d->kw; k++)
        W(c, "%smemcpy(&xv, xr + %d + %s, sizeof xv); s0_%d += d * xv;\n", ind, r * d->w + k, ve, r * d->kw + k);
    return;
  }
  int nt = wgrad_taps(d);
  long xstep = window_1x1(d) ? (long)d->h * d->w : 1; // next tap: a column, or a 1x1's next channel
  W(c, "%s%s d", ind, vtype(d));
  for (int k = 0; k < nt; k++)
    W(c, ", x%d", k);
  W(c, ";\n");
  for (int k = 0; k < nt; k++)
    W(c, "%smemcpy(&x%d, xr + %s + %ld, sizeof x%d);\n", ind, k, ve, k * xstep, k);
  for (int b = 0; b < ob; b++) {
    // In a register: GCC otherwise folds the load into each of the kw
    // multiply-adds, and the loads, not the FMAs, bound the loop (16 lanes:
    // 27 loads per 24 FMAs ran at 36% of the FMA peak, pinned at 67%).
    W(c, "%smemcpy(&d, dr + %ld + %s, sizeof d);%s\n", ind, b * plane, ve,
      d->vl == CONV_VL_AVX512 ? " CNN_PIN16(d);" : "");
    if (masked)
      W(c, "%sd *= m;\n", ind);
    W(c, "%s", ind);
    for (int k = 0; k < nt; k++)
      W(c, "%ss%d_%d += d * x%d;", k ? " " : "", b, k, k);
    W(c, "\n");
  }
}

// The prefetch that opens a tile of the first channel block of a
// one-image weight gradient (when, a C condition): the x planes the next
// input channel step reads, a window row's share each tile, into L1. The
// forward wrote x long before and the batch's activations outgrow the
// caches: read cold, the first block's loads stalled on it, as the
// hardware prefetchers do not follow a plane read three times at shifted
// rows (conv 26x26 -> 24x24, 16 lanes: its backward 5-10% faster). Values
// are unchanged: a prefetch only moves lines.
static void wgrad_prefetch(TrainCtx *c, const ConvDims *d, const char *x, const char *ind, const char *when, int step,
                           int nk) {
  long n = (long)step * d->h * d->w; // values the next step reads
  int iters = d->kh / nk;
  long share = ((n + iters - 1) / iters + 15) / 16 * 16; // whole lines of floats
  char it[32];
  if (step >= d->c)
    return;
  if (nk > 1)
    snprintf(it, sizeof it, "ky / %d", nk);
  else
    snprintf(it, sizeof it, "ky");
  W(c, "%sif (%s && c + %d < %d) // the next channel's x, cold since the forward\n", ind, when, step, d->c);
  W(c, "%s  for (long q = %s * %ld; q < (%s + 1) * %ld && q < %ld; q += 64 / sizeof(cnn_real))\n", ind, it, share, it,
    share, n);
  W(c, "%s    __builtin_prefetch(%s + (c + %d) * %ld + q, 0, 3);\n", ind, x, step, (long)d->h * d->w);
}

// One weight-gradient tile: output channels o .. o + ob - 1 (oexpr), as
// steps over the vectors of dy's rows (or of its whole plane, flat); when
// pf (a C condition) holds, it prefetches the next channel's x.
static void wgrad_tile(TrainCtx *c, const ConvDims *d, const char *x, const char *dy, const char *dw,
                       const char *ind0, int ob, const char *oexpr, const ConvImages *im, const char *pf) {
  char ind[40];
  snprintf(ind, sizeof ind, "%s", ind0);
  long plane = conv_wgrad_plane(d);
  long ckk = (long)d->c * d->kh * d->kw;
  int flat = conv_wgrad_flat(d), rows = flat ? 1 : d->oh, ds = conv_wgrad_row(d);
  // Lanes of one run of vectors: a row (padded), or the whole plane.
  long run = flat ? flat_lanes(d) : rows_lanes(d) / d->oh;
  int nk = wgrad_rows(d), nt = nk * wgrad_taps(d); // window rows and taps per tile
  if (window_1x1(d) && nt > 1)
    W(c, "%s  for (int c = 0; c < %d; c += %d)\n", ind, d->c, nt);
  else
    W(c, "%s  for (int c = 0; c < %d; c++)\n", ind, d->c);
  if (nk > 1)
    W(c, "%s    for (int ky = 0; ky < %d; ky += %d) { // all %d rows of the window at once\n", ind, d->kh, nk, nk);
  else
    W(c, "%s    for (int ky = 0; ky < %d; ky++) {\n", ind, d->kh);
  if (pf && !im) {
    char in6[48];
    snprintf(in6, sizeof in6, "%s      ", ind);
    wgrad_prefetch(c, d, x, in6, pf, window_1x1(d) && nt > 1 ? nt : 1, nk);
  }
  for (int b = 0; b < ob; b++) {
    W(c, "%s      %s", ind, vtype(d));
    for (int k = 0; k < nt; k++)
      W(c, "%s s%d_%d = {0}", k ? "," : "", b, k);
    W(c, ";\n");
  }
  if (im) {
    W(c, "%s      for (int i = g * GSIZE; i < n && i < (g + 1) * GSIZE; i++) {\n", ind0);
    snprintf(ind, sizeof ind, "%s  ", ind0);
    W(c, "%s      const cnn_real *restrict %s = %s + (size_t)i * %ld;\n", ind, x, im->x, im->xsize);
    W(c, "%s      const cnn_real *restrict %s = %s + (size_t)(i%s) * %ld;\n", ind, dy, im->dy,
      im->local ? " - g * GSIZE" : "", im->dysize);
  }
  char in[64];
  snprintf(in, sizeof in, "%s  ", ind);
  if (rows > 1) {
    W(c, "%s      for (int oy = 0; oy < %d; oy++) {\n", ind, rows);
    W(c, "%s      const cnn_real *restrict dr = %s + (%s) * %ld + oy * %d;\n", in, dy, oexpr, plane, ds);
    W(c, "%s      const cnn_real *restrict xr = %s + (c * %d + oy + ky) * %d;\n", in, x, d->h, d->w);
  } else { // flat: the plane in one run, dy on x's row stride
    W(c, "%s      {\n", ind);
    W(c, "%s      const cnn_real *restrict dr = %s + (%s) * %ld;\n", in, dy, oexpr, plane);
    W(c, "%s      const cnn_real *restrict xr = %s + (c * %d + ky) * %d;\n", in, x, d->h, d->w);
  }
  // In place, rows of ow not a whole number of vectors end in a masked one.
  int masked = !conv_wgrad_copy(d) && d->ow % d->vl, full = masked ? d->ow / d->vl * d->vl : (int)run;
  char in2[72];
  snprintf(in2, sizeof in2, "%s        ", in);
  if (full) {
    W(c, "%s      for (int v = 0; v < %d; v += %d) {\n", in, full, d->vl);
    wgrad_step(c, d, in2, ob, plane, "v", 0);
    W(c, "%s      }\n", in);
  }
  if (masked) {
    W(c, "%s      { // columns %d..%d; the other lanes are masked off\n", in, full, d->ow - 1);
    W(c, "%sconst %s m = {", in2, vtype(d));
    for (int u = 0; u < d->vl; u++)
      W(c, "%s%d", u ? ", " : "", u < d->ow - full);
    W(c, "};\n");
    char ve[16];
    snprintf(ve, sizeof ve, "%d", full);
    wgrad_step(c, d, in2, ob, plane, ve, 1);
    W(c, "%s      }\n", in);
  }
  W(c, "%s      }\n", ind);
  if (im) {
    W(c, "%s      }\n", ind0);
    snprintf(ind, sizeof ind, "%s", ind0);
  }
  if (im) { // the group's sums: their lanes added now
    W(c, "%s      cnn_real *restrict dwo = %s + (%s) * %ld + (c * %d + ky) * %d;\n", ind, dw, oexpr, ckk, d->kh,
      d->kw);
    for (int b = 0; b < ob; b++)
      for (int k = 0; k < nt; k++)
        W(c, "%s      dwo[%ld] = CNN_HSUM%d(s%d_%d);\n", ind, b * ckk + k, d->vl, b, k);
  } else { // one image's sums: kept as vectors, lane by lane
    W(c, "%s      cnn_real *restrict dwo = %s + ((%s) * %ld + (c * %d + ky) * %d) * %d;\n", ind, dw, oexpr, ckk,
      d->kh, d->kw, d->vl);
    for (int b = 0; b < ob; b++)
      for (int k = 0; k < nt; k++) {
        long j = (b * ckk + k) * d->vl;
        W(c, "%s      if (!first) {\n%s        %s t;\n", ind, ind, vtype(d));
        W(c, "%s        memcpy(&t, dwo + %ld, sizeof t);\n%s        s%d_%d += t;\n%s      }\n", ind, j, ind, b, k, ind);
        W(c, "%s      memcpy(dwo + %ld, &s%d_%d, sizeof s%d_%d);\n", ind, j, b, k, b, k);
      }
  }
  W(c, "%s    }\n", ind);
}

void emit_conv_wgrad(TrainCtx *c, const ConvDims *d, const char *x, const char *dy, const char *dw,
                     const char *ind, const ConvImages *im) {
  // dw: the weights (im), else their vectors of lane sums (conv_kernels.h).
  int ob = conv_wgrad_tile(d), full = d->o / ob * ob;
  W(c, "%s// %d output channels x %d %s of vector sums per register tile%s%s.\n", ind, ob,
    wgrad_taps(d) * wgrad_rows(d), window_1x1(d) ? "input channels" : "taps",
    im ? ", summed over the group's images before the lanes are added" : "",
    conv_wgrad_flat(d) ? "; each plane one run of vectors on x's rows (flat)" : "");
  W(c, "%sfor (int o = 0; o < %d; o += %d) {\n", ind, full, ob);
  wgrad_tile(c, d, x, dy, dw, ind, ob, "o", im, "o == 0");
  W(c, "%s}\n", ind);
  if (full < d->o) {
    W(c, "%s{ // the last %d channels\n", ind, d->o - full);
    char oe[16];
    snprintf(oe, sizeof oe, "%d", full);
    wgrad_tile(c, d, x, dy, dw, ind, d->o - full, oe, im, full ? NULL : "1");
    W(c, "%s}\n", ind);
  }
}

void emit_conv_wgrad_lanes(TrainCtx *c, const ConvDims *d, const char *dw, const char *dwv, long count,
                           const char *ind) {
  int vl = d->vl;
  long full = count / vl * vl;
  const char *vt = vtype(d);
  // vl weights at once: vl vectors halved vl/2 times by adding each lane
  // pair (even lanes + odd lanes of two vectors), which is CNN_HSUM's tree;
  // the last vector holds the vl sums in order. One sum at a time took 3%
  // of mnist14k's large convs' backward.
  if (full) {
    W(c, "%sfor (int j = 0; j < %ld; j += %d) {\n#if CNN_HAS_SHUFFLEVECTOR\n%s  %s t[%d];\n", ind, full, vl, ind, vt,
      vl);
    W(c, "%s  memcpy(t, %s + (size_t)j * %d, sizeof t);\n", ind, dwv, vl);
    for (int n = vl; n > 1; n /= 2)
      for (int m = 0; m < n / 2; m++)
        W(c, "%s  t[%d] = CNN_PAIRSUM%d(t[%d], t[%d]);\n", ind, m, vl, 2 * m, 2 * m + 1);
    W(c, "%s  memcpy(%s + j, &t[0], sizeof t[0]);\n#else\n", ind, dw);
    W(c, "%s  for (int u = 0; u < %d; u++) {\n%s    %s t;\n", ind, vl, ind, vt);
    W(c, "%s    memcpy(&t, %s + (size_t)(j + u) * %d, sizeof t);\n%s    %s[j + u] = CNN_HSUM%d(t);\n%s  }\n", ind,
      dwv, vl, ind, dw, vl, ind);
    W(c, "#endif\n%s}\n", ind);
  }
  if (full < count) {
    W(c, "%sfor (int j = %ld; j < %ld; j++) {\n%s  %s t;\n", ind, full, count, ind, vt);
    W(c, "%s  memcpy(&t, %s + (size_t)j * %d, sizeof t);\n%s  %s[j] = CNN_HSUM%d(t);\n%s}\n", ind, dwv, vl, ind,
      dw, vl, ind);
  }
}
