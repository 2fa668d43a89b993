// emit_infer.c: writes standalone C99 inference code for one image — const
// weight tables (flash), one static arena (RAM) of row rings, no malloc,
// stdio or libm. Float (NAME_infer.{h,c}) or int8 (NAME_infer_int8.{h,c}).
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_ckpt.h"
#include "emit.h"
#include "emit_util.h"
#include "idx.h"
#include "infer_plan.h"
#include "quant.h"

#define CALIB_DEFAULT 1000

// Everything the writers share for one output file.
typedef struct Gen {
  FILE *f;
  const Net *net;
  const InferPlan *p;
  const char *pre;   // function prefix: "NAME_" or "NAME_int8_"
  char up[128];      // NAME in capitals, for macros
} Gen;

// Writes indented formatted text.
static void out(Gen *g, int ind, const char *fmt, ...) {
  va_list ap;
  fprintf(g->f, "%*s", 2 * ind, "");
  va_start(ap, fmt);
  vfprintf(g->f, fmt, ap);
  va_end(ap);
}

// A float (or a double printed to a float's precision) as a C float literal
// that reads back to the same float.
static void put_float(FILE *f, double v) {
  char buf[40];
  snprintf(buf, sizeof buf, "%.9g", v);
  if (!strpbrk(buf, ".e"))
    strcat(buf, ".0");
  fprintf(f, "%sf", buf);
}

// Writes one constant table, ten values a line.
static void table(Gen *g, const char *type, const char *name, size_t n, const float *fv,
                  const int8_t *bv, const int32_t *iv) {
  fprintf(g->f, "static const %s %s[%zu] = {", type, name, n);
  for (size_t j = 0; j < n; j++) {
    fputs(j % 10 ? " " : "\n  ", g->f);
    if (fv)
      put_float(g->f, fv[j]);
    else if (bv)
      fprintf(g->f, "%d", bv[j]);
    else if (iv[j] == INT32_MIN)
      fprintf(g->f, "(-2147483647 - 1)");
    else
      fprintf(g->f, "%ld", (long)iv[j]);
    if (j + 1 < n)
      fputc(',', g->f);
  }
  fprintf(g->f, "\n};\n");
}

// C type of op i's output values.
static const char *out_type(const InferPlan *p, int i) {
  const InferOp *op = &p->ops[i];
  if (!p->int8)
    return "float";
  return op->out_i32 ? "int32_t" : op->out_u8 ? "uint8_t" : "int8_t";
}

// C type of the values of op s's output, or the image's (s < 0).
static const char *src_type(const InferPlan *p, int s) {
  return s < 0 ? "uint8_t" : out_type(p, s);
}

// C type of op i's input values.
static const char *in_type(const InferPlan *p, int i) {
  return src_type(p, p->ops[i].src);
}

// Pointer expression to the start of op i's ring.
static void ring_ptr(Gen *g, char *buf, size_t n, int i) {
  const InferOp *op = &g->p->ops[i];
  if (g->p->int8)
    snprintf(buf, n, "(%s *)((uint8_t *)arena + %ld)", out_type(g->p, i), op->off);
  else
    snprintf(buf, n, "(arena + %ld)", op->off / 4);
}

// Pointer expression to row `row` of op s's output (a ring slot), or of the
// image (s < 0).
static void src_row(Gen *g, char *buf, size_t n, int s, const char *row) {
  if (s < 0) {
    snprintf(buf, n, "img + (%s) * %ld", row, (long)g->net->input.w * g->net->input.c);
    return;
  }
  const InferOp *src = &g->p->ops[s];
  char rp[128];
  ring_ptr(g, rp, sizeof rp, s);
  if (src->rows == 1)
    snprintf(buf, n, "%s", rp);
  else if (src->rows == src->out.h)
    snprintf(buf, n, "%s + (%s) * %ld", rp, row, src->row_len);
  else
    snprintf(buf, n, "%s + ((%s) %% %d) * %ld", rp, row, src->rows, src->row_len);
}

// Pointer expression to input row `row` of op i.
static void in_row(Gen *g, char *buf, size_t n, int i, const char *row) {
  src_row(g, buf, n, g->p->ops[i].src, row);
}

// The declaration of op i's output row pointer `out` for row y.
static void out_row(Gen *g, int i, const char *qual) {
  const InferOp *op = &g->p->ops[i];
  char rp[128];
  ring_ptr(g, rp, sizeof rp, i);
  const char *ot = out_type(g->p, i);
  if (op->rows == 1)
    out(g, 1, "%s *%sout = %s;\n", ot, qual, rp);
  else if (op->rows == op->out.h)
    out(g, 1, "%s *%sout = %s + y * %ld;\n", ot, qual, rp, op->row_len);
  else
    out(g, 1, "%s *%sout = %s + (y %% %d) * %ld;\n", ot, qual, rp, op->rows, op->row_len);
}

// "v * stride + kv - pad" without the * 1 and - 0 (a static buffer).
static const char *tap(const char *v, const char *kv, int stride, int pad) {
  static char buf[64];
  char st[16] = "", pd[16] = "";
  if (stride != 1)
    snprintf(st, sizeof st, " * %d", stride);
  if (pad)
    snprintf(pd, sizeof pd, " - %d", pad);
  snprintf(buf, sizeof buf, "%s%s + %s%s", v, st, kv, pd);
  return buf;
}

// The value clamp of an int8 op's output type (ReLU raises the floor to 0).
static void clamp_range(const InferPlan *p, int i, int *lo, int *hi) {
  const InferOp *op = &p->ops[i];
  *lo = op->out_u8 || op->relu ? 0 : -127;
  *hi = op->out_u8 ? 255 : 127;
}

// Whether op i's window can reach past the input's rows, or its columns.
static bool pads_rows(const InferOp *op) {
  return op->pt || op->pb;
}
static bool pads_cols(const InferOp *op) {
  return op->pl || op->pr;
}

// "3x3/1 pad 1" or "10x4/2x2 pad 4,5,1,2" (top, bottom, left, right).
static void window_text(const InferOp *op, char *buf, size_t n) {
  char st[16];
  if (op->sh == op->sw)
    snprintf(st, sizeof st, "%d", op->sh);
  else
    snprintf(st, sizeof st, "%dx%d", op->sh, op->sw);
  if (op->pt == op->pb && op->pt == op->pl && op->pt == op->pr && (op->pt || op->kind == IOP_CONV))
    snprintf(buf, n, "%dx%d/%s pad %d", op->kh, op->kw, st, op->pt);
  else if (!pads_rows(op) && !pads_cols(op))
    snprintf(buf, n, "%dx%d/%s", op->kh, op->kw, st);
  else
    snprintf(buf, n, "%dx%d/%s pad %d,%d,%d,%d", op->kh, op->kw, st, op->pt, op->pb, op->pl, op->pr);
}

// The start of a conv's row function, shared by both kernels: its comment
// (plus note), signature, output row pointer and input row pointers.
static void emit_conv_prologue(Gen *g, int i, const char *note) {
  const InferOp *op = &g->p->ops[i];
  const char *it = in_type(g->p, i);
  int KH = op->kh, IC = op->in.c, OC = op->out.c;
  char row[256], iy[64], win[64], grp[32] = "";
  snprintf(iy, sizeof iy, "%s", tap("y", "ky", op->sh, op->pt));
  in_row(g, row, sizeof row, i, "iy");
  window_text(op, win, sizeof win);
  if (op->groups > 1)
    snprintf(grp, sizeof grp, ", %d groups", op->groups);
  out(g, 0, "/* op %d: %s %s%s, %dx%dx%d -> %dx%dx%d%s; keeps %d of %d rows%s */\n", i + 1,
      op->dense ? "dense (a conv over the whole map)" : "conv",
      win, grp, op->in.h, op->in.w, IC, op->out.h, op->out.w, OC, op->relu ? ", ReLU" : "", op->rows,
      op->out.h, note);
  out(g, 0, "%sstatic void op%d(%sint y) {\n", *note ? "" : "CNN_CLONES ", i + 1,
      op->src < 0 ? "const uint8_t *img, " : "");
  out_row(g, i, "restrict ");
  bool uses_y = op->rows != 1 || pads_rows(op) || strstr(row, "iy");
  if (!uses_y)
    out(g, 1, "(void)y; /* one-row rings in and out: every row uses the same slots */\n");
  // The input rows of the kernel, once per output row (NULL: a padded row).
  out(g, 1, "const %s *rows[%d];\n", it, KH);
  out(g, 1, "for (int ky = 0; ky < %d; ky++) {\n", KH);
  if (strstr(row, "iy") || pads_rows(op))
    out(g, 2, "int iy = %s;\n", iy);
  if (pads_rows(op))
    out(g, 2, "rows[ky] = iy < 0 || iy >= %d ? 0 : %s;\n", op->in.h, row);
  else
    out(g, 2, "rows[ky] = %s;\n", row);
  out(g, 1, "}\n");
}

