// layer_conv.c: conv(out_channels, kernel = 3, stride = 1, padding = 0,
// bias = true, groups = 1) — PyTorch's Conv2d, with Keras 'same' padding.
// Training: kernels generated for the layer's shape (conv_kernels.c), or
// im2col + GEMM per image (and per group); inference: a row function of the plan.
#include <stdio.h>
#include <string.h>

#include "conv_kernels.h"
#include "conv_lanes.h"
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

static int conv_is_strided(const Layer *l) {
  return l->sh > 1 || l->sw > 1;
}

// Whether a conv's training passes run on the generated direct kernels
// (conv_kernels.c) instead of im2col + GEMM: padding narrower than the
// window on each side (a padded conv is the valid conv of a zero-bordered
// copy of its input, a strided one the stride-1 conv of its input split
// into phases: conv_phases); grouped convs run one kernel per group, 1x1
// convs as a conv over each plane laid out as one row. A window of one
// value with stride 1 and padding (all its border is bias) keeps im2col + GEMM.
int conv_is_direct(const Layer *l) {
  return conv_is_pointwise(l) || ((l->kh * l->kw > 1 || conv_is_strided(l)) && l->pt < l->kh &&
                                  l->pb < l->kh && l->pl < l->kw && l->pr < l->kw);
}

// A strided conv runs as the stride-1 conv of its padded input split into
// phases: phase (p, q) holds the rows p, p + sh, ... and the columns q, q +
// sw, ..., and window tap (ky, kx) reads phase (ky % sh, kx % sw) at offset
// (ky / sh, kx / sw). The phases become input channels (c * ph * pw + p *
// pw + q) of a stride-1 conv with a window of kh x kw (ceil(kh / sh) x
// ceil(kw / sw)) whose taps past the real window have zero weights: no
// gather in the kernels, and every lane of a vector is a neighbouring output.
// Phases p >= kh or q >= kw hold no tap and are left out (a 1x1 stride-2
// conv reads one phase). A plane is h x w: what the valid conv of the output
// needs, zeros where it lies past the padded input. Stride 1 is one phase,
// the padded input itself.
typedef struct Phases {
  int ph, pw; // phases used per axis
  int kh, kw; // the window on a phase
  int h, w;   // a phase plane
} Phases;

static Phases conv_phases(const Layer *l) {
  Phases f;
  f.ph = l->kh < l->sh ? l->kh : l->sh;
  f.pw = l->kw < l->sw ? l->kw : l->sw;
  f.kh = (l->kh + l->sh - 1) / l->sh;
  f.kw = (l->kw + l->sw - 1) / l->sw;
  f.h = l->out.h + f.kh - 1;
  f.w = l->out.w + f.kw - 1;
  return f;
}

// Whether conv l's direct kernels are 1x1 (each plane one row, dy read as
// it is by the input gradient): a pointwise conv, or a strided one whose
// window fits in its stride.
static int conv_is_1x1(const Layer *l) {
  Phases f = conv_phases(l);
  return conv_is_pointwise(l) || (conv_is_strided(l) && f.kh == 1 && f.kw == 1);
}

// Whether the direct kernels read conv l's input from its per-image copy
// (xp: zero-bordered, or split into phases) rather than from x itself.
static int conv_reads_copy(const Layer *l) {
  return has_pad(l) || conv_is_strided(l);
}

// The weights the direct kernels use, [out][in / groups * phases][kh][kw]
// on the phases: the layer's own when it has stride 1.
static long direct_weights(const Layer *l) {
  Phases f = conv_phases(l);
  return (long)l->out.c * (l->in.c / l->groups) * f.ph * f.pw * f.kh * f.kw;
}

// Whether conv l's training passes run with the images as the vector
// lanes (conv_lanes.c): an unpadded stride-1 conv of one group on a small
// map (a set of 16 images' input and output, packed, within 512 KB of L2),
// with groups of up to 8 images (both widths then sum a group's lanes in
// the same order), and enough multiply-adds per value packed to pay for
// the transposes: 1x1 convs (7-8 per value) and a first conv of one input
// channel onto 8 (8) ran slower with them, mnist14k's 3x3 convs (72-81)
// and smaller ones (37-42) faster.
static int conv_lanes(const Layer *l, int gsize) {
  long vals = (long)l->in.c * l->in.h * l->in.w + (long)l->out.c * l->out.h * l->out.w;
  long macs = (long)l->out.c * l->out.h * l->out.w * l->in.c * l->kh * l->kw;
  return conv_is_direct(l) && !conv_is_strided(l) && !has_pad(l) && l->groups == 1 &&
         l->kw <= LANES_MAX_KW && lanes_per_group(gsize) && vals <= 8192 && macs >= 24 * vals;
}

// The plan's path for conv l, as the comment over its functions says it.
static const char *conv_path(const Layer *l, int gsize) {
  if (conv_lanes(l, gsize))
    return "direct kernels with the images as vector lanes (forward, input and weight gradient)";
  if (conv_is_pointwise(l))
    return l->groups > 1 ? "direct kernels per group (forward, input and weight gradient; 1x1: each plane one row)"
                         : "direct kernels (forward, input and weight gradient; 1x1: each plane one row)";
  if (conv_is_direct(l) && conv_is_strided(l))
    return l->groups > 1 ? "direct kernels per group (forward, input and weight gradient) on the input split into "
                           "its stride's phases"
                         : "direct kernels (forward, input and weight gradient) on the input split into its "
                           "stride's phases";
  if (conv_is_direct(l)) {
    if (l->groups > 1)
      return has_pad(l) ? "direct kernels per group (forward, input and weight gradient) on a zero-bordered copy "
                          "of the input"
                        : "direct kernels per group (forward, input and weight gradient)";
    return has_pad(l) ? "direct kernels (forward, input and weight gradient) on a zero-bordered copy of the input"
                      : "direct kernels (forward, input and weight gradient)";
  }
  return "im2col + cblas GEMM (a 1x1 window with padding: no direct kernel)";
}

// The direct kernels read up to a vector (of the widest kind) past the end
// of their input and output-gradient buffers (the lanes beyond a row are
// not used).
static int conv_slack(const Layer *l) {
  return conv_is_direct(l) ? CONV_VL_MAX : 0;
}

// The shape of one group of conv l as the kernel generator takes it, for
// vectors of vl: the valid conv of its input with the padding added (zero
// rows pt and pb), or of its phases when strided. A 1x1 conv's plane is one
// row of h * w: no partial vector at each row's end.
static ConvDims conv_dims(const Layer *l, int vl) {
  int Cg = l->in.c / l->groups, Og = l->out.c / l->groups;
  Phases f = conv_phases(l);
  if (conv_is_1x1(l)) {
    ConvDims d = {Cg * f.ph * f.pw, 1, f.h * f.w, Og, 1, l->out.h * l->out.w, 1, 1, 0, 0, vl};
    return d;
  }
  if (conv_is_strided(l)) {
    ConvDims d = {Cg * f.ph * f.pw, f.h, f.w, Og, l->out.h, l->out.w, f.kh, f.kw, 0, 0, vl};
    return d;
  }
  ConvDims d = {Cg, l->in.h + l->pt + l->pb, l->in.w + l->pl + l->pr, Og, l->out.h, l->out.w, l->kh, l->kw,
                l->pt, l->pb, vl};
  return d;
}