// Row function of a conv: output row y from the rows of its input. The
// weights are laid out [ky][kx][ic/groups][oc], so the innermost loop runs
// over the output channels with unit stride and a constant trip count,
// accumulating all channels of one output pixel in a local array (which gcc
// vectorizes); the input row pointers are computed once per call, not per
// element. Each output still sums its taps in (ky, kx, ic) order, as the
// reference does. A depthwise conv (one input channel per output channel)
// pairs w[o] with input channel o, again unit stride over o.
static void emit_conv(Gen *g, int i) {
  const InferOp *op = &g->p->ops[i];
  const char *acc_t = g->p->int8 ? "int32_t" : "float", *w_t = g->p->int8 ? "int8_t" : "float";
  const char *ot = out_type(g->p, i), *it = in_type(g->p, i);
  int KH = op->kh, KW = op->kw, IC = op->in.c, OC = op->out.c, G = op->groups;
  int icg = IC / G, ocg = OC / G;
  bool padded = pads_rows(op) || pads_cols(op);
  emit_conv_prologue(g, i, "");
  // XB output pixels at once (valid ungrouped convs; XB divides the row
  // width, <= 4): independent sums to overlap, and one weight load serves
  // XB MACs.
  int XB = 1;
  for (int b = 4; b > 1 && !padded && G == 1; b--)
    if (op->out.w % b == 0) {
      XB = b;
      break;
    }
  out(g, 1, "for (int x = 0; x < %d; x += %d) {\n", op->out.w, XB);
  out(g, 2, "%s acc[%d][%d];\n", acc_t, XB, OC);
  out(g, 2, "for (int p = 0; p < %d; p++)\n", XB);
  out(g, 3, "for (int o = 0; o < %d; o++)\n", OC);
  out(g, 4, "acc[p][o] = op%d_b[o];\n", i + 1);
  out(g, 2, "for (int ky = 0; ky < %d; ky++) {\n", KH);
  out(g, 3, "const %s *restrict w = op%d_w + ky * %d;\n", w_t, i + 1, KW * icg * OC);
  if (!padded && G == 1) {
    // Valid conv: one contiguous run of kw*ic inputs per kernel row.
    out(g, 3, "const %s *restrict px = rows[ky] + x * %d;\n", it, op->sw * IC);
    // U taps per pass over acc: one load and store of acc per U MACs; the
    // sum stays left to right, so each output rounds exactly as before.
    int U = 1;
    for (int u = 8; u > 1; u--)
      if ((KW * IC) % u == 0) {
        U = u;
        break;
      }
    out(g, 3, "for (int j = 0; j < %d; j += %d, w += %d) {\n", KW * IC, U, U * OC);
    for (int b = 0; b < XB; b++)
      for (int u = 0; u < U; u++)
        out(g, 4, "%s v%d_%d = px[j + %d];\n", acc_t, b, u, b * op->sw * IC + u);
    out(g, 4, "for (int o = 0; o < %d; o++) {\n", OC);
    for (int b = 0; b < XB; b++) {
      out(g, 5, "acc[%d][o] = acc[%d][o]", b, b);
      for (int u = 0; u < U; u++)
        if (u)
          fprintf(g->f, " + w[%d + o] * v%d_%d", u * OC, b, u);
        else
          fprintf(g->f, " + w[o] * v%d_0", b);
      fprintf(g->f, ";\n");
    }
    out(g, 4, "}\n");
    out(g, 3, "}\n");
  } else {
    // Padded taps hold 0 — or, for the image, the pixel that normalizes to 0.
    char pad[48] = "0";
    if (op->src < 0 && g->p->int8)
      snprintf(pad, sizeof pad, "%ld", lround(g->p->in_pad));
    else if (op->src < 0)
      snprintf(pad, sizeof pad, "%.9gf", g->p->in_pad);
    bool zero = strcmp(pad, "0") == 0 || strcmp(pad, "0f") == 0 || !padded;
    out(g, 3, "for (int kx = 0; kx < %d; kx++, w += %d) {\n", KW, icg * OC);
    out(g, 4, "int ix = %s;\n", tap("x", "kx", op->sw, op->pl));
    const char *v = "rows[ky][ix * %d + %s]";
    if (padded && zero) {
      out(g, 4, "if (%six < 0 || ix >= %d)\n", pads_rows(op) ? "!rows[ky] || " : "", op->in.w);
      out(g, 5, "continue;\n");
    } else if (padded) {
      out(g, 4, "int in = rows[ky] && ix >= 0 && ix < %d;\n", op->in.w);
      v = "(in ? (%s)rows[ky][ix * %d + %s] : %s)";
    }
    char val[160];
    if (icg == 1 && ocg == 1) {
      // Depthwise: output channel o reads input channel o.
      if (zero)
        snprintf(val, sizeof val, v, IC, "o");
      else
        snprintf(val, sizeof val, v, acc_t, IC, "o", pad);
      out(g, 4, "for (int o = 0; o < %d; o++)\n", OC);
      out(g, 5, "acc[0][o] += w[o] * %s;\n", val);
    } else {
      char ch[48];
      snprintf(ch, sizeof ch, G > 1 ? "gr * %d + c" : "c", icg);
      if (zero)
        snprintf(val, sizeof val, v, IC, ch);
      else
        snprintf(val, sizeof val, v, acc_t, IC, ch, pad);
      int ind = 4;
      if (G > 1)
        out(g, ind++, "for (int gr = 0; gr < %d; gr++)\n", G);
      out(g, ind, "for (int c = 0; c < %d; c++) {\n", icg);
      out(g, ind + 1, "%s v = %s;\n", acc_t, val);
      if (G > 1) {
        out(g, ind + 1, "for (int o = gr * %d; o < gr * %d + %d; o++)\n", ocg, ocg, ocg);
        out(g, ind + 2, "acc[0][o] += w[c * %d + o] * v;\n", OC);
      } else {
        out(g, ind + 1, "for (int o = 0; o < %d; o++)\n", OC);
        out(g, ind + 2, "acc[0][o] += w[c * %d + o] * v;\n", OC);
      }
      out(g, ind, "}\n");
    }
    out(g, 3, "}\n");
  }
  out(g, 2, "}\n");
  out(g, 2, "for (int p = 0; p < %d; p++)\n", XB);
  out(g, 3, "for (int o = 0; o < %d; o++)\n", OC);
  if (!g->p->int8)
    out(g, 4, "out[(x + p) * %d + o] = %s;\n", OC,
        op->relu ? "acc[p][o] > 0.0f ? acc[p][o] : 0.0f" : "acc[p][o]");
  else if (op->out_i32)
    out(g, 4, "out[(x + p) * %d + o] = acc[p][o];\n", OC);
  else {
    int lo, hi;
    clamp_range(g->p, i, &lo, &hi);
    out(g, 4, "out[(x + p) * %d + o] = (%s)rq(acc[p][o], op%d_m[o], op%d_s[o], %d, %d);\n", OC, ot, i + 1,
        i + 1, lo, hi);
  }
  out(g, 1, "}\n");
  out(g, 0, "}\n\n");
}

// DSP int8 convs (Cortex-M4/M7/M33, __ARM_FEATURE_DSP). A conv's receptive
// field of T = kh*kw*ic taps, in (ky, kx, ic) order, is cut into Q = T/4
// groups of 4 taps and R = T%4 tail taps. The weights are packed by
// dsp_pack: per pair of output channels, per group, one word of each
// channel (its 4 taps, byte j = tap j); the tail taps go to a byte table.
// SXTB16 of a word gives taps 0 and 2 as two halfwords, SXTB16 of it rotated
// by 8 taps 1 and 3; the im2col buffer holds the input the same way (UXTB16
// of 4 input bytes and of them rotated), so SMLAD pairs them with no
// shuffle. Per group the buffer holds pixel 0's two words, then pixel 1's:
// one kernel step is 2 channels x 2 pixels x 4 taps = 8 SMLADs.

// Whether op's shifts are those where the one-SMLAL requantization of the
// DSP kernels equals rq() (or it keeps int32 sums).
static bool dsp_shifts_ok(const InferOp *op) {
  for (int o = 0; !op->out_i32 && o < op->out.c; o++)
    if (op->shift[o] < 33 || op->shift[o] > 63)
      return false;
  return true;
}

// Whether op i runs the DSP kernel: int8, even channel count, at least one
// tap group, and shifts where the one-SMLAL requantization equals rq().
static bool dsp_conv(const InferPlan *p, int i) {
  const InferOp *op = &p->ops[i];
  if (!p->int8 || op->kind != IOP_CONV || op->groups != 1 || op->out.c % 2 || op->kh * op->kw * op->in.c < 4)
    return false;
  return dsp_shifts_ok(op);
}

// Whether op i runs the DSP depthwise kernel: int8, one input channel per
// output channel, whole words of 4 channels, not reading the image (whose
// alignment is unknown).
static bool dsp_dwconv(const InferPlan *p, int i) {
  const InferOp *op = &p->ops[i];
  if (!p->int8 || op->kind != IOP_CONV || op->groups != op->in.c || op->out.c != op->in.c ||
      op->in.c % 4 || op->src < 0)
    return false;
  return dsp_shifts_ok(op);
}

// Packs op's int8 weights ([oc][ky][kx][ic]) into the DSP kernel's words
// (*words, oc*Q) and tail bytes (*tail, oc*R, NULL when R = 0).
static void dsp_pack(const InferOp *op, uint32_t **words, int8_t **tail) {
  int OC = op->out.c, T = op->kh * op->kw * op->in.c, Q = T / 4, R = T % 4;
  *words = malloc(sizeof **words * (size_t)OC * Q);
  *tail = R ? malloc((size_t)OC * R) : NULL;
  if (!*words || (R && !*tail)) {
    fprintf(stderr, "cnnc: error: out of memory\n");
    exit(1);
  }
  for (int o = 0; o < OC; o++) {
    const int8_t *w = op->wq + (size_t)o * T;
    for (int q = 0; q < Q; q++) {
      uint32_t v = 0;
      for (int j = 0; j < 4; j++)
        v |= (uint32_t)(uint8_t)w[4 * q + j] << (8 * j);
      (*words)[(size_t)(o / 2) * 2 * Q + 2 * q + o % 2] = v;
    }
    for (int j = 0; j < R; j++)
      (*tail)[(size_t)o * R + j] = w[4 * Q + j];
  }
}