// The input gradient's conv of one group: the output gradient with kh - 1 -
// pt rows of zeros above, kh - 1 - pb below, kw - 1 - pl and kw - 1 - pr
// columns at the sides (the bordered dy, PH x PW), into the input's shape
// (the padded input's gradient without its border). A 1x1 conv's reads dy
// as it is.
static ConvDims igrad_dims(const Layer *l, int vl) {
  int Cg = l->in.c / l->groups, Og = l->out.c / l->groups;
  Phases f = conv_phases(l);
  if (conv_is_1x1(l)) {
    ConvDims d = {Og, 1, l->out.h * l->out.w, Cg * f.ph * f.pw, 1, f.h * f.w, 1, 1, 0, 0, vl};
    return d;
  }
  if (conv_is_strided(l)) { // into the phases' gradient
    ConvDims d = {Og, l->out.h + 2 * (f.kh - 1), l->out.w + 2 * (f.kw - 1), Cg * f.ph * f.pw, f.h, f.w, f.kh, f.kw,
                  f.kh - 1, f.kh - 1, vl};
    return d;
  }
  int PH = l->out.h + 2 * (l->kh - 1) - l->pt - l->pb, PW = l->out.w + 2 * (l->kw - 1) - l->pl - l->pr;
  // Unpadded, dy's border is kw - 1 zeros on each side of a row: rows as
  // long as dx's, each with its left border only, let a row's right one be
  // the next row's left one, and the input gradient run as one row per
  // plane (conv_fwd_flat) straight into dx: for a 24x24 dx, 36 vectors of
  // 16 a plane where its rows took 48.
  if (!has_pad(l))
    PW = l->in.w;
  ConvDims d = {Og, PH, PW, Cg, l->in.h, l->in.w, l->kh, l->kw, l->kh - 1 - l->pt, l->kh - 1 - l->pb, vl};
  return d;
}

// The vector widths of the direct kernels: the file has both, and calls the
// 16-wide ones (built for AVX-512) where the CPU has AVX-512.
static const int conv_widths[] = {CONV_VL_AVX2, CONV_VL_AVX512};
enum { N_WIDTHS = sizeof conv_widths / sizeof conv_widths[0] };

// Weights of conv l, [out][in / groups][kh][kw]; its bias follows them.
static long conv_weights(const Layer *l) {
  return (long)l->out.c * (l->in.c / l->groups) * l->kh * l->kw;
}

// Operand base for group gr of a grouped conv: base itself when there is
// one group, else (base + gr * stride) inside the loop over the groups.
static const char *group_operand(char *buf, size_t n, const char *base, long stride, int groups) {
  if (groups == 1)
    return base;
  snprintf(buf, n, "(%s + gr * %ld)", base, stride);
  return buf;
}

// Opens the loop over a conv's groups at indent ind (none for one group);
// returns the indent of its body, kept in buf.
static const char *groups_open(TrainCtx *c, int groups, const char *ind, char *buf, size_t n) {
  if (groups == 1)
    return ind;
  W(c, "%sfor (int gr = 0; gr < %d; gr++) { // one conv per group\n", ind, groups);
  snprintf(buf, n, "%s  ", ind);
  return buf;
}

// Closes groups_open's loop.
static void groups_close(TrainCtx *c, int groups, const char *ind) {
  if (groups > 1)
    W(c, "%s}\n", ind);
}