// One kernel step (4 taps of channels a, b times pixel 0, and pixel 1 when
// two): a use of the step macro that emit_dsp_macros defines.
static void emit_dsp_step(Gen *g, int ind, bool two, const char *col) {
  if (two)
    out(g, ind, "CNN_STEP2(w, %s, a0, a1, b0, b1);\n", col);
  else
    out(g, ind, "CNN_STEP1(w, %s, a0, b0);\n", col);
}

// The first lines of CNN_STEP2 (two pixels) or CNN_STEP1, either version.
static void step_head(Gen *g, int two) {
  if (two)
    out(g, 0, "#define CNN_STEP2(w, c, a0, a1, b0, b1) \\\n");
  else
    out(g, 0, "#define CNN_STEP1(w, c, a0, b0) \\\n");
  out(g, 1, "do { \\\n");
}

// The step macros: w and col advance by one group (2 words, 4 words). On
// gcc/clang for Thumb-2 the step is written in assembly, because gcc splits
// its LDRDs into LDRs and spills in the loop (37 instructions per 32 MACs
// instead of 32; A32 would need even register pairs for LDRD); elsewhere
// (other compilers, a test's emulated intrinsics) the same in C.
static void emit_dsp_macros(Gen *g) {
  static const char *const pix[2][5] = {
      {"ldrd %[X0], %[X1], [%[C]], #16", "smlad %[A0], %[T0], %[X0], %[A0]",
       "smlad %[A0], %[T2], %[X1], %[A0]", "smlad %[B0], %[T1], %[X0], %[B0]",
       "smlad %[B0], %[T3], %[X1], %[B0]"},
      {"ldrd %[X0], %[X1], [%[C], #-8]", "smlad %[A1], %[T0], %[X0], %[A1]",
       "smlad %[A1], %[T2], %[X1], %[A1]", "smlad %[B1], %[T1], %[X0], %[B1]",
       "smlad %[B1], %[T3], %[X1], %[B1]"}};
  out(g, 0, "#if defined(__GNUC__) && defined(__thumb2__)\n");
  for (int two = 1; two >= 0; two--) {
    step_head(g, two);
    out(g, 2, "int32_t t0_, t1_, t2_, t3_, x0_, x1_; \\\n");
    out(g, 2, "__asm__(\"ldrd %%[T0], %%[T1], [%%[W]], #8\\n\\t\" \\\n");
    out(g, 2, "        \"sxtb16 %%[T2], %%[T0], ror #8\\n\\t\" \\\n");
    out(g, 2, "        \"sxtb16 %%[T0], %%[T0]\\n\\t\" \\\n");
    out(g, 2, "        \"sxtb16 %%[T3], %%[T1], ror #8\\n\\t\" \\\n");
    out(g, 2, "        \"sxtb16 %%[T1], %%[T1]\\n\\t\" \\\n");
    for (int p = 0; p <= two; p++)
      for (int k = 0; k < 5; k++)
        out(g, 2, "        \"%s%s\" \\\n", pix[p][k], p == two && k == 4 ? "" : "\\n\\t");
    out(g, 2, "        : [A0] \"+r\"(a0), %s[B0] \"+r\"(b0), %s[W] \"+r\"(w), [C] \"+r\"(c), \\\n",
        two ? "[A1] \"+r\"(a1), " : "", two ? "[B1] \"+r\"(b1), " : "");
    out(g, 2, "          [T0] \"=&r\"(t0_), [T1] \"=&r\"(t1_), [T2] \"=&r\"(t2_), [T3] \"=&r\"(t3_), \\\n");
    out(g, 2, "          [X0] \"=&r\"(x0_), [X1] \"=&r\"(x1_) \\\n");
    out(g, 2, "        : \\\n");
    out(g, 2, "        : \"memory\"); \\\n");
    out(g, 1, "} while (0)\n");
  }
  out(g, 0, "#else\n");
  for (int two = 1; two >= 0; two--) {
    step_head(g, two);
    out(g, 2, "int32_t wa_ = (int32_t)(w)[0], wb_ = (int32_t)(w)[1]; \\\n");
    out(g, 2, "int32_t wa0_ = __sxtb16(wa_), wa1_ = cnn_sxtb16_ror8(wa_); \\\n");
    out(g, 2, "int32_t wb0_ = __sxtb16(wb_), wb1_ = cnn_sxtb16_ror8(wb_); \\\n");
    for (int p = 0; p <= two; p++) {
      out(g, 2, "(a%d) = __smlad(wa1_, (int32_t)(c)[%d], __smlad(wa0_, (int32_t)(c)[%d], (a%d))); \\\n",
          p, 2 * p + 1, 2 * p, p);
      out(g, 2, "(b%d) = __smlad(wb1_, (int32_t)(c)[%d], __smlad(wb0_, (int32_t)(c)[%d], (b%d))); \\\n",
          p, 2 * p + 1, 2 * p, p);
    }
    out(g, 2, "(w) += 2; \\\n");
    out(g, 2, "(c) += 4; \\\n");
    out(g, 1, "} while (0)\n");
  }
  out(g, 0, "#endif\n\n");
}

// Convs with at most this many 4-tap groups (and an even row) unroll them
// in their row function instead of calling the helper.
#define DSP_UNROLL_Q 3

// Output kinds of the DSP conv helper: rq() to uint8 (after ReLU), rq() to
// int8, or the raw int32 sums (the last op).
enum { DSP_U8, DSP_I8, DSP_I32, DSP_KINDS };

// The DSP kind of conv op i.
static int dsp_kind(const InferPlan *p, int i) {
  return p->ops[i].out_i32 ? DSP_I32 : p->ops[i].out_u8 ? DSP_U8 : DSP_I8;
}

// Declares m, sh and rnd, the requantization of channel idx of tables
// mtab/stab, for emit_dsp_store.
static void emit_dsp_mult(Gen *g, int ind, const char *mtab, const char *stab, const char *idx) {
  out(g, ind, "int32_t m = %s[%s];\n", mtab, idx);
  out(g, ind, "int sh = %s[%s];\n", stab, idx);
  out(g, ind, "int64_t rnd = (int64_t)(1u << (sh - 33)) << 32;\n");
}

// Stores "v" (rq() of it with m, rnd, sh in scope) to dst for output kind,
// under "if (cond)" when cond is not NULL.
static void emit_dsp_store(Gen *g, int ind, int kind, const char *dst, const char *v,
                           const char *cond) {
  if (kind == DSP_I32) {
    if (cond)
      out(g, ind++, "if (%s)\n", cond);
    out(g, ind, "%s = %s;\n", dst, v);
    return;
  }
  if (cond)
    out(g, ind, "if (%s) {\n", cond);
  else
    out(g, ind, "{\n");
  out(g, ind + 1, "int32_t v = (int32_t)(((int64_t)%s * m + rnd) >> 32) >> (sh - 32);\n", v);
  if (kind == DSP_U8)
    out(g, ind + 1, "%s = (uint8_t)__usat(v, 8);\n", dst);
  else
    out(g, ind + 1, "%s = (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);\n", dst);
  out(g, ind, "}\n");
}

// The helpers the DSP row functions share (inside #if CNN_DSP): the rotated
// extends, and per output kind used one conv helper that makes one or two
// pixels of every channel.
static void emit_dsp_helpers(Gen *g, bool need_u8, const bool *kinds) {
  out(g, 0, "/* SXTB16 of x rotated by 8 (bytes 1 and 3 as signed halfwords) in one\n"
            "   instruction: gcc would rotate first. Off ARM (a test's emulated\n"
            "   intrinsics), the same in C. */\n");
  out(g, 0, "static inline int32_t cnn_sxtb16_ror8(int32_t x) {\n");
  out(g, 0, "#if defined(__GNUC__) && defined(__arm__)\n");
  out(g, 1, "int32_t r;\n");
  out(g, 1, "__asm__(\"sxtb16 %%0, %%1, ror #8\" : \"=r\"(r) : \"r\"(x));\n");
  out(g, 1, "return r;\n");
  out(g, 0, "#else\n");
  out(g, 1, "return __sxtb16((int32_t)((uint32_t)x >> 8 | (uint32_t)x << 24));\n");
  out(g, 0, "#endif\n");
  out(g, 0, "}\n\n");
  if (need_u8) {
    out(g, 0, "/* The same for unsigned bytes (UXTB16). */\n");
    out(g, 0, "static inline uint32_t cnn_uxtb16_ror8(uint32_t x) {\n");
    out(g, 0, "#if defined(__GNUC__) && defined(__arm__)\n");
    out(g, 1, "uint32_t r;\n");
    out(g, 1, "__asm__(\"uxtb16 %%0, %%1, ror #8\" : \"=r\"(r) : \"r\"(x));\n");
    out(g, 1, "return r;\n");
    out(g, 0, "#else\n");
    out(g, 1, "return __uxtb16(x >> 8 | x << 24);\n");
    out(g, 0, "#endif\n");
    out(g, 0, "}\n\n");
  }
  emit_dsp_macros(g);
  static const char *const kname[DSP_KINDS] = {"u8", "i8", "i32"};
  static const char *const ktype[DSP_KINDS] = {"uint8_t", "int8_t", "int32_t"};
  for (int k = 0; k < DSP_KINDS; k++) {
    if (!kinds[k])
      continue;
    out(g, 0, "/* n (1 or 2) output pixels of a conv, all oc channels, as %s: per pair\n"
              "   of channels bias + q steps of 4 taps (w: a word of each channel; col0:\n"
              "   pixel 0's two words, pixel 1's) + r tail taps (wt, col0[4q + 2j + p])%s;\n"
              "   pixel 1 goes to out + ostride. */\n",
        kname[k], k == DSP_I32 ? "" : ",\n   requantized by rq() (one SMLAL: 33 <= shift <= 63)");
    out(g, 0, "static void cnn_conv_%s(const uint32_t *w, const int8_t *wt, const uint32_t *col0, int q,\n"
              "                        int r, int oc, int n, const int32_t *bias, const int32_t *mult,\n"
              "                        const int8_t *shift, %s *out, int ostride) {\n",
        kname[k], ktype[k]);
    if (k == DSP_I32)
      out(g, 1, "(void)mult;\n  (void)shift;\n");
    out(g, 1, "for (int o = 0; o < oc; o += 2) {\n");
    out(g, 2, "int32_t a0 = bias[o], a1 = a0, b0 = bias[o + 1], b1 = b0;\n");
    out(g, 2, "const uint32_t *col = col0;\n");
    out(g, 2, "if (n == 2) {\n");
    out(g, 3, "for (int k = q >> 1; k > 0; k--) {\n");
    emit_dsp_step(g, 4, true, "col");
    emit_dsp_step(g, 4, true, "col");
    out(g, 3, "}\n");
    out(g, 3, "if (q & 1)\n");
    emit_dsp_step(g, 4, true, "col");
    out(g, 2, "} else {\n");
    out(g, 3, "for (int k = 0; k < q; k++)\n");
    emit_dsp_step(g, 4, false, "col");
    out(g, 2, "}\n");
    out(g, 2, "for (int j = 0; j < r; j++) {\n");
    out(g, 3, "int32_t wa = wt[o * r + j], wb = wt[(o + 1) * r + j];\n");
    out(g, 3, "int32_t x0 = (int32_t)col[2 * j], x1 = (int32_t)col[2 * j + 1];\n");
    out(g, 3, "a0 += wa * x0;\n");
    out(g, 3, "a1 += wa * x1;\n");
    out(g, 3, "b0 += wb * x0;\n");
    out(g, 3, "b1 += wb * x1;\n");
    out(g, 2, "}\n");
    for (int h = 0; h < 2; h++) {
      char d0[32], d1[48];
      snprintf(d0, sizeof d0, "out[o%s]", h ? " + 1" : "");
      snprintf(d1, sizeof d1, "out[ostride + o%s]", h ? " + 1" : "");
      out(g, 2, "{\n");
      if (k != DSP_I32) {
        emit_dsp_mult(g, 3, "mult", "shift", h ? "o + 1" : "o");
      }
      emit_dsp_store(g, 3, k, d0, h ? "b0" : "a0", NULL);
      emit_dsp_store(g, 3, k, d1, h ? "b1" : "a1", "n == 2");
      out(g, 2, "}\n");
    }
    out(g, 1, "}\n");
    out(g, 0, "}\n\n");
  }
}

// Whether op i's im2col can copy words: ic a multiple of 4 and word-aligned
// input rows (the arena's; the image's alignment is unknown).
static bool dsp_fast_fill(const InferPlan *p, int i) {
  const InferOp *op = &p->ops[i];
  return op->src >= 0 && op->in.c % 4 == 0 && p->ops[op->src].row_len % 4 == 0;
}

// Stores the two extended halves of input word v to dst[a] and dst[a + 1].
static void emit_dsp_extend(Gen *g, int ind, bool sgn, const char *dst, const char *v) {
  if (sgn) {
    out(g, ind, "%s[0] = (uint32_t)__sxtb16((int32_t)%s);\n", dst, v);
    out(g, ind, "%s[1] = (uint32_t)cnn_sxtb16_ror8((int32_t)%s);\n", dst, v);
  } else {
    out(g, ind, "%s[0] = __uxtb16(%s);\n", dst, v);
    out(g, ind, "%s[1] = cnn_uxtb16_ror8(%s);\n", dst, v);
  }
}

// Row function of a conv on the DSP extension: per pair of output pixels,
// im2col of both into col (int16 pairs), then per pair of channels one
// kernel call, the tail taps, and the requantization of the 4 sums.
static void emit_conv_dsp(Gen *g, int i) {
  const InferOp *op = &g->p->ops[i];
  const char *it = in_type(g->p, i);
  int KH = op->kh, KW = op->kw, S = op->sw, P = op->pl, IC = op->in.c, OC = op->out.c;
  int W = op->out.w, T = KH * KW * IC, Q = T / 4, R = T % 4;
  bool padded = pads_rows(op) || pads_cols(op);
  bool sgn = strcmp(it, "int8_t") == 0;
  emit_conv_prologue(g, i, " (DSP: 2 channels x 2 pixels per step)");
  out(g, 1, "uint32_t col[%d]%s; /* im2col of two pixels, int16 pairs */\n", 4 * Q + 2 * R,
      W % 2 ? " = {0}" : "");
  out(g, 1, "for (int x = 0; x < %d; x += 2) {\n", W);
  if (W % 2)
    out(g, 2, "int n = x + 1 < %d ? 2 : 1; /* the last pixel of an odd row is alone */\n", W);
  else
    out(g, 2, "const int n = 2;\n");
  out(g, 2, "for (int p = 0; p < n; p++) {\n");
  if (dsp_fast_fill(g->p, i) && padded) {
    // Whole words per tap; a padded tap is a zero word pair.
    out(g, 3, "for (int ky = 0; ky < %d; ky++)\n", KH);
    out(g, 4, "for (int kx = 0; kx < %d; kx++) {\n", KW);
    out(g, 5, "int ix = %s;\n", tap("(x + p)", "kx", S, P));
    out(g, 5, "uint32_t *dst = col + (ky * %d + kx) * %d + 2 * p;\n", KW, IC);
    out(g, 5, "if (%six < 0 || ix >= %d) {\n", pads_rows(op) ? "!rows[ky] || " : "", op->in.w);
    out(g, 6, "for (int j = 0; j < %d; j++)\n", IC / 4);
    out(g, 7, "dst[4 * j] = dst[4 * j + 1] = 0;\n");
    out(g, 6, "continue;\n");
    out(g, 5, "}\n");
    out(g, 5, "const uint32_t *src = (const uint32_t *)(const void *)(rows[ky] + ix * %d);\n", IC);
    out(g, 5, "for (int j = 0; j < %d; j++) {\n", IC / 4);
    out(g, 6, "uint32_t v = src[j];\n");
    emit_dsp_extend(g, 6, sgn, "(dst + 4 * j)", "v");
    out(g, 5, "}\n");
    out(g, 4, "}\n");
  } else if (dsp_fast_fill(g->p, i)) {
    // Contiguous kw*ic bytes per kernel row, a whole number of words.
    out(g, 3, "for (int ky = 0; ky < %d; ky++) {\n", KH);
    out(g, 4, "const uint32_t *src = (const uint32_t *)(const void *)(rows[ky] + (x + p) * %d);\n",
        S * IC);
    out(g, 4, "uint32_t *dst = col + ky * %d + 2 * p;\n", KW * IC);
    // Unrolled by up to 4 words: constant offsets instead of a counter.
    int NJ = KW * IC / 4, U = NJ % 4 == 0 ? 4 : NJ % 2 == 0 ? 2 : 1;
    out(g, 4, "for (int j = 0; j < %d; j += %d) {\n", NJ, U);
    for (int u = 0; u < U; u++) {
      char v[16], d[32];
      snprintf(v, sizeof v, "v%d", u);
      snprintf(d, sizeof d, "(dst + 4 * j + %d)", 4 * u);
      out(g, 5, "uint32_t v%d = src[j + %d];\n", u, u);
      emit_dsp_extend(g, 5, sgn, d, v);
    }
    out(g, 4, "}\n");
    out(g, 3, "}\n");
  } else {
    // Tap by tap: padding, channel counts that are not whole words.
    char pad[24] = "0";
    if (op->src < 0)
      snprintf(pad, sizeof pad, "%ld", lround(g->p->in_pad));
    out(g, 3, "int32_t v[%d];\n", T);
    out(g, 3, "int t = 0;\n");
    out(g, 3, "for (int ky = 0; ky < %d; ky++)\n", KH);
    out(g, 4, "for (int kx = 0; kx < %d; kx++) {\n", KW);
    out(g, 5, "int ix = %s;\n", tap("(x + p)", "kx", S, P));
    if (padded)
      out(g, 5, "int in = rows[ky] && ix >= 0 && ix < %d;\n", op->in.w);
    out(g, 5, "for (int c = 0; c < %d; c++, t++)\n", IC);
    if (padded)
      out(g, 6, "v[t] = in ? rows[ky][ix * %d + c] : %s;\n", IC, pad);
    else
      out(g, 6, "v[t] = rows[ky][ix * %d + c];\n", IC);
    out(g, 4, "}\n");
    out(g, 3, "for (int q = 0; q < %d; q++) {\n", Q);
    out(g, 4, "col[4 * q + 2 * p] = (uint16_t)v[4 * q] | (uint32_t)(uint16_t)v[4 * q + 2] << 16;\n");
    out(g, 4, "col[4 * q + 2 * p + 1] = (uint16_t)v[4 * q + 1] | (uint32_t)(uint16_t)v[4 * q + 3] << 16;\n");
    out(g, 3, "}\n");
    for (int j = 0; j < R; j++)
      out(g, 3, "col[%d + p] = (uint32_t)v[%d];\n", 4 * Q + 2 * j, 4 * Q + j);
  }
  out(g, 2, "}\n");
  if (W % 2 == 0 && Q <= DSP_UNROLL_Q) {
    // Few taps: the helper's per-channel overhead would dominate, so the
    // channel loop is here with the Q steps unrolled and constant offsets.
    int kind = dsp_kind(g->p, i);
    out(g, 2, "const uint32_t *w = op%d_wp;\n", i + 1);
    out(g, 2, "for (int o = 0; o < %d; o += 2) {\n", OC);
    out(g, 3, "int32_t a0 = op%d_b[o], a1 = a0, b0 = op%d_b[o + 1], b1 = b0;\n", i + 1, i + 1);
    out(g, 3, "const uint32_t *c = col;\n");
    for (int q = 0; q < Q; q++)
      emit_dsp_step(g, 3, true, "c");
    for (int j = 0; j < R; j++) {
      out(g, 3, "{ /* tail tap %d */\n", 4 * Q + j);
      out(g, 4, "int32_t wa = op%d_wt[o * %d + %d], wb = op%d_wt[o * %d + %d];\n", i + 1, R, j,
          i + 1, R, R + j);
      out(g, 4, "int32_t x0 = (int32_t)c[%d], x1 = (int32_t)c[%d];\n", 2 * j, 2 * j + 1);
      out(g, 4, "a0 += wa * x0;\n");
      out(g, 4, "a1 += wa * x1;\n");
      out(g, 4, "b0 += wb * x0;\n");
      out(g, 4, "b1 += wb * x1;\n");
      out(g, 3, "}\n");
    }
    for (int h = 0; h < 2; h++) {
      char d0[48], d1[48];
      snprintf(d0, sizeof d0, "out[x * %d + o%s]", OC, h ? " + 1" : "");
      snprintf(d1, sizeof d1, "out[(x + 1) * %d + o%s]", OC, h ? " + 1" : "");
      out(g, 3, "{\n");
      if (kind != DSP_I32) {
        char mt[16], st[16];
        snprintf(mt, sizeof mt, "op%d_m", i + 1);
        snprintf(st, sizeof st, "op%d_s", i + 1);
        emit_dsp_mult(g, 4, mt, st, h ? "o + 1" : "o");
      }
      emit_dsp_store(g, 4, kind, d0, h ? "b0" : "a0", NULL);
      emit_dsp_store(g, 4, kind, d1, h ? "b1" : "a1", NULL);
      out(g, 3, "}\n");
    }
    out(g, 2, "}\n");
    out(g, 1, "}\n");
    out(g, 0, "}\n\n");
    return;
  }
  static const char *const kname[DSP_KINDS] = {"u8", "i8", "i32"};
  char wt[24] = "0";
  if (R)
    snprintf(wt, sizeof wt, "op%d_wt", i + 1);
  if (op->out_i32)
    out(g, 2, "cnn_conv_i32(op%d_wp, %s, col, %d, %d, %d, n, op%d_b, 0, 0, out + x * %d, %d);\n",
        i + 1, wt, Q, R, OC, i + 1, OC, OC);
  else
    out(g, 2, "cnn_conv_%s(op%d_wp, %s, col, %d, %d, %d, n, op%d_b, op%d_m, op%d_s, out + x * %d, %d);\n",
        kname[dsp_kind(g->p, i)], i + 1, wt, Q, R, OC, i + 1, i + 1, i + 1, OC, OC);
  out(g, 1, "}\n");
  out(g, 0, "}\n\n");
}