// Values of one image's im2col matrix (0 when the conv needs none).
static long conv_col_size(const Layer *l) {
  if (conv_is_direct(l))
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

// Whether conv k sums the statistics of the BatchNorm after it.
static int conv_stats(const TrainCtx *c, int k) {
  return k + 1 < c->L && c->bn_stats[k + 1] == k;
}

// Sums image i's output per channel for the BatchNorm after conv k, while
// it is in cache.
static void emit_stats(TrainCtx *c, int k) {
  W(c, "      if (training) {\n");
  emit_chan_sums(c, k + 1, "y", NULL, "        ");
  W(c, "      }\n");
}

// The name suffix and attribute of conv k's functions for vector width vl
// (0: the im2col + GEMM path, which has one version).
static const char *fn_suffix(int vl) {
  return vl == CONV_VL_AVX512 ? "_v16" : vl ? "_v8" : "";
}
static const char *fn_attr(int vl) {
  return vl == CONV_VL_AVX512 ? "CNN_V16_FN" : vl ? "CNN_CLONES_V8" : "CNN_CLONES";
}

// What conv k's forward does besides the conv, said over its functions.
static void forward_decls(TrainCtx *c, int k, int stats) {
  for (int b = 0; b < k; b++)
    if (c->bn_sweep[b] == k)
      W(c, "// Each image first gets layer %d's normalizing sweep (its input).\n", b);
  if (stats)
    W(c, "// In training, also sums each image's output per channel for layer %d's statistics.\n", k + 1);
}

// The head of conv k's forward function for width vl.
static void forward_head(TrainCtx *c, int k, int vl) {
  const Layer *l = &c->net->layers[k];
  long off = (long)l->param_off, wsz = conv_weights(l);
  W(c, "%s static void %s_l%d_conv_forward%s(int n%s) {\n", fn_attr(vl), c->P, k, fn_suffix(vl),
    c->fwd_train[k] ? ", int training" : "");
  W(c, "  const cnn_real *restrict w = %s_params + %ld;\n", c->P, off);
  if (l->bias)
    W(c, "  const cnn_real *restrict b = %s_params + %ld;\n", c->P, off + wsz);
}

// The image loop of conv k's forward, through its x and y pointers: first
// the sweep of the BatchNorm before it when the conv runs it (before x is
// declared, as the sweep writes x's values through a pointer of its own).
// At the end of its last image a group's kernels read up to a vector into
// the next group's first image, which another thread may be sweeping then:
// those lanes are never used (nor were they before the sweeps moved here).
static void forward_images(TrainCtx *c, int k) {
  images_begin(c);
  bn_emit_sweeps_for(c, k);
  W(c, "      const cnn_real *restrict x = %s_a%d + (size_t)i * %ld;\n", c->P, c->ibuf[k], c->isize[k]);
  W(c, "      cnn_real *restrict y = %s_a%d + (size_t)i * %ld;\n", c->P, c->buf[k + 1], c->tsize[k + 1]);
}

// The end of conv k's forward: the BN statistics when it sums them, the
// loops' and the function's close.
static void forward_end(TrainCtx *c, int k, int stats) {
  if (stats)
    emit_stats(c, k);
  group_end(c);
  W(c, "}\n");
}

// The weights on the phases of strided conv k, ws from w (conv_phases):
// zero for the taps past the window.
static void emit_phase_weights(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  Phases f = conv_phases(l);
  W(c, "  cnn_real *restrict ws = %s_l%d_ws;\n", c->P, k);
  W(c, "  for (int oc = 0, j = 0; oc < %d; oc++)\n", l->out.c * (l->in.c / l->groups));
  W(c, "    for (int p = 0; p < %d; p++)\n      for (int q = 0; q < %d; q++)\n", f.ph, f.pw);
  W(c, "        for (int a = 0; a < %d; a++)\n          for (int b = 0; b < %d; b++, j++) {\n", f.kh, f.kw);
  W(c, "            const int ky = a * %d + p, kx = b * %d + q;\n", l->sh, l->sw);
  W(c, "            ws[j] = ky < %d && kx < %d ? w[(oc * %d + ky) * %d + kx] : 0;\n          }\n", l->kh, l->kw, l->kh,
    l->kw);
}

// One image of strided conv k's input x split into the phases of its
// padded input, xp (every value written: zeros outside the input).
static void emit_phase_split(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  Phases f = conv_phases(l);
  int H = l->in.h, Wd = l->in.w;
  W(c, "      for (int c = 0; c < %d; c++)\n        for (int p = 0; p < %d; p++)\n", l->in.c, f.ph);
  W(c, "          for (int q = 0; q < %d; q++)\n            for (int i = 0; i < %d; i++) {\n", f.pw, f.h);
  W(c, "              cnn_real *restrict r = xp + ((c * %d + p) * %d + q) * %d + i * %d;\n", f.ph, f.pw, f.h * f.w,
    f.w);
  W(c, "              const int iy = i * %d + p - %d;\n", l->sh, l->pt);
  W(c, "              if (iy < 0 || iy >= %d) {\n", H);
  W(c, "                for (int j = 0; j < %d; j++)\n                  r[j] = 0;\n                continue;\n", f.w);
  W(c, "              }\n              const cnn_real *restrict xr = x + (c * %d + iy) * %d;\n", H, Wd);
  W(c, "              for (int j = 0; j < %d; j++) {\n", f.w);
  W(c, "                const int ix = j * %d + q - %d;\n", l->sw, l->pl);
  W(c, "                r[j] = ix >= 0 && ix < %d ? xr[ix] : 0;\n              }\n            }\n", Wd);
}

// One image's input gradient of strided conv k from its phases' gradient
// dxs: each input value from its phase; zero where no tap reads it.
static void emit_phase_gather(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  Phases f = conv_phases(l);
  int H = l->in.h, Wd = l->in.w;
  W(c, "      for (int c = 0; c < %d; c++)\n        for (int iy = 0; iy < %d; iy++) {\n", l->in.c, H);
  W(c, "          const int p = (iy + %d) %% %d, i = (iy + %d) / %d;\n", l->pt, l->sh, l->pt, l->sh);
  W(c, "          cnn_real *restrict r = dx + (c * %d + iy) * %d;\n", H, Wd);
  W(c, "          if (p >= %d || i >= %d) {\n", f.ph, f.h);
  W(c, "            for (int ix = 0; ix < %d; ix++)\n              r[ix] = 0;\n            continue;\n          }\n", Wd);
  W(c, "          const cnn_real *restrict s = dxs + (c * %d + p) * %ld + i * %d;\n", f.ph, (long)f.pw * f.h * f.w,
    f.w);
  W(c, "          for (int ix = 0; ix < %d; ix++) {\n", Wd);
  W(c, "            const int q = (ix + %d) %% %d, j = (ix + %d) / %d;\n", l->pl, l->sw, l->pl, l->sw);
  W(c, "            r[ix] = q < %d && j < %d ? s[q * %d + j] : 0;\n          }\n        }\n", f.pw, f.w, f.h * f.w);
}

// The weight gradient of strided conv k: the groups' partials on the
// phases, summed in group order, each into the weight of its tap.
static void emit_phase_wgrad_sum(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  Phases f = conv_phases(l);
  W(c, "  for (int oc = 0; oc < %d; oc++)\n", l->out.c * (l->in.c / l->groups));
  W(c, "    for (int ky = 0; ky < %d; ky++)\n      for (int kx = 0; kx < %d; kx++) {\n", l->kh, l->kw);
  W(c, "        const int j = (oc * %d + ky %% %d) * %d + kx %% %d, js = (j * %d + ky / %d) * %d + kx / %d;\n",
    f.ph, l->sh, f.pw, l->sw, f.kh, l->sh, f.kw, l->sw);
  W(c, "        cnn_real s = %s_l%d_dw[0][js];\n", c->P, k);
  W(c, "        for (int g = 1; g < used; g++)\n          s += %s_l%d_dw[g][js];\n", c->P, k);
  W(c, "        %s_grads[%ld + (oc * %d + ky) * %d + kx] = s;\n      }\n", c->P, (long)l->param_off, l->kh, l->kw);
}

// The per-group partial gradients of conv k and the comment over its backward.
static void backward_head(TrainCtx *c, int k, const char *what) {
  const Layer *l = &c->net->layers[k];
  long wsz = conv_is_direct(l) ? direct_weights(l) : conv_weights(l);
  W(c, "\n// Per-group partial weight%s gradients, summed in group order.\n", l->bias ? " and bias" : "");
  W(c, "static cnn_real %s_l%d_dw[NGROUP][%ld] CNN_ALIGNED;\n", c->P, k, wsz);
  if (l->bias)
    W(c, "static cnn_real %s_l%d_db[NGROUP][%d] CNN_ALIGNED;\n", c->P, k, l->out.c);
  W(c, "// dW = dy * x^T%s%s.\n", l->bias ? ", db = sum dy" : "", what);
}

// The end of conv k's backward: with lanes (a ConvDims of the kernels'
// width), each weight's vector of lane sums added up after the group's
// images; the per-group partials added in group order.
static void backward_tail(TrainCtx *c, int k, const ConvDims *lanes) {
  const Layer *l = &c->net->layers[k];
  long off = (long)l->param_off, wsz = conv_weights(l);
  if (lanes) {
    W(c, "    }\n");
    emit_conv_wgrad_lanes(c, lanes, "dw", "dwv", direct_weights(l), "    ");
    W(c, "  }\n");
  } else {
    group_end(c);
  }
  W(c, "  const int used = (n + GSIZE - 1) / GSIZE;\n");
  if (conv_is_direct(l) && conv_is_strided(l))
    emit_phase_wgrad_sum(c, k);
  else
    emit_group_sum(c, k, "dw", 'j', wsz, off);
  if (l->bias)
    emit_group_sum(c, k, "db", 'o', l->out.c, off + wsz);
  W(c, "}\n");
}

// The function conv k's driver calls for pass ("forward", "backward"):
// the 16-wide kernels where the file has them (CNN_V16) and the CPU has
// AVX-512, else the 8-wide ones.
static void emit_dispatch(TrainCtx *c, int k, const char *pass, int training) {
  const char *P = c->P, *args = training ? "n, training" : "n";
  W(c, "// Layer %d's %s on the CPU's vector width.\n", k, pass);
  W(c, "static void %s_l%d_conv_%s(int n%s) {\n#if CNN_V16\n  if (%s_v16) {\n", P, k, pass,
    training ? ", int training" : "", P);
  W(c, "    %s_l%d_conv_%s_v16(%s);\n    return;\n  }\n#endif\n", P, k, pass, args);
  W(c, "  %s_l%d_conv_%s_v8(%s);\n}\n", P, k, pass, args);
}

// db += sum of dy per channel, image i.
static void emit_bias_grad(TrainCtx *c, const Layer *l) {
  int NP = l->out.h * l->out.w;
  W(c, "      for (int o = 0; o < %d; o++) {\n", l->out.c);
  W(c, "        cnn_real s = first ? 0 : db[o];\n");
  W(c, "        for (int p = 0; p < %d; p++)\n          s += dy[o * %d + p];\n", NP, NP);
  W(c, "        db[o] = s;\n      }\n");
}

// Conv k's direct forward for vector width vl.
static void direct_forward(TrainCtx *c, int k, int vl) {
  const Layer *l = &c->net->layers[k];
  int G = l->groups, stats = conv_stats(c, k), pad = has_pad(l), st = conv_is_strided(l);
  ConvDims d = conv_dims(l, vl);
  long ygs = (long)d.o * l->out.h * l->out.w, wgs = direct_weights(l) / G;
  char ga[4][128], gind[32];
  forward_head(c, k, vl);
  if (st)
    emit_phase_weights(c, k);
  group_begin(c);
  int flat = conv_fwd_flat_copies(&d); // (then emit_flat_buffer declared yf)
  if (flat)
    W(c, "    cnn_real *restrict yf = %s_l%d_yf[g];\n", c->P, k);
  forward_images(c, k);
  if (st) {
    W(c, "      cnn_real *restrict xp = %s_l%d_xp + (size_t)i * %ld;\n", c->P, k, (long)G * d.c * d.h * d.w);
    emit_phase_split(c, k);
  } else if (pad) {
    W(c, "      cnn_real *restrict xp = %s_l%d_xp + (size_t)i * %ld;\n", c->P, k, (long)l->in.c * d.h * d.w);
    W(c, "      for (int c = 0; c < %d; c++)\n        for (int iy = 0; iy < %d; iy++)\n", l->in.c, l->in.h);
    W(c, "          memcpy(xp + (c * %d + iy + %d) * %d + %d, x + (c * %d + iy) * %d, %d * sizeof(cnn_real));\n", d.h,
      l->pt, d.w, l->pl, l->in.h, l->in.w, l->in.w);
  }
  const char *gi = groups_open(c, G, "      ", gind, sizeof gind);
  emit_conv_direct(c, &d, group_operand(ga[0], 128, conv_reads_copy(l) ? "xp" : "x", (long)d.c * d.h * d.w, G),
                   group_operand(ga[1], 128, st ? "ws" : "w", wgs, G), group_operand(ga[2], 128, "y", ygs, G),
                   l->bias ? group_operand(ga[3], 128, "b", d.o, G) : NULL, flat ? "yf" : NULL, gi);
  groups_close(c, G, "      ");
  forward_end(c, k, stats);
}

// Whether conv k's weight gradient reads dy from a padded copy at some
// width (conv_wgrad_copy), and the values per group that copy needs at the
// widest: one image, or the group's when the sum runs over them inside.
static long dyw_size(const TrainCtx *c, const Layer *l) {
  long most = 0;
  for (int v = 0; v < N_WIDTHS; v++) {
    ConvDims d = conv_dims(l, conv_widths[v]);
    if (!conv_wgrad_copy(&d))
      continue;
    long n = (conv_wgrad_images_inner(&d, c->gsize) ? c->gsize : 1) * (long)l->out.c * conv_wgrad_plane(&d);
    if (n > most)
      most = n;
  }
  return most;
}

// Whether direct conv k, at width vl, writes the dx of the BatchNorm after
// it (that runs it) straight into the layouts it reads dy in: image by
// image, into the padded copy the weight gradient reads (and the bordered
// one of the input gradient, unless 1x1), with no bias to read dy.
static int takes_bn_dx(const TrainCtx *c, int k, int vl) {
  const Layer *l = &c->net->layers[k];
  ConvDims d = conv_dims(l, vl);
  return bn_run_by(c, c->bn_dx, k) >= 0 && !conv_wgrad_images_inner(&d, c->gsize) && conv_wgrad_copy(&d) && !l->bias &&
         !(c->gmode[l->src] && conv_is_1x1(l));
}

int conv_takes_bn_dx(const TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  if (!conv_is_direct(l) || conv_lanes(l, c->gsize) || bn_run_by(c, c->bn_dx, k) < 0)
    return 0;
  for (int v = 0; v < N_WIDTHS; v++) {
    ConvDims d = conv_dims(l, conv_widths[v]);
    if (conv_wgrad_images_inner(&d, c->gsize))
      return 0;
  }
  return 1;
}

// Whether direct conv k, at width vl, runs the dx of the BatchNorm after it
// image by image (at every width) but not into its own layouts
// (takes_bn_dx): then into a group's one-image scratch (dys), which stays
// in cache, where the BatchNorm's dx buffer would go to memory and back.
static int bn_dx_in_scratch(const TrainCtx *c, int k, int vl) {
  return conv_takes_bn_dx(c, k) && !takes_bn_dx(c, k, vl);
}

// Conv k's direct backward for vector width vl: the weight gradient, and
// the input gradient as a direct conv of the zero-bordered output gradient
// with the flipped, transposed weights.
static void direct_backward(TrainCtx *c, int k, int vl) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int O = l->out.c, G = l->groups;
  int ib = c->ibuf[k], ob = c->buf[k + 1], dxmode = c->gmode[l->src];
  int st = conv_is_strided(l), copy = conv_reads_copy(l), pw = conv_is_1x1(l);
  ConvDims d = conv_dims(l, vl), dd = igrad_dims(l, vl);
  int Cg = d.c, Og = d.o, CP = G * d.c, KP = d.kh * d.kw; // channels and taps on the phases
  long xps = (long)CP * d.h * d.w, ygs = (long)Og * l->out.h * l->out.w, wgs = direct_weights(l) / G;
  int bt = dd.zt, bl = st ? d.kw - 1 : l->kw - 1 - l->pl;
  char ga[4][128], gind[32];
  const char *gi;
  // Small maps: the weight gradient first, over the group's images; large
  // ones image by image, with the rest, as vectors of lane sums (dwv). dy is
  // read from a copy with its rows padded to whole vectors (all groups at
  // once) where conv_wgrad_copy says.
  int inner = conv_wgrad_images_inner(&d, c->gsize), dycopy = conv_wgrad_copy(&d);
  long dyws = conv_wgrad_plane(&d);
  W(c, "%s static void %s_l%d_conv_backward%s(int n) {\n", fn_attr(vl), P, k, fn_suffix(vl));
  if (dxmode) {
    ig_open(c, dxmode);
    if (st) // the forward's weights on the phases
      W(c, "  const cnn_real *restrict w = %s_l%d_ws;\n", P, k);
    else
      W(c, "  const cnn_real *restrict w = %s_params + %ld;\n", P, (long)l->param_off);
    W(c, "  cnn_real *restrict wt = %s_l%d_wt;\n", P, k);
    if (G == 1) {
      W(c, "  for (int o = 0; o < %d; o++)\n    for (int c = 0; c < %d; c++)\n", O, CP);
      W(c, "      for (int j = 0; j < %d; j++)\n", KP);
      W(c, "        wt[(c * %d + o) * %d + %d - j] = w[(o * %d + c) * %d + j];\n", O, KP, KP - 1, CP, KP);
    } else {
      // Group by group: wt[gr][c][o] from W[gr * Og + o][c].
      W(c, "  for (int gr = 0; gr < %d; gr++)\n    for (int o = 0; o < %d; o++)\n", G, Og);
      W(c, "      for (int c = 0; c < %d; c++)\n        for (int j = 0; j < %d; j++)\n", Cg, KP);
      W(c, "          wt[gr * %ld + (c * %d + o) * %d + %d - j] = w[((gr * %d + o) * %d + c) * %d + j];\n", wgs, Og,
        KP, KP - 1, Og, Cg, KP);
    }
    ig_close(c, dxmode);
  }
  group_begin(c);
  W(c, "    cnn_real *restrict dw = %s_l%d_dw[g];\n", P, k);
  if (!inner)
    W(c, "    cnn_real *restrict dwv = %s_l%d_dwv[g];\n", P, k);
  if (l->bias)
    W(c, "    cnn_real *restrict db = %s_l%d_db[g];\n", P, k);
  if (dxmode && (!pw || st)) {
    ig_open(c, dxmode);
    if (!pw)
      W(c, "    cnn_real *restrict dyp = %s_l%d_dyp[g];\n", P, k);
    if (st)
      W(c, "    cnn_real *restrict dxs = %s_l%d_dxs[g];\n", P, k);
    if (conv_fwd_flat_copies(&dd))
      W(c, "    cnn_real *restrict dxf = %s_l%d_dxf[g];\n", P, k);
    ig_close(c, dxmode);
  }
  // The BatchNorm after this conv whose input gradient (this conv's dy)
  // runs here, image by image before the conv's own work; for small maps
  // the group's images at once, as the weight gradient then reads them.
  int bnx = bn_run_by(c, c->bn_dx, k);
  if (bnx >= 0 && inner) {
    W(c, "    for (int i = g * GSIZE; i < n && i < (g + 1) * GSIZE; i++) { // layer %d's dx: this conv's dy\n", bnx);
    bn_emit_dx(c, bnx, "      ");
    W(c, "    }\n");
  }
  char xb[96], dyb[96];
  if (copy)
    snprintf(xb, sizeof xb, "%s_l%d_xp", P, k);
  else
    snprintf(xb, sizeof xb, "%s_a%d", P, ib);
  snprintf(dyb, sizeof dyb, "%s_d%d", P, ob);
  ConvDims da = d; // all groups' channels, for the copy
  da.o = O;
  ConvImages im = {group_operand(ga[0], 128, xb, (long)Cg * d.h * d.w, G), group_operand(ga[1], 128, dyb, ygs, G),
                   copy ? xps : c->isize[k], c->tsize[k + 1], 0};
  if (dycopy) {
    W(c, "    cnn_real *restrict dyw = %s_l%d_dyw[g];\n", P, k);
    if (inner) {
      W(c, "    for (int i = g * GSIZE; i < n && i < (g + 1) * GSIZE; i++) {\n");
      W(c, "      const cnn_real *restrict dy = %s + (size_t)i * %ld;\n", dyb, c->tsize[k + 1]);
      W(c, "      cnn_real *restrict dyi = dyw + (size_t)(i - g * GSIZE) * %ld;\n", O * dyws);
      emit_conv_wgrad_copy(c, &da, "dyi", "dy", "      ");
      W(c, "    }\n");
      im.dy = group_operand(ga[1], 128, "dyw", Og * dyws, G);
      im.dysize = O * dyws;
      im.local = 1;
    }
  }
  if (inner) {
    gi = groups_open(c, G, "    ", gind, sizeof gind);
    emit_conv_wgrad(c, &d, "x", "dy", group_operand(ga[2], 128, "dw", wgs, G), gi, &im);
    groups_close(c, G, "    ");
  }
  // Image by image, the BatchNorm's dx goes straight into the layouts this
  // conv reads dy in, when nothing else reads dy: its own buffer, and the
  // copies from it, are left out.
  int fuse = takes_bn_dx(c, k, vl), scratch = bn_dx_in_scratch(c, k, vl);
  if (scratch)
    W(c, "    cnn_real *restrict dys = %s_l%d_dys[g];\n", P, k);
  images_begin(c);
  if (bnx >= 0 && !inner) {
    W(c, "      { // layer %d's dx: this image's dy\n", bnx);
    BnDxDest to[2] = {{"dyw", conv_wgrad_plane(&da), 0, conv_wgrad_row(&da), 0},
                      {"dyp", (long)dd.h * dd.w, (long)bt * dd.w + bl, dd.w, dxmode}};
    if (fuse)
      bn_emit_dx_into(c, bnx, to, dxmode ? 2 : 1, "        ");
    else
      bn_emit_dx_to(c, bnx, scratch ? "dys" : NULL, "        ");
    W(c, "      }\n");
  }
  if (!inner || l->bias)
    W(c, "      const int first = i == g * GSIZE;\n");
  if (!inner)
    W(c, "      const cnn_real *restrict x = %s + (size_t)i * %ld;\n", xb, im.xsize);
  // dy, when only the input gradient reads it, only where that exists.
  int dy_mode = fuse ? 0 : !inner || l->bias ? 1 : dxmode;
  if (dy_mode) {
    ig_open(c, dy_mode);
    if (scratch)
      W(c, "      const cnn_real *restrict dy = dys;\n");
    else
      W(c, "      const cnn_real *restrict dy = %s_d%d + (size_t)i * %ld;\n", P, ob, c->tsize[k + 1]);
    ig_close(c, dy_mode);
  }
  if (!inner) {
    if (dycopy && !fuse)
      emit_conv_wgrad_copy(c, &da, "dyw", "dy", "      ");
    gi = groups_open(c, G, "      ", gind, sizeof gind);
    emit_conv_wgrad(c, &d, group_operand(ga[0], 128, "x", (long)Cg * d.h * d.w, G),
                    group_operand(ga[1], 128, dycopy ? "dyw" : "dy", Og * dyws, G),
                    group_operand(ga[2], 128, "dwv", wgs * vl, G), gi, NULL);
    groups_close(c, G, "      ");
  }
  if (l->bias)
    emit_bias_grad(c, l);
  if (dxmode) {
    ig_open(c, dxmode);
    int bn = bn_run_by(c, c->bn_dsums, k); // the BatchNorm whose first backward pass follows
    // Its pass reads dx through pointers of its own: dx (restrict) goes out
    // of scope first.
    if (bn >= 0)
      W(c, "      {\n");
    W(c, "      cnn_real *restrict dx = %s + (size_t)i * %ld;\n", c->dx[k], c->isize[k]);
    if (st)
      W(c, "      { // the phases' gradient, then each input value's from its phase\n");
    if (!pw && !fuse) {
      W(c, "      for (int o = 0; o < %d; o++)\n        for (int oy = 0; oy < %d; oy++)\n", O, l->out.h);
      W(c, "          memcpy(dyp + (o * %d + oy + %d) * %d + %d, dy + (o * %d + oy) * %d, %d * sizeof(cnn_real));\n",
        dd.h, bt, dd.w, bl, l->out.h, l->out.w, l->out.w);
    }
    gi = groups_open(c, G, "      ", gind, sizeof gind);
    emit_conv_direct(c, &dd, pw ? group_operand(ga[0], 128, "dy", ygs, G)
                                : group_operand(ga[0], 128, "dyp", (long)Og * dd.h * dd.w, G),
                     group_operand(ga[1], 128, "wt", wgs, G),
                     group_operand(ga[2], 128, st ? "dxs" : "dx", (long)Cg * dd.oh * dd.ow, G), NULL,
                     conv_fwd_flat_copies(&dd) ? "dxf" : NULL, gi);
    groups_close(c, G, "      ");
    if (st) {
      emit_phase_gather(c, k);
      W(c, "      }\n");
    }
    if (bn >= 0) {
      W(c, "      }\n      { // layer %d's first backward pass for this image, while its dx is in cache\n", bn);
      bn_emit_dy_sums(c, bn, "        ");
      W(c, "      }\n");
    }
    ig_close(c, dxmode);
  }
  backward_tail(c, k, inner ? NULL : &d);
}