// Row function of a depthwise conv on the DSP extension. Per output pixel
// and word of 4 channels, each tap loads the 4 input bytes at once; UXTB16
// (SXTB16 for int8 input) splits them into channels 0, 2 and 1, 3 as
// halfwords, and SMLABB/SMLATT multiply each by its own channel's weight
// from a pre-extended pair (op_wd: per 4 channels, per tap, channels 0|2
// then 1|3 as int16 pairs): 4 MACs per load, no shuffles.
static void emit_dwconv_dsp(Gen *g, int i) {
  const InferOp *op = &g->p->ops[i];
  bool sgn = strcmp(in_type(g->p, i), "int8_t") == 0;
  int KH = op->kh, KW = op->kw, C = op->in.c, T = KH * KW, kind = dsp_kind(g->p, i);
  emit_conv_prologue(g, i, " (DSP: 4 channels per word)");
  out(g, 1, "for (int x = 0; x < %d; x++) {\n", op->out.w);
  out(g, 2, "for (int c = 0; c < %d; c += 4) {\n", C);
  out(g, 3, "int32_t a0 = op%d_b[c], a1 = op%d_b[c + 1], a2 = op%d_b[c + 2], a3 = op%d_b[c + 3];\n",
      i + 1, i + 1, i + 1, i + 1);
  out(g, 3, "const uint32_t *w = op%d_wd + c / 4 * %d;\n", i + 1, 2 * T);
  // The taps unrolled: constant offsets into the row and the weights.
  for (int ky = 0; ky < KH; ky++) {
    if (pads_rows(op))
      out(g, 3, "if (rows[%d]) { /* kernel row %d (a padded row adds nothing) */\n", ky, ky);
    else
      out(g, 3, "{ /* kernel row %d */\n", ky);
    out(g, 4, "const uint8_t *r = (const uint8_t *)rows[%d] + c;\n", ky);
    for (int kx = 0; kx < KW; kx++) {
      char kv[16];
      snprintf(kv, sizeof kv, "%d", kx);
      if (pads_cols(op))
        out(g, 4, "if ((unsigned)(%s) < %du) { /* inside the row */\n", tap("x", kv, op->sw, op->pl), op->in.w);
      else
        out(g, 4, "{\n");
      out(g, 5, "uint32_t v = *(const uint32_t *)(const void *)(r + (%s) * %d);\n", tap("x", kv, op->sw, op->pl), C);
      if (sgn)
        out(g, 5, "int32_t x02 = __sxtb16((int32_t)v), x13 = cnn_sxtb16_ror8((int32_t)v);\n");
      else
        out(g, 5, "int32_t x02 = (int32_t)__uxtb16(v), x13 = (int32_t)cnn_uxtb16_ror8(v);\n");
      int t = ky * KW + kx;
      out(g, 5, "a0 = __smlabb(x02, (int32_t)w[%d], a0);\n", 2 * t);
      out(g, 5, "a2 = __smlatt(x02, (int32_t)w[%d], a2);\n", 2 * t);
      out(g, 5, "a1 = __smlabb(x13, (int32_t)w[%d], a1);\n", 2 * t + 1);
      out(g, 5, "a3 = __smlatt(x13, (int32_t)w[%d], a3);\n", 2 * t + 1);
      out(g, 4, "}\n");
    }
    out(g, 3, "}\n");
  }
  for (int k = 0; k < 4; k++) {
    char d[48], v[16];
    snprintf(d, sizeof d, "out[x * %d + c + %d]", C, k);
    snprintf(v, sizeof v, "a%d", k);
    out(g, 3, "{\n");
    if (kind != DSP_I32) {
      char mt[16], st[16], ix[16];
      snprintf(mt, sizeof mt, "op%d_m", i + 1);
      snprintf(st, sizeof st, "op%d_s", i + 1);
      snprintf(ix, sizeof ix, "c + %d", k);
      emit_dsp_mult(g, 4, mt, st, ix);
    }
    emit_dsp_store(g, 4, kind, d, v, NULL);
    out(g, 3, "}\n");
  }
  out(g, 2, "}\n");
  out(g, 1, "}\n");
  out(g, 0, "}\n\n");
}

// Row function of a maxpool or an avgpool (the window's sum, scaled; for
// int8 requantized, or left as int32 sums when it is the last op).
static void emit_pool(Gen *g, int i) {
  const InferOp *op = &g->p->ops[i];
  const char *it = in_type(g->p, i), *ot = out_type(g->p, i);
  bool mx = op->kind == IOP_MAXPOOL;
  int KH = op->kh, KW = op->kw, C = op->out.c;
  char row[256], win[64];
  in_row(g, row, sizeof row, i, "iy");
  window_text(op, win, sizeof win);
  const char *acc_t = mx ? it : g->p->int8 ? "int32_t" : "float";
  const char *init = !mx ? "0" : !g->p->int8 ? "-3.402823466e38f" : strcmp(it, "uint8_t") == 0 ? "0" : "-128";
  out(g, 0, "/* op %d: %s %s, %dx%dx%d -> %dx%dx%d%s; keeps %d of %d rows */\n", i + 1,
      mx ? "maxpool" : "avgpool", win, op->in.h, op->in.w, C, op->out.h, op->out.w, C,
      op->relu ? ", ReLU" : "", op->rows, op->out.h);
  out(g, 0, "CNN_CLONES static void op%d(int y) {\n", i + 1);
  out_row(g, i, "");
  if (op->rows == 1 && !pads_rows(op) && !strstr(row, "iy"))
    out(g, 1, "(void)y; /* one-row rings in and out: every row uses the same slots */\n");
  out(g, 1, "for (int x = 0; x < %d; x++)\n", op->out.w);
  out(g, 2, "for (int c = 0; c < %d; c++) {\n", C);
  out(g, 3, "%s m = %s;\n", acc_t, init);
  out(g, 3, "for (int ky = 0; ky < %d; ky++) {\n", KH);
  if (pads_rows(op) || strstr(row, "iy")) // a one-row ring needs no row index
    out(g, 4, "int iy = %s;\n", tap("y", "ky", op->sh, op->pt));
  if (pads_rows(op)) {
    out(g, 4, "if (iy < 0 || iy >= %d)\n", op->in.h);
    out(g, 5, "continue;\n");
  }
  out(g, 4, "const %s *px = %s;\n", it, row);
  out(g, 4, "for (int kx = 0; kx < %d; kx++) {\n", KW);
  out(g, 5, "int ix = %s;\n", tap("x", "kx", op->sw, op->pl));
  if (pads_cols(op)) {
    out(g, 5, "if (ix < 0 || ix >= %d)\n", op->in.w);
    out(g, 6, "continue;\n");
  }
  if (mx) {
    out(g, 5, "if (px[ix * %d + c] > m)\n", C);
    out(g, 6, "m = px[ix * %d + c];\n", C);
  } else {
    out(g, 5, "m += px[ix * %d + c];\n", C);
  }
  out(g, 4, "}\n");
  out(g, 3, "}\n");
  if (!mx && !g->p->int8) {
    out(g, 3, "m *= ");
    put_float(g->f, 1.0 / (KH * KW));
    fprintf(g->f, ";\n");
  } else if (!mx && !op->out_i32) {
    int lo, hi;
    clamp_range(g->p, i, &lo, &hi);
    out(g, 3, "m = rq(m, %ld, %d, %d, %d);\n", (long)op->mult[0], op->shift[0], lo, hi);
  }
  char cast[24] = "";
  if (g->p->int8 && !mx && !op->out_i32)
    snprintf(cast, sizeof cast, "(%s)", ot);
  if (op->relu)
    out(g, 3, "out[x * %d + c] = %s(m > 0 ? m : 0);\n", C, cast);
  else
    out(g, 3, "out[x * %d + c] = %sm;\n", C, cast);
  out(g, 2, "}\n");
  out(g, 0, "}\n\n");
}