// Opens (and closes) what only the 16-wide kernels need: `#if CNN_V16`
// around it in the generated file.
static void v16_open(TrainCtx *c, int only16) {
  if (only16)
    W(c, "#if CNN_V16\n");
}
static void v16_close(TrainCtx *c, int only16) {
  if (only16)
    W(c, "#endif\n");
}

// emit(c, k, vl) at each width, the 16-wide one under `#if CNN_V16`.
static void emit_each_width(TrainCtx *c, int k, void (*emit)(TrainCtx *, int, int)) {
  for (int v = 0; v < N_WIDTHS; v++) {
    v16_open(c, conv_widths[v] == CONV_VL_AVX512);
    emit(c, k, conv_widths[v]);
    v16_close(c, conv_widths[v] == CONV_VL_AVX512);
  }
}

// n rounded up to whole vectors of the widest kind: each group's slice of a
// buffer then starts on a 64-byte line too (a 16-wide weight gradient ran
// 12% faster on aligned copies of dy).
static long whole_vectors(long n) {
  return (n + CONV_VL_MAX - 1) / CONV_VL_MAX * CONV_VL_MAX;
}

// The buffer (NAME_lK_<name>) that a direct kernel of shape dims(l, width)
// writes flat (conv_fwd_flat_copies) at some width, sized for the widest and under
// CNN_V16 when only the 16-wide kernel uses it; whether there is one.
static int emit_flat_buffer(TrainCtx *c, int k, ConvDims (*dims)(const Layer *, int), const char *name,
                            const char *what) {
  const Layer *l = &c->net->layers[k];
  ConvDims d8 = dims(l, CONV_VL_AVX2);
  int flat = 0, flat8 = conv_fwd_flat_copies(&d8);
  for (int v = 0; v < N_WIDTHS; v++) {
    ConvDims dv = dims(l, conv_widths[v]);
    flat |= conv_fwd_flat_copies(&dv);
  }
  if (flat) {
    W(c, "// Each plane of a group's %s row stride.\n", what);
    v16_open(c, !flat8);
    W(c, "static cnn_real %s_l%d_%s[NGROUP][%ld] CNN_ALIGNED;\n", c->P, k, name,
      whole_vectors(conv_fwd_flat_size(&d8) + CONV_VL_MAX));
    v16_close(c, !flat8);
  }
  return flat;
}