// Step g of a global average pool: adds input row g to the sums, and after
// the last row scales them into the output.
static void emit_gap(Gen *g, int i) {
  const InferOp *op = &g->p->ops[i];
  const InferOp *src = &g->p->ops[op->src];
  char rp[128], row[256];
  const char *at = g->p->int8 ? "int32_t" : "float";
  ring_ptr(g, rp, sizeof rp, i);
  in_row(g, row, sizeof row, i, "y");
  bool direct = !g->p->int8 || op->out_i32; // sum straight into the output
  int C = op->out.c;
  out(g, 0, "/* op %d: global average pool of %dx%dx%d%s, one input row per call */\n", i + 1,
      op->in.h, op->in.w, op->in.c, op->relu ? ", ReLU" : "");
  out(g, 0, "CNN_CLONES static void op%d(int y) {\n", i + 1);
  if (direct)
    out(g, 1, "%s *sum = %s;\n", at, rp);
  else
    out(g, 1, "int32_t *sum = (int32_t *)((uint8_t *)arena + %ld);\n", op->off + op->bytes - 4L * C);
  out(g, 1, "const %s *px = %s;\n", out_type(g->p, op->src), row);
  out(g, 1, "if (y == 0)\n");
  out(g, 2, "for (int c = 0; c < %d; c++)\n", C);
  out(g, 3, "sum[c] = 0;\n");
  out(g, 1, "for (int x = 0; x < %d; x++)\n", src->out.w);
  out(g, 2, "for (int c = 0; c < %d; c++)\n", C);
  out(g, 3, "sum[c] += px[x * %d + c];\n", C);
  out(g, 1, "if (y < %d)\n", op->in.h - 1);
  out(g, 2, "return;\n");
  if (!g->p->int8) {
    out(g, 1, "for (int c = 0; c < %d; c++)\n", C);
    // put_float: a 1x1 input's scale is 1.0f, not the invalid "1f".
    out(g, 2, op->relu ? "sum[c] = sum[c] > 0.0f ? sum[c] * " : "sum[c] = sum[c] * ");
    put_float(g->f, 1.0 / (op->in.h * op->in.w));
    fprintf(g->f, op->relu ? " : 0.0f;\n" : ";\n");
  } else if (op->out_i32) {
    if (op->relu) {
      out(g, 1, "for (int c = 0; c < %d; c++)\n", C);
      out(g, 2, "sum[c] = sum[c] > 0 ? sum[c] : 0;\n");
    }
  } else {
    int lo, hi;
    clamp_range(g->p, i, &lo, &hi);
    out(g, 1, "for (int c = 0; c < %d; c++)\n", C);
    out(g, 2, "(%s)[c] = (%s)rq(sum[c], %ld, %d, %d, %d);\n", rp, out_type(g->p, i),
        (long)op->mult[0], op->shift[0], lo, hi);
  }
  out(g, 0, "}\n\n");
}

// Row function of the add that ends a residual: row y of both inputs; for
// int8 both rescaled to the output's scale on one shift.
static void emit_add(Gen *g, int i) {
  const InferOp *op = &g->p->ops[i];
  char ra[256], rb[256];
  src_row(g, ra, sizeof ra, op->src, "y");
  src_row(g, rb, sizeof rb, op->src2, "y");
  out(g, 0, "/* op %d: add of ops %d and %d, %dx%dx%d%s; keeps %d of %d rows */\n", i + 1, op->src + 1,
      op->src2 + 1, op->out.h, op->out.w, op->out.c, op->relu ? ", ReLU" : "", op->rows, op->out.h);
  out(g, 0, "CNN_CLONES static void op%d(int y) {\n", i + 1);
  out_row(g, i, "restrict ");
  if (op->rows == 1 && !strstr(ra, "y)") && !strstr(rb, "y)"))
    out(g, 1, "(void)y; /* one-row rings in and out: every row uses the same slots */\n");
  out(g, 1, "const %s *restrict a = %s;\n", out_type(g->p, op->src), ra);
  out(g, 1, "const %s *restrict b = %s;\n", out_type(g->p, op->src2), rb);
  out(g, 1, "for (int j = 0; j < %ld; j++) {\n", op->row_len);
  if (!g->p->int8) {
    out(g, 2, "float v = a[j] + b[j];\n");
    out(g, 2, "out[j] = %s;\n", op->relu ? "v > 0.0f ? v : 0.0f" : "v");
  } else {
    int lo, hi;
    clamp_range(g->p, i, &lo, &hi);
    // Both products below 2^30 (quant.c): the sum fits an int32.
    out(g, 2, "int32_t v = ((int32_t)a[j] * %ld + (int32_t)b[j] * %ld + %ld) >> %d;\n", (long)op->add_m[0],
        (long)op->add_m[1], 1L << (op->add_shift - 1), op->add_shift);
    out(g, 2, "out[j] = (%s)(v < %d ? %d : v > %d ? %d : v);\n", out_type(g->p, i), lo, lo, hi, hi);
  }
  out(g, 1, "}\n");
  out(g, 0, "}\n\n");
}

// Runs the schedule the plan found: one call per step, in order; each op's
// rows exist before anything reads them and stay until the last reader is done.
static void emit_run(Gen *g) {
  const InferPlan *p = g->p;
  out(g, 0, "/* The order of the row calls (op numbers - 1), found by cnnc by pulling\n"
            "   rows from the last op: each op makes a row only once the rows it reads\n"
            "   exist, and before its ring slot is needed again. */\n");
  out(g, 0, "static const %s sched[%d] = {", p->n_ops > 255 ? "uint16_t" : "uint8_t", p->n_sched);
  for (int t = 0; t < p->n_sched; t++)
    fprintf(g->f, "%s%d%s", t % 20 ? " " : "\n  ", p->sched[t], t + 1 < p->n_sched ? "," : "");
  fprintf(g->f, "\n};\n\n");
  out(g, 0, "CNN_CLONES static void run(const uint8_t *img) {\n");
  out(g, 1, "int done[%d] = {0}; /* rows (steps) made by each op */\n", p->n_ops);
  out(g, 1, "for (int t = 0; t < %d; t++) {\n", p->n_sched);
  out(g, 2, "int i = sched[t];\n");
  out(g, 2, "CNN_PROF(i + 1, 0);\n");
  out(g, 2, "switch (i) {\n");
  for (int i = 0; i < p->n_ops; i++)
    out(g, 2, "case %d: op%d(%sdone[%d]); break;\n", i, i + 1, p->ops[i].src < 0 ? "img, " : "", i);
  out(g, 2, "default: break;\n");
  out(g, 2, "}\n");
  out(g, 2, "CNN_PROF(i + 1, 1);\n");
  out(g, 2, "done[i]++;\n");
  out(g, 1, "}\n");
  out(g, 0, "}\n\n");
}

// The header: API, sizes, and how the memory splits across layers.
static void emit_header(Gen *g, const char *guard) {
  const InferPlan *p = g->p;
  const Net *net = g->net;
  const char *mp = p->int8 ? "INT8_" : "";
  out(g, 0, "/* %s: generated by cnnc from network %s; do not edit.\n", guard, net->name);
  out(g, 0, " * %s inference of one image: C99, no malloc, no stdio, no libm.\n",
      p->int8 ? "int8 (post-training quantized)" : "Float");
  out(g, 0, " * Flash: %ld bytes of constant tables (weights%s), %ld of row schedule;\n"
            " * code comes on top.\n",
      p->flash_bytes, p->int8 ? ", int32 biases, requantization multipliers" : ", biases", p->sched_bytes);
  out(g, 0, " * RAM: %ld bytes, one static arena of row rings (plus a small stack).\n",
      p->arena_bytes);
  out(g, 0, " *\n *   op  layer(s)         output      rows kept  RAM bytes  flash bytes\n");
  for (int i = 0; i < p->n_ops; i++) {
    const InferOp *op = &p->ops[i];
    char lay[32];
    if (op->first == op->last)
      snprintf(lay, sizeof lay, "%d %s", op->first + 1, layer_kind_name(net->layers[op->first].kind));
    else
      snprintf(lay, sizeof lay, "%d-%d %s", op->first + 1, op->last + 1,
               layer_kind_name(net->layers[op->first].kind));
    out(g, 0, " *  %3d  %-15s %3dx%3dx%-4d %5d  %9ld  %11ld\n", i + 1, lay, op->out.h, op->out.w,
        op->out.c, op->rows, op->bytes, op->flash);
  }
  out(g, 0, " */\n");
  char G[160];
  snprintf(G, sizeof G, "%s_INFER%s_H", g->up, p->int8 ? "_INT8" : "");
  out(g, 0, "#ifndef %s\n#define %s\n\n#include <stdint.h>\n\n", G, G);
  const InferOp *first = &p->ops[0];
  out(g, 0, "#ifndef %s_IN_H\n", g->up);
  out(g, 0, "#define %s_IN_C %d\n#define %s_IN_H %d\n#define %s_IN_W %d\n#define %s_CLASSES %d\n",
      g->up, first->in.c, g->up, first->in.h, g->up, first->in.w, g->up, net->classes);
  out(g, 0, "#endif\n");
  out(g, 0, "#define %s_%sFLASH_BYTES %ld\n", g->up, mp, p->flash_bytes);
  out(g, 0, "#define %s_%sARENA_BYTES %ld\n\n", g->up, mp, p->arena_bytes);
  out(g, 0, "/* The class of one image: raw pixels 0..255, HWC order (the\n"
            "   normalization is folded into the first conv). */\n");
  out(g, 0, "int %spredict(const uint8_t image[%s_IN_H * %s_IN_W * %s_IN_C]);\n\n", g->pre, g->up,
      g->up, g->up);
  out(g, 0, "/* The logits (scores before log_softmax; argmax is the class). */\n");
  out(g, 0, "void %sscores(const uint8_t image[%s_IN_H * %s_IN_W * %s_IN_C], float scores[%s_CLASSES]);\n\n",
      g->pre, g->up, g->up, g->up, g->up);
  out(g, 0, "#ifdef CNN_PROFILE\n");
  out(g, 0, "/* Built with -DCNN_PROFILE, the inference calls this function, which the\n"
            "   program defines, before (end 0) and after (end 1) each piece of work of\n"
            "   op 1..%s_%sOPS, e.g. to read a cycle counter. */\n", g->up, mp);
  out(g, 0, "void %sprofile(int op, int end);\n", g->pre);
  out(g, 0, "#define %s_%sOPS %d\n", g->up, mp, p->n_ops);
  out(g, 0, "/* Per op: what it is, MACs, arena bytes, constant table bytes. */\n");
  out(g, 0, "#define %s_%sOP_INFO { \\\n", g->up, mp);
  for (int i = 0; i < p->n_ops; i++) {
    const InferOp *op = &p->ops[i];
    long macs = 0;
    char what[96];
    char win[64];
    window_text(op, win, sizeof win);
    if (op->kind == IOP_CONV) {
      macs = (long)op->out.h * op->out.w * op->out.c * (op->in.c / op->groups) * op->kh * op->kw;
      if (op->dense)
        snprintf(what, sizeof what, "dense %d->%d", op->in.c * op->in.h * op->in.w, op->out.c);
      else
        snprintf(what, sizeof what, "%s %s", op->groups == 1 ? "conv" : op->groups == op->in.c ? "dwconv" : "gconv",
                 win);
    } else if (op->kind == IOP_MAXPOOL || op->kind == IOP_AVGPOOL) {
      snprintf(what, sizeof what, "%s %s", op->kind == IOP_MAXPOOL ? "maxpool" : "avgpool", win);
    } else {
      snprintf(what, sizeof what, op->kind == IOP_GAP ? "gap" : "add");
    }
    out(g, 1, "{\"%s\", %ldL, %ldL, %ldL}%s \\\n", what, macs, op->bytes, op->flash,
        i + 1 < p->n_ops ? "," : "");
  }
  out(g, 0, "}\n#endif\n\n");
  out(g, 0, "#endif\n");
}

// The source: tables, arena, row functions, driver and API.
static void emit_source(Gen *g, const char *hname) {
  const InferPlan *p = g->p;
  const InferOp *lastop = &p->ops[p->n_ops - 1];
  int C = lastop->out.c;
  out(g, 0, "/* Generated by cnnc from network %s; do not edit. See %s. */\n", g->net->name, hname);
  out(g, 0, "#include \"%s\"\n\n", hname);
  out(g, 0, "/* On x86-64 ELF hosts (gcc, clang >= 14) the row functions are also built\n"
            "   for AVX-512 and AVX2 and picked when the program loads. Anywhere else\n"
            "   (a Cortex-M included) CNN_CLONES is empty; -DCNN_NO_CLONES turns it off. */\n");
  emit_clones_macro(g->f, "CNN_CLONES", "\"avx512f\", \"avx2\", \"default\"", NULL);
  out(g, 0, "\n");
  out(g, 0, "/* -DCNN_PROFILE: hooks around each op's work (see the header). */\n");
  out(g, 0, "#ifdef CNN_PROFILE\n#define CNN_PROF(op, end) %sprofile(op, end)\n#else\n"
            "#define CNN_PROF(op, end) ((void)0)\n#endif\n\n", g->pre);
  bool any_dsp = false, dsp_u8 = false, kinds[DSP_KINDS] = {false};
  for (int i = 0; i < p->n_ops; i++)
    if (dsp_dwconv(p, i)) {
      any_dsp = true;
      dsp_u8 |= strcmp(in_type(p, i), "int8_t") != 0;
    } else if (dsp_conv(p, i)) {
      any_dsp = true;
      dsp_u8 |= strcmp(in_type(p, i), "int8_t") != 0 && dsp_fast_fill(p, i);
      int T = p->ops[i].kh * p->ops[i].kw * p->ops[i].in.c;
      if (p->ops[i].out.w % 2 || T / 4 > DSP_UNROLL_Q) // else unrolled in its row function
        kinds[dsp_kind(p, i)] = true;
    }
  if (any_dsp)
    out(g, 0, "/* With the DSP extension (Cortex-M4, M7, M33...) the convs run SMLAD\n"
              "   kernels on weights packed for them; elsewhere the portable row\n"
              "   functions compute the same integers. */\n"
              "#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP\n"
              "#include <arm_acle.h>\n#define CNN_DSP 1\n#else\n#define CNN_DSP 0\n#endif\n\n");
  for (int i = 0; i < p->n_ops; i++) {
    const InferOp *op = &p->ops[i];
    if (op->kind != IOP_CONV)
      continue;
    char name[32];
    size_t nw = (size_t)op->out.c * (op->in.c / op->groups) * op->kh * op->kw;
    if (dsp_dwconv(p, i)) {
      int T = op->kh * op->kw;
      out(g, 0, "#if CNN_DSP\n");
      out(g, 0, "/* op %d: depthwise weights for the DSP kernel: per 4 channels, per tap, the\n"
                "   int16 pairs of channels 0|2 and 1|3 (low|high) */\n", i + 1);
      fprintf(g->f, "static const uint32_t op%d_wd[%zu] = {", i + 1, nw / 2);
      for (size_t j = 0; j < nw / 2; j++) {
        size_t c4 = j / (2 * T) * 4, t = j / 2 % T, odd = j % 2;
        uint32_t lo = (uint16_t)op->wq[(c4 + odd) * T + t], hi = (uint16_t)op->wq[(c4 + odd + 2) * T + t];
        fprintf(g->f, "%s0x%08lxu%s", j % 6 ? " " : "\n  ", (unsigned long)(lo | hi << 16), j + 1 < nw / 2 ? "," : "");
      }
      fprintf(g->f, "\n};\n");
      out(g, 0, "#else\n");
    } else if (dsp_conv(p, i)) {
      uint32_t *words;
      int8_t *tail;
      int T = op->kh * op->kw * op->in.c;
      dsp_pack(op, &words, &tail);
      out(g, 0, "#if CNN_DSP\n");
      out(g, 0, "/* op %d: conv weights for the DSP kernel: per pair of output channels, per\n"
                "   4 taps in (ky, kx, in) order, one word of each channel (tap j in byte j)%s */\n",
          i + 1, T % 4 ? "; the\n   last taps of each channel in op_wt" : "");
      snprintf(name, sizeof name, "op%d_wp", i + 1);
      fprintf(g->f, "static const uint32_t %s[%zu] = {", name, (size_t)op->out.c * (T / 4));
      for (size_t j = 0; j < (size_t)op->out.c * (T / 4); j++)
        fprintf(g->f, "%s0x%08lxu%s", j % 6 ? " " : "\n  ", (unsigned long)words[j],
                j + 1 < (size_t)op->out.c * (T / 4) ? "," : "");
      fprintf(g->f, "\n};\n");
      if (tail) {
        snprintf(name, sizeof name, "op%d_wt", i + 1);
        table(g, "int8_t", name, (size_t)op->out.c * (T % 4), NULL, tail, NULL);
      }
      free(words);
      free(tail);
      out(g, 0, "#else\n");
    }
    out(g, 0, "/* op %d: conv weights [%d][%d][%d][%d] (ky, kx, in%s, out)%s */\n", i + 1, op->kh,
        op->kw, op->in.c / op->groups, op->out.c, op->groups > 1 ? " of the group" : "",
        op->bn >= 0 ? ", BatchNorm folded in" : "");
    snprintf(name, sizeof name, "op%d_w", i + 1);
    // The plan holds [out][ky][kx][in]; the row functions read [ky][kx][in][out].
    size_t per = nw / (size_t)op->out.c;
    float *wf = p->int8 ? NULL : malloc(sizeof *wf * nw);
    int8_t *wq = p->int8 ? malloc(nw) : NULL;
    if (!wf && !wq) {
      fprintf(stderr, "cnnc: error: out of memory\n");
      exit(1);
    }
    for (size_t o = 0; o < (size_t)op->out.c; o++)
      for (size_t j = 0; j < per; j++) {
        if (wf)
          wf[j * op->out.c + o] = op->wf[o * per + j];
        else
          wq[j * op->out.c + o] = op->wq[o * per + j];
      }
    if (p->int8) {
      table(g, "int8_t", name, nw, NULL, wq, NULL);
      if (dsp_conv(p, i) || dsp_dwconv(p, i))
        out(g, 0, "#endif\n");
      snprintf(name, sizeof name, "op%d_b", i + 1);
      table(g, "int32_t", name, (size_t)op->out.c, NULL, NULL, op->bq);
      if (op->out_i32) {
        float *sc = malloc(sizeof *sc * op->out.c);
        for (int o = 0; sc && o < op->out.c; o++)
          sc[o] = (float)op->acc_scale[o];
        snprintf(name, sizeof name, "op%d_scale", i + 1);
        if (sc)
          table(g, "float", name, (size_t)op->out.c, sc, NULL, NULL);
        free(sc);
      } else {
        snprintf(name, sizeof name, "op%d_m", i + 1);
        table(g, "int32_t", name, (size_t)op->out.c, NULL, NULL, op->mult);
        snprintf(name, sizeof name, "op%d_s", i + 1);
        table(g, "int8_t", name, (size_t)op->out.c, NULL, op->shift, NULL);
      }
    } else {
      table(g, "float", name, nw, wf, NULL, NULL);
      snprintf(name, sizeof name, "op%d_b", i + 1);
      table(g, "float", name, (size_t)op->out.c, op->bf, NULL, NULL);
    }
    free(wf);
    free(wq);
    out(g, 0, "\n");
  }
  out(g, 0, "/* Every activation: one ring of rows per op, all live at once. */\n");
  if (p->int8)
    out(g, 0, "static int32_t arena[%ld];\n\n", p->arena_bytes / 4);
  else
    out(g, 0, "static float arena[%ld];\n\n", p->arena_bytes / 4);
  // rq() only where an op requantizes (clang warns of an unused one).
  bool requant = false;
  for (int i = 0; p->int8 && i < p->n_ops; i++)
    requant |= p->ops[i].kind != IOP_MAXPOOL && p->ops[i].kind != IOP_ADD && !p->ops[i].out_i32;
  if (requant) {
    out(g, 0, "/* acc * mult / 2^shift, rounded half up, clamped to [lo, hi]. */\n");
    out(g, 0, "static inline int32_t rq(int32_t acc, int32_t mult, int shift, int32_t lo, int32_t hi) {\n");
    out(g, 1, "int64_t v = ((int64_t)acc * mult + ((int64_t)1 << (shift - 1))) >> shift;\n");
    out(g, 1, "return v < lo ? lo : v > hi ? hi : (int32_t)v;\n");
    out(g, 0, "}\n\n");
  }
  if (any_dsp) {
    out(g, 0, "#if CNN_DSP\n");
    emit_dsp_helpers(g, dsp_u8, kinds);
    out(g, 0, "#endif\n\n");
  }
  for (int i = 0; i < p->n_ops; i++) {
    if (dsp_conv(p, i) || dsp_dwconv(p, i)) {
      out(g, 0, "#if CNN_DSP\n");
      if (dsp_dwconv(p, i))
        emit_dwconv_dsp(g, i);
      else
        emit_conv_dsp(g, i);
      out(g, 0, "#else\n");
      emit_conv(g, i);
      out(g, 0, "#endif\n\n");
    } else if (p->ops[i].kind == IOP_CONV)
      emit_conv(g, i);
    else if (p->ops[i].kind == IOP_MAXPOOL || p->ops[i].kind == IOP_AVGPOOL)
      emit_pool(g, i);
    else if (p->ops[i].kind == IOP_GAP)
      emit_gap(g, i);
    else
      emit_add(g, i);
  }
  emit_run(g);
  char rp[128];
  ring_ptr(g, rp, sizeof rp, p->n_ops - 1);
  const char *U = g->up;
  out(g, 0, "void %sscores(const uint8_t image[%s_IN_H * %s_IN_W * %s_IN_C], float scores[%s_CLASSES]) {\n",
      g->pre, U, U, U, U);
  out(g, 1, "const %s *last = %s;\n", out_type(p, p->n_ops - 1), rp);
  out(g, 1, "run(image);\n");
  out(g, 1, "for (int c = 0; c < %d; c++)\n", C);
  if (!p->int8)
    out(g, 2, "scores[c] = last[c];\n");
  else if (lastop->kind == IOP_CONV)
    out(g, 2, "scores[c] = (float)last[c] * op%d_scale[c];\n", p->n_ops);
  else {
    out(g, 2, "scores[c] = (float)last[c] * ");
    put_float(g->f, (float)(lastop->out_i32 ? lastop->acc_scale[0] : lastop->out_scale));
    fprintf(g->f, ";\n");
  }
  out(g, 0, "}\n\n");
  out(g, 0, "int %spredict(const uint8_t image[%s_IN_H * %s_IN_W * %s_IN_C]) {\n", g->pre, U, U, U);
  if (p->int8 && lastop->kind != IOP_CONV) {
    // One scale for every class: compare the integers, no float at all.
    out(g, 1, "const %s *last = %s;\n", out_type(p, p->n_ops - 1), rp);
    out(g, 1, "int best = 0;\n");
    out(g, 1, "run(image);\n");
  } else {
    out(g, 1, "float last[%d];\n", C);
    out(g, 1, "int best = 0;\n");
    out(g, 1, "%sscores(image, last);\n", g->pre);
  }
  out(g, 1, "for (int c = 1; c < %d; c++)\n", C);
  out(g, 2, "if (last[c] > last[best])\n");
  out(g, 3, "best = c;\n");
  out(g, 1, "return best;\n");
  out(g, 0, "}\n");
}