// Conv layer k on the direct kernels, at each vector width, and the
// functions that pick one: the buffers they share first (sized for the
// widest), then forward and backward.
static void conv_emit_direct(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int C = l->in.c, O = l->out.c, KH = l->kh, KW = l->kw, G = l->groups;
  int dxmode = c->gmode[l->src], bwmode = c->gmode[k + 1];
  int stats = conv_stats(c, k), pad = has_pad(l), pw = conv_is_1x1(l), st = conv_is_strided(l);
  ConvDims d = conv_dims(l, CONV_VL_AVX2), dd = igrad_dims(l, CONV_VL_AVX2);
  long wp = direct_weights(l);
  W(c, "// Path: %s.\n", conv_path(l, c->gsize));
  W(c, "// y[%d][%dx%d] = W[%d][%d][%dx%d] (*) x[%d][%dx%d]%s%s%s%s.\n", O, l->out.h, l->out.w, O, C / G, KH, KW, C,
    l->in.h, l->in.w, pad ? " padded" : "", st ? " strided" : "", l->bias ? " + b" : "", G > 1 ? ", in groups" : "");
  W(c, "// Each function comes 8 wide (_v8: AVX2 and the baseline) and, under\n"
       "// CNN_V16, 16 wide (_v16: AVX-512); the one without a suffix picks.\n");
  if (st) {
    Phases f = conv_phases(l);
    W(c, "// Stride %dx%d: the stride-1 conv of the input's %d phases (rows p, p + %d, ...,\n"
         "// columns q, q + %d, ...) as %d x %d channels, with a %dx%d window whose taps past\n"
         "// the %dx%d one have zero weights: ws[o][c][p][q][a][b] = W[o][c][a * %d + p][b * %d + q].\n",
      l->sh, l->sw, f.ph * f.pw, l->sh, l->sw, C / G, f.ph * f.pw, f.kh, f.kw, KH, KW, l->sh, l->sw);
    // (A zero tap still multiplies its input: an infinity there, once
    // training has diverged, makes a NaN in a neighbouring output.)
    W(c, "static cnn_real %s_l%d_ws[%ld] CNN_ALIGNED;\n", P, k, wp);
    // As with x itself (forward_images), a group's kernels read up to a
    // vector past its last image's phases, into the next image's, which
    // another thread may be writing: lanes that are never used.
    W(c, "// Each image's padded input split into phases, from the forward to the weight gradient.\n"
         "static cnn_real %s_l%d_xp[BATCH * %ld + %d] CNN_ALIGNED;\n",
      P, k, (long)G * d.c * d.h * d.w, CONV_VL_MAX);
  } else if (pad)
    W(c, "// Each image's input with its zero border (the border never written),\n"
         "// from the forward to the weight gradient.\n"
         "static cnn_real %s_l%d_xp[BATCH * %ld + %d] CNN_ALIGNED;\n",
      P, k, (long)C * d.h * d.w, CONV_VL_MAX);
  emit_flat_buffer(c, k, conv_dims, "yf", "output as one row on the input's");
  forward_decls(c, k, stats);
  emit_each_width(c, k, direct_forward);
  emit_dispatch(c, k, "forward", c->fwd_train[k]);
  if (!bwmode)
    return;
  ig_open(c, bwmode);
  backward_head(c, k, !dxmode ? "" : pw ? ", dx = W^T * dy (a direct 1x1 conv of dy)"
                                      : ", dx = W^T * dy (the direct conv of the bordered dy with W flipped)");
  if (dxmode) {
    ig_open(c, dxmode);
    if (pw) {
      W(c, "// The weights with input and output channels swapped: wt[c][o] = W[o][c].\n");
    } else {
      W(c, "// dy of one image per group with zero borders (never written), and the\n"
           "// weights flipped, input and output channels swapped: wt[c][o][ky][kx] =\n"
           "// %s[o][c][%d - ky][%d - kx]%s.\n", st ? "ws" : "W", d.kh - 1, d.kw - 1,
        st ? " (on the phases: c a phase channel, the window the phases')" : "");
      // A flat run on wrapped rows reads up to vl + kw - 3 values past them.
      W(c, "static cnn_real %s_l%d_dyp[NGROUP][%ld] CNN_ALIGNED;\n", P, k, whole_vectors((long)O * dd.h * dd.w + CONV_VL_MAX + dd.kw));
    }
    emit_flat_buffer(c, k, igrad_dims, "dxf", "input gradient as one row on dy's bordered");
    if (st)
      W(c, "// One image's gradient of the input's phases, per group.\n"
           "static cnn_real %s_l%d_dxs[NGROUP][%ld] CNN_ALIGNED;\n",
        P, k, whole_vectors((long)G * dd.o * dd.oh * dd.ow + CONV_VL_MAX));
    W(c, "static cnn_real %s_l%d_wt[%ld] CNN_ALIGNED;\n", P, k, wp);
    ig_close(c, dxmode);
  }
  long dyw = dyw_size(c, l);
  int dyw8 = conv_wgrad_copy(&d);
  if (dyw) {
    W(c, "// dy for the weight gradient, its rows padded with zeros to whole vectors\n"
         "// (or laid on the input's row stride: conv_kernels.c), the padding never written.\n");
    v16_open(c, !dyw8);
    W(c, "static cnn_real %s_l%d_dyw[NGROUP][%ld] CNN_ALIGNED;\n", P, k, whole_vectors(dyw + CONV_VL_MAX));
    v16_close(c, !dyw8);
  }
  int dys8 = bn_dx_in_scratch(c, k, CONV_VL_AVX2);
  if (dys8 || bn_dx_in_scratch(c, k, CONV_VL_AVX512)) {
    W(c, "// One image's dy (the BatchNorm's dx) per group.\n");
    v16_open(c, !dys8);
    W(c, "static cnn_real %s_l%d_dys[NGROUP][%ld] CNN_ALIGNED;\n", P, k, whole_vectors(c->tsize[k + 1] + CONV_VL_MAX));
    v16_close(c, !dys8);
  }
  if (!conv_wgrad_images_inner(&d, c->gsize))
    W(c, "// The weight gradient of a group's images so far, a vector of lane sums per weight.\n"
         "static cnn_real %s_l%d_dwv[NGROUP][%ld] CNN_ALIGNED;\n",
      P, k, wp * CONV_VL_MAX);
  emit_each_width(c, k, direct_backward);
  emit_dispatch(c, k, "backward", 0);
  ig_close(c, bwmode);
}