// Writes one file of the plan through emit_util's atomic writer.
static int write_file(const Net *net, const InferPlan *p, const char *outdir, const char *fname,
                      const char *hname, bool header) {
  EmitFile ef;
  if (emit_file_open(&ef, outdir, fname) < 0)
    return -1;
  Gen g = {.f = ef.f, .net = net, .p = p};
  char pre[160];
  snprintf(pre, sizeof pre, "%s_%s", net->name, p->int8 ? "int8_" : "");
  g.pre = pre;
  size_t j = 0;
  for (; net->name[j] && j + 1 < sizeof g.up; j++)
    g.up[j] = (char)toupper((unsigned char)net->name[j]);
  g.up[j] = '\0';
  if (header)
    emit_header(&g, fname);
  else
    emit_source(&g, hname);
  return emit_file_close(&ef);
}

// Loads the first n training images of dir for calibration.
static uint8_t *load_calib(const Net *net, const char *dir, int *n) {
  cnn_idx d;
  char err[512];
  if (cnn_idx_load(dir, "train", net->classes, &d, err, sizeof err) < 0) {
    fprintf(stderr, "cnnc: error: calibration data: %s\n", err);
    return NULL;
  }
  if (cnn_idx_check(&d, net->name, net->input.c, net->input.h, net->input.w, err, sizeof err) < 0) {
    fprintf(stderr, "cnnc: error: calibration data: %s\n", err);
    cnn_idx_free(&d);
    return NULL;
  }
  if (*n > d.n)
    *n = d.n;
  uint8_t *px = d.pixels;
  d.pixels = NULL;
  cnn_idx_free(&d);
  return px;
}

// Writes the files of a folded plan (quantizing it first for int8).
int emit_infer_plan(const Net *net, const char *outdir, const float *params, const float *state,
                    const EmitOptions *opt) {
  InferPlan p;
  char msg[512];
  bool int8 = opt && opt->int8;
  if (infer_plan_build(net, int8, &p, msg, sizeof msg) < 0) {
    fprintf(stderr, "cnnc: error: %s\n", msg); // located at the layer
    infer_plan_free(&p);
    return 1;
  }
  if (infer_plan_fold(&p, net, params, state, msg, sizeof msg) < 0) {
    if (opt && opt->weights)
      fprintf(stderr, "cnnc: error: %s: %s\n", opt->weights, msg);
    else
      fprintf(stderr, "cnnc: error: %s\n", msg);
    infer_plan_free(&p);
    return 1;
  }
  if (int8) {
    int n = opt->calib_n > 0 ? opt->calib_n : CALIB_DEFAULT;
    if (!opt->calib_dir) {
      fprintf(stderr, "cnnc: error: int8 inference needs calibration images (--calib DIR)\n");
      infer_plan_free(&p);
      return 1;
    }
    uint8_t *imgs = load_calib(net, opt->calib_dir, &n);
    int rc = imgs ? quant_calibrate(&p, imgs, n, msg, sizeof msg) : -1;
    free(imgs);
    if (rc < 0) {
      if (imgs)
        fprintf(stderr, "cnnc: error: %s\n", msg);
      infer_plan_free(&p);
      return 1;
    }
  }
  char hname[160], cname[160];
  snprintf(hname, sizeof hname, "%s_infer%s.h", net->name, int8 ? "_int8" : "");
  snprintf(cname, sizeof cname, "%s_infer%s.c", net->name, int8 ? "_int8" : "");
  int rc = emit_mkdirs(outdir) < 0 || write_file(net, &p, outdir, hname, hname, true) < 0 ||
           write_file(net, &p, outdir, cname, hname, false) < 0;
  infer_plan_free(&p);
  return rc ? 1 : 0;
}

int emit_infer(const Net *net, const char *outdir, const EmitOptions *opt) {
  if (!opt || !opt->weights) {
    fprintf(stderr, "cnnc: error: inference code needs trained weights (--weights CKPT)\n");
    return 1;
  }
  cnn_ckpt c;
  char err[512];
  if (net_ckpt_load(net, opt->weights, &c, err, sizeof err) < 0) {
    fprintf(stderr, "cnnc: error: %s\n", err);
    cnn_ckpt_free(&c);
    return 1;
  }
  int rc = emit_infer_plan(net, outdir, c.params, c.state, opt);
  cnn_ckpt_free(&c);
  return rc;
}