// The shape of conv l for the lane kernels of width vl.
static LaneDims lane_dims(const TrainCtx *c, const Layer *l, int vl) {
  LaneDims d = {l->in.c, l->in.h, l->in.w, l->out.c, l->out.h, l->out.w, l->kh, l->kw, vl,
                lanes_per_group(c->gsize)};
  return d;
}

// The sets of lane width vl (vl / gl groups each), and the lanes of all of
// them: a packed buffer holds that many images.
static int lane_sets(const TrainCtx *c, const LaneDims *d) {
  int m = d->vl / d->gl;
  return (c->ngroup + m - 1) / m;
}
static long lanes_most(const TrainCtx *c, const Layer *l) {
  long most = 0;
  for (int v = 0; v < N_WIDTHS; v++) {
    LaneDims d = lane_dims(c, l, conv_widths[v]);
    long n = (long)lane_sets(c, &d) * d.vl;
    if (n > most)
      most = n;
  }
  return most;
}

// Opens the loop over set s's images at indent "    ": i and its group g
// (and closes it).
static void lane_images_open(TrainCtx *c, const LaneDims *d) {
  W(c, "    for (int u = 0; u < %d; u++) {\n", d->vl);
  W(c, "      const int i = li[u], g = s * %d + u / %d;\n      if (i < 0)\n        continue;\n      (void)g;\n",
    d->vl / d->gl, d->gl);
}

// BatchNorm layer b's pass emit (sweep, dx, first backward pass) for each
// image of set s, said in the comment what.
static void lane_bn_pass(TrainCtx *c, const LaneDims *d, int b, const char *what,
                         void (*emit)(TrainCtx *, int, const char *)) {
  lane_images_open(c, d);
  W(c, "      { // layer %d's %s\n", b, what);
  emit(c, b, "        ");
  W(c, "      }\n    }\n");
}

// Conv k's forward with the images as lanes, width vl: per set, the sweep
// of the BatchNorm before it image by image, the input packed (and kept
// for the weight gradient), the conv, the output unpacked, and the
// statistics of the BatchNorm after it image by image.
static void lanes_forward(TrainCtx *c, int k, int vl) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  LaneDims d = lane_dims(c, l, vl);
  long xs = (long)d.c * d.h * d.w, ys = (long)d.o * d.oh * d.ow;
  char src[96], dst[96];
  forward_head(c, k, vl);
  W(c, "  CNN_OMP(omp parallel for schedule(static))\n  for (int s = 0; s < %d; s++) {\n", lane_sets(c, &d));
  W(c, "    cnn_real *restrict xl = %s_l%d_xl + (size_t)s * %ld;\n", P, k, xs * vl);
  W(c, "    cnn_real *restrict yl = %s_l%d_yl + (size_t)s * %ld;\n", P, k, ys * vl);
  emit_lanes_images(c, &d, "    ");
  for (int b = 0; b < k; b++)
    if (c->bn_sweep[b] == k)
      lane_bn_pass(c, &d, b, "sweep: this image's input", bn_emit_sweep);
  snprintf(src, sizeof src, "%s_a%d", P, c->ibuf[k]);
  emit_lanes_pack(c, &d, "xl", src, xs, "    ");
  emit_lanes_forward(c, &d, "xl", "w", "yl", l->bias ? "b" : NULL, "    ");
  snprintf(dst, sizeof dst, "%s_a%d", P, c->buf[k + 1]);
  emit_lanes_unpack(c, &d, dst, "yl", ys, "    ");
  if (conv_stats(c, k)) {
    lane_images_open(c, &d);
    W(c, "      const cnn_real *restrict y = %s + (size_t)i * %ld;\n", dst, ys);
    emit_stats(c, k);
    W(c, "    }\n");
  }
  W(c, "  }\n}\n");
}

// Conv k's backward with the images as lanes, width vl: per set, the
// input gradient of the BatchNorm after it image by image (this conv's
// dy), dy packed, the weight gradient of each group of the set, the input
// gradient unpacked, and the first backward pass of the BatchNorm before
// it image by image; then the groups' partials in group order.
static void lanes_backward(TrainCtx *c, int k, int vl) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int dxmode = c->gmode[l->src];
  LaneDims d = lane_dims(c, l, vl);
  long xs = (long)d.c * d.h * d.w, ys = (long)d.o * d.oh * d.ow;
  char buf[96], dw[64], db[64];
  W(c, "%s static void %s_l%d_conv_backward%s(int n) {\n", fn_attr(vl), P, k, fn_suffix(vl));
  if (dxmode) {
    ig_open(c, dxmode);
    W(c, "  const cnn_real *restrict w = %s_params + %ld;\n", P, (long)l->param_off);
    ig_close(c, dxmode);
  }
  W(c, "  CNN_OMP(omp parallel for schedule(static))\n  for (int s = 0; s < %d; s++) {\n", lane_sets(c, &d));
  W(c, "    const cnn_real *restrict xl = %s_l%d_xl + (size_t)s * %ld;\n", P, k, xs * vl);
  W(c, "    cnn_real *restrict dyl = %s_l%d_yl + (size_t)s * %ld;\n", P, k, ys * vl);
  emit_lanes_images(c, &d, "    ");
  for (int b = k + 1; b < c->L; b++)
    if (c->bn_dx[b] == k)
      lane_bn_pass(c, &d, b, "dx: this conv's dy", bn_emit_dx);
  snprintf(buf, sizeof buf, "%s_d%d", P, c->buf[k + 1]);
  emit_lanes_pack(c, &d, "dyl", buf, ys, "    ");
  snprintf(dw, sizeof dw, "%s_l%d_dw[g]", P, k);
  snprintf(db, sizeof db, "%s_l%d_db[g]", P, k);
  emit_lanes_wgrad(c, &d, "xl", "dyl", dw, l->bias ? db : NULL, "    ");
  if (dxmode) {
    ig_open(c, dxmode);
    W(c, "    {\n    cnn_real *restrict dxl = %s_l%d_dxl + (size_t)s * %ld;\n", P, k, xs * vl);
    emit_lanes_igrad(c, &d, "dyl", "w", "dxl", "    ");
    emit_lanes_unpack(c, &d, c->dx[k], "dxl", xs, "    ");
    W(c, "    }\n");
    for (int b = 0; b < k; b++)
      if (c->bn_dsums[b] == k)
        lane_bn_pass(c, &d, b, "first backward pass for this image", bn_emit_dy_sums);
    ig_close(c, dxmode);
  }
  W(c, "  }\n  const int used = (n + GSIZE - 1) / GSIZE;\n");
  emit_group_sum(c, k, "dw", 'j', conv_weights(l), (long)l->param_off);
  if (l->bias)
    emit_group_sum(c, k, "db", 'o', l->out.c, (long)l->param_off + conv_weights(l));
  W(c, "}\n");
}

// Conv layer k with the images as lanes, at each vector width, and the
// functions that pick one: the packed buffers they share first.
static void conv_emit_lanes(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int dxmode = c->gmode[l->src], bwmode = c->gmode[k + 1];
  long lanes = lanes_most(c, l), xs = (long)l->in.c * l->in.h * l->in.w, ys = (long)l->out.c * l->out.h * l->out.w;
  W(c, "// Path: %s.\n", conv_path(l, c->gsize));
  W(c, "// y[%d][%dx%d] = W[%d][%d][%dx%d] (*) x[%d][%dx%d]%s, on sets of 8 (16) images\n"
       "// packed as [value][image]: a vector holds one value of each image.\n",
    l->out.c, l->out.h, l->out.w, l->out.c, l->in.c, l->kh, l->kw, l->in.c, l->in.h, l->in.w, l->bias ? " + b" : "");
  W(c, "// Each set's input, packed, from the forward to the weight gradient; its\n"
       "// output, then its output gradient.\n");
  W(c, "static cnn_real %s_l%d_xl[%ld] CNN_ALIGNED;\n", P, k, lanes * xs);
  W(c, "static cnn_real %s_l%d_yl[%ld] CNN_ALIGNED;\n", P, k, lanes * ys);
  forward_decls(c, k, conv_stats(c, k));
  emit_each_width(c, k, lanes_forward);
  emit_dispatch(c, k, "forward", c->fwd_train[k]);
  if (!bwmode)
    return;
  ig_open(c, bwmode);
  backward_head(c, k, dxmode ? ", dx = W^T * dy (packed)" : "");
  if (dxmode) {
    ig_open(c, dxmode);
    W(c, "static cnn_real %s_l%d_dxl[%ld] CNN_ALIGNED;\n", P, k, lanes * xs);
    ig_close(c, dxmode);
  }
  emit_each_width(c, k, lanes_backward);
  emit_dispatch(c, k, "backward", 0);
  ig_close(c, bwmode);
}

// Conv layer k: forward and backward, on the direct kernels or as GEMMs.
static void conv_emit(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int G = l->groups, IC = l->in.c, OC = l->out.c, ICg = IC / G, OCg = OC / G;
  int KK = ICg * l->kh * l->kw, NP = l->out.h * l->out.w;
  int ib = c->ibuf[k], ob = c->buf[k + 1];
  int dxmode = c->gmode[l->src];
  int bwmode = c->gmode[k + 1];
  layer_comment(c, k);
  if (conv_lanes(l, c->gsize)) {
    conv_emit_lanes(c, k);
    return;
  }
  if (conv_is_direct(l)) {
    conv_emit_direct(c, k);
    return;
  }
  // im2col + GEMM. Group offsets of the weights, the unfolded input, the output.
  char gw[32], gx[32], gy[32];
  snprintf(gw, sizeof gw, "%d", OCg * KK);
  snprintf(gx, sizeof gx, "%d", KK * NP);
  snprintf(gy, sizeof gy, "%d", OCg * NP);
  W(c, "// Path: %s.\n", conv_path(l, c->gsize));
  emit_im2col(c, k, 0);
  if (dxmode) {
    ig_open(c, dxmode);
    emit_im2col(c, k, 1);
    ig_close(c, dxmode);
  }
  // forward
  if (G == 1)
    W(c, "// y[%d][%d] = W[%d][%d] * x unfolded%s.\n", OC, NP, OC, KK, l->bias ? " + b" : "");
  else
    W(c, "// For each of %d groups: y[%d][%d] = W[%d][%d] * x unfolded%s.\n", G, OCg, NP, OCg, KK,
      l->bias ? " + b" : "");
  int stats = conv_stats(c, k);
  forward_decls(c, k, stats);
  forward_head(c, k, 0);
  group_begin(c);
  W(c, "    cnn_real *restrict col = %s_col[g];\n", P);
  forward_images(c, k);
  W(c, "      %s_l%d_im2col(x, col);\n", P, k);
  emit_gemm(c, G, "      ", "CblasNoTrans, CblasNoTrans", gw, gx, gy, OCg, NP, KK, "w", KK, "col", NP, "0", "y", NP);
  if (l->bias)
    W(c, "      for (int o = 0; o < %d; o++)\n        for (int p = 0; p < %d; p++)\n          y[o * %d + p] += b[o];\n",
      OC, NP, NP);
  forward_end(c, k, stats);
  if (!bwmode)
    return;
  ig_open(c, bwmode);
  backward_head(c, k, dxmode ? ", dx = W^T * dy" : "");
  W(c, "CNN_CLONES static void %s_l%d_conv_backward(int n) {\n", P, k);
  if (dxmode) {
    ig_open(c, dxmode);
    W(c, "  const cnn_real *restrict w = %s_params + %ld;\n", P, (long)l->param_off);
    ig_close(c, dxmode);
  }
  group_begin(c);
  W(c, "    cnn_real *restrict dw = %s_l%d_dw[g];\n", P, k);
  if (l->bias)
    W(c, "    cnn_real *restrict db = %s_l%d_db[g];\n", P, k);
  W(c, "    cnn_real *restrict col = %s_col[g];\n", P);
  if (dxmode) {
    ig_open(c, dxmode);
    W(c, "    cnn_real *restrict dcol = %s_dcol[g];\n", P);
    ig_close(c, dxmode);
  }
  images_begin(c);
  W(c, "      const int first = i == g * GSIZE;\n");
  W(c, "      const cnn_real *restrict x = %s_a%d + (size_t)i * %ld;\n", P, ib, c->isize[k]);
  W(c, "      const cnn_real *restrict dy = %s_d%d + (size_t)i * %ld;\n", P, ob, c->tsize[k + 1]);
  W(c, "      %s_l%d_im2col(x, col);\n", P, k);
  emit_gemm(c, G, "      ", "CblasNoTrans, CblasTrans", gy, gx, gw, OCg, KK, NP, "dy", NP, "col", NP, "first ? 0 : 1",
            "dw", KK);
  if (l->bias)
    emit_bias_grad(c, l);
  if (dxmode) {
    ig_open(c, dxmode);
    W(c, "      cnn_real *restrict dx = %s + (size_t)i * %ld;\n", c->dx[k], c->isize[k]);
    emit_gemm(c, G, "      ", "CblasTrans, CblasNoTrans", gw, gy, gx, KK, NP, OCg, "w", KK, "dy", NP, "0", "dcol", NP);
    W(c, "      for (int q = 0; q < %ld; q++)\n        dx[q] = 0;\n", c->isize[k]);
    W(c, "      %s_l%d_col2im(dcol, dx);\n", P, k);
    ig_close(c, dxmode);
  }
  backward_tail(c, k, NULL);
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
  t[1] = (LayerTensor){"bias", false, conv_weights(l), 1, {l->out.c}};
  return l->bias ? 2 : 1;
}

const LayerDef layer_conv = {
    .name = "conv", .params = conv_params, .n_params = 6,
    .args = conv_args, .shape = conv_shape, .costs = conv_costs, .transform = conv_transform, .window = true,
    .fn = "conv", .emit_train = conv_emit, .emit_init = conv_init, .col_size = conv_col_size,
    .read_slack = conv_slack, .train_path = conv_path,
    .lower = conv_lower,
    .torch = conv_torch, .torch_in = 4, .tensors = conv_tensors,
};
