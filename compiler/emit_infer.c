// emit_infer.c: writes standalone C99 inference code for one image — const
// weight tables (flash), one static arena (RAM) of row rings, no malloc,
// stdio or libm. Float (NAME_infer.{h,c}) or int8 (NAME_infer_int8.{h,c}).
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
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

// A float as a C literal that reads back to the same float.
static void put_float(FILE *f, float v) {
  char buf[40];
  snprintf(buf, sizeof buf, "%.9g", (double)v);
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

// C type of op i's input values (op 0 reads the raw image).
static const char *in_type(const InferPlan *p, int i) {
  return i == 0 ? "uint8_t" : out_type(p, i - 1);
}

// Pointer expression to the start of op i's ring.
static void ring_ptr(Gen *g, char *buf, size_t n, int i) {
  const InferOp *op = &g->p->ops[i];
  if (g->p->int8)
    snprintf(buf, n, "(%s *)((uint8_t *)arena + %ld)", out_type(g->p, i), op->off);
  else
    snprintf(buf, n, "(arena + %ld)", op->off / 4);
}

// Pointer expression to input row `row` of op i (a ring slot, or the image).
static void in_row(Gen *g, char *buf, size_t n, int i, const char *row) {
  if (i == 0) {
    snprintf(buf, n, "img + (%s) * %ld", row, (long)g->p->ops[0].in.w * g->p->ops[0].in.c);
    return;
  }
  const InferOp *src = &g->p->ops[i - 1];
  char rp[128];
  ring_ptr(g, rp, sizeof rp, i - 1);
  if (src->rows == 1)
    snprintf(buf, n, "%s", rp);
  else if (src->rows == src->out.h)
    snprintf(buf, n, "%s + (%s) * %ld", rp, row, src->row_len);
  else
    snprintf(buf, n, "%s + ((%s) %% %d) * %ld", rp, row, src->rows, src->row_len);
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

// Row function of a conv: output row y from the rows of its input. The
// weights are laid out [ky][kx][ic][oc], so the innermost loop runs over the
// output channels with unit stride and a constant trip count, accumulating
// all channels of one output pixel in a local array (which gcc vectorizes);
// the input row pointers are computed once per call, not per element. Each
// output still sums its taps in (ky, kx, ic) order, as the reference does.
static void emit_conv(Gen *g, int i) {
  const InferOp *op = &g->p->ops[i];
  const char *it = in_type(g->p, i), *ot = out_type(g->p, i);
  const char *acc_t = g->p->int8 ? "int32_t" : "float", *w_t = g->p->int8 ? "int8_t" : "float";
  int K = op->k, IC = op->in.c, OC = op->out.c;
  char rp[128], row[256], iy[64];
  ring_ptr(g, rp, sizeof rp, i);
  snprintf(iy, sizeof iy, "%s", tap("y", "ky", op->stride, op->pad));
  in_row(g, row, sizeof row, i, "iy");
  out(g, 0, "/* op %d: conv %dx%d/%d pad %d, %dx%dx%d -> %dx%dx%d%s; keeps %d of %d rows */\n",
      i + 1, K, K, op->stride, op->pad, op->in.h, op->in.w, IC, op->out.h, op->out.w, OC,
      op->relu ? ", ReLU" : "", op->rows, op->out.h);
  out(g, 0, "CNN_CLONES static void op%d(%sint y) {\n", i + 1, i == 0 ? "const uint8_t *img, " : "");
  if (op->rows == 1)
    out(g, 1, "%s *restrict out = %s;\n", ot, rp);
  else if (op->rows == op->out.h)
    out(g, 1, "%s *restrict out = %s + y * %ld;\n", ot, rp, op->row_len);
  else
    out(g, 1, "%s *restrict out = %s + (y %% %d) * %ld;\n", ot, rp, op->rows, op->row_len);
  bool uses_y = op->rows != 1 || op->pad || strstr(row, "iy");
  if (!uses_y)
    out(g, 1, "(void)y; /* one-row rings in and out: every row uses the same slots */\n");
  // The input rows of the kernel, once per output row (NULL: a padded row).
  out(g, 1, "const %s *rows[%d];\n", it, K);
  out(g, 1, "for (int ky = 0; ky < %d; ky++) {\n", K);
  if (strstr(row, "iy") || op->pad)
    out(g, 2, "int iy = %s;\n", iy);
  if (op->pad)
    out(g, 2, "rows[ky] = iy < 0 || iy >= %d ? 0 : %s;\n", op->in.h, row);
  else
    out(g, 2, "rows[ky] = %s;\n", row);
  out(g, 1, "}\n");
  // XB output pixels at once (valid convs; XB divides the row width, <= 4):
  // independent sums to overlap, and
  // one weight load serves XB MACs.
  int XB = 1;
  for (int b = 4; b > 1 && !op->pad; b--)
    if (op->out.w % b == 0) {
      XB = b;
      break;
    }
  out(g, 1, "for (int x = 0; x < %d; x += %d) {\n", op->out.w, XB);
  out(g, 2, "%s acc[%d][%d];\n", acc_t, XB, OC);
  out(g, 2, "for (int p = 0; p < %d; p++)\n", XB);
  out(g, 3, "for (int o = 0; o < %d; o++)\n", OC);
  out(g, 4, "acc[p][o] = op%d_b[o];\n", i + 1);
  out(g, 2, "for (int ky = 0; ky < %d; ky++) {\n", K);
  out(g, 3, "const %s *restrict w = op%d_w + ky * %d;\n", w_t, i + 1, K * IC * OC);
  if (op->pad == 0) {
    // Valid conv: one contiguous run of k*ic inputs per kernel row.
    out(g, 3, "const %s *restrict px = rows[ky] + x * %d;\n", it, op->stride * IC);
    // U taps per pass over acc: one load and store of acc per U MACs; the
    // sum stays left to right, so each output rounds exactly as before.
    int U = 1;
    for (int u = 8; u > 1; u--)
      if ((K * IC) % u == 0) {
        U = u;
        break;
      }
    out(g, 3, "for (int j = 0; j < %d; j += %d, w += %d) {\n", K * IC, U, U * OC);
    for (int b = 0; b < XB; b++)
      for (int u = 0; u < U; u++)
        out(g, 4, "%s v%d_%d = px[j + %d];\n", acc_t, b, u, b * op->stride * IC + u);
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
    if (i == 0 && g->p->int8)
      snprintf(pad, sizeof pad, "%ld", lround(g->p->in_pad));
    else if (i == 0)
      snprintf(pad, sizeof pad, "%.9gf", g->p->in_pad);
    bool zero = strcmp(pad, "0") == 0 || strcmp(pad, "0f") == 0;
    out(g, 3, "for (int kx = 0; kx < %d; kx++, w += %d) {\n", K, IC * OC);
    out(g, 4, "int ix = %s;\n", tap("x", "kx", op->stride, op->pad));
    if (zero) {
      out(g, 4, "if (!rows[ky] || ix < 0 || ix >= %d)\n", op->in.w);
      out(g, 5, "continue;\n");
      out(g, 4, "for (int c = 0; c < %d; c++) {\n", IC);
      out(g, 5, "%s v = rows[ky][ix * %d + c];\n", acc_t, IC);
    } else {
      out(g, 4, "int in = rows[ky] && ix >= 0 && ix < %d;\n", op->in.w);
      out(g, 4, "for (int c = 0; c < %d; c++) {\n", IC);
      out(g, 5, "%s v = in ? (%s)rows[ky][ix * %d + c] : %s;\n", acc_t, acc_t, IC, pad);
    }
    out(g, 5, "for (int o = 0; o < %d; o++)\n", OC);
    out(g, 6, "acc[0][o] += w[c * %d + o] * v;\n", OC);
    out(g, 4, "}\n");
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

// Row function of a maxpool.
static void emit_pool(Gen *g, int i) {
  const InferOp *op = &g->p->ops[i];
  const char *it = in_type(g->p, i), *ot = out_type(g->p, i);
  int K = op->k, C = op->out.c;
  char rp[128], row[256];
  ring_ptr(g, rp, sizeof rp, i);
  in_row(g, row, sizeof row, i, "iy");
  const char *lowest = !g->p->int8 ? "-3.402823466e38f" : strcmp(it, "uint8_t") == 0 ? "0" : "-128";
  out(g, 0, "/* op %d: maxpool %dx%d/%d, %dx%dx%d -> %dx%dx%d%s; keeps %d of %d rows */\n", i + 1,
      K, K, op->stride, op->in.h, op->in.w, C, op->out.h, op->out.w, C,
      op->relu ? ", ReLU" : "", op->rows, op->out.h);
  out(g, 0, "CNN_CLONES static void op%d(int y) {\n", i + 1);
  if (op->rows == 1)
    out(g, 1, "%s *out = %s;\n", ot, rp);
  else if (op->rows == op->out.h)
    out(g, 1, "%s *out = %s + y * %ld;\n", ot, rp, op->row_len);
  else
    out(g, 1, "%s *out = %s + (y %% %d) * %ld;\n", ot, rp, op->rows, op->row_len);
  if (op->rows == 1 && !op->pad && !strstr(row, "iy"))
    out(g, 1, "(void)y; /* one-row rings in and out: every row uses the same slots */\n");
  out(g, 1, "for (int x = 0; x < %d; x++)\n", op->out.w);
  out(g, 2, "for (int c = 0; c < %d; c++) {\n", C);
  out(g, 3, "%s m = %s;\n", it, lowest);
  out(g, 3, "for (int ky = 0; ky < %d; ky++) {\n", K);
  if (op->pad || strstr(row, "iy")) // a one-row ring needs no row index
    out(g, 4, "int iy = %s;\n", tap("y", "ky", op->stride, op->pad));
  if (op->pad) {
    out(g, 4, "if (iy < 0 || iy >= %d)\n", op->in.h);
    out(g, 5, "continue;\n");
  }
  out(g, 4, "const %s *px = %s;\n", it, row);
  out(g, 4, "for (int kx = 0; kx < %d; kx++) {\n", K);
  out(g, 5, "int ix = %s;\n", tap("x", "kx", op->stride, op->pad));
  if (op->pad) {
    out(g, 5, "if (ix < 0 || ix >= %d)\n", op->in.w);
    out(g, 6, "continue;\n");
  }
  out(g, 5, "if (px[ix * %d + c] > m)\n", C);
  out(g, 6, "m = px[ix * %d + c];\n", C);
  out(g, 4, "}\n");
  out(g, 3, "}\n");
  if (op->relu)
    out(g, 3, "out[x * %d + c] = m > 0 ? m : 0;\n", C);
  else
    out(g, 3, "out[x * %d + c] = m;\n", C);
  out(g, 2, "}\n");
  out(g, 0, "}\n\n");
}

static void emit_produce(Gen *g, int i, bool last, int ind);

// Produces rows of op j until row `need` (clipped to its height) exists.
static void emit_ensure(Gen *g, int j, const char *need, int ind) {
  out(g, ind, "while (d%d <= %s && d%d < %d) {\n", j + 1, need, j + 1, g->p->ops[j].out.h);
  emit_produce(g, j, false, ind + 1);
  out(g, ind, "}\n");
}

// Produces the next row of op i (row 0 if it is the last op), first pulling
// the input rows it needs from the ops before it.
static void emit_produce(Gen *g, int i, bool last, int ind) {
  const InferOp *op = &g->p->ops[i];
  char y[16], need[96];
  snprintf(y, sizeof y, last ? "0" : "d%d", i + 1);
  if (op->kind == IOP_GAP) {
    // Sums each input row as soon as it exists: the input ring is one row.
    const InferOp *src = &g->p->ops[i - 1];
    char rp[128], row[256], gv[16];
    const char *at = g->p->int8 ? "int32_t" : "float";
    snprintf(gv, sizeof gv, "g%d", i + 1);
    ring_ptr(g, rp, sizeof rp, i);
    in_row(g, row, sizeof row, i, gv);
    bool direct = !g->p->int8 || op->out_i32; // sum straight into the output
    out(g, ind, "{ /* op %d: global average pool of %dx%dx%d */\n", i + 1, op->in.h, op->in.w,
        op->in.c);
    if (direct)
      out(g, ind + 1, "%s *sum = %s;\n", at, rp);
    else
      out(g, ind + 1, "int32_t sum[%d];\n", op->out.c);
    out(g, ind + 1, "for (int c = 0; c < %d; c++)\n", op->out.c);
    out(g, ind + 2, "sum[c] = 0;\n");
    out(g, ind + 1, "for (int %s = 0; %s < %d; %s++) {\n", gv, gv, op->in.h, gv);
    emit_ensure(g, i - 1, gv, ind + 2);
    out(g, ind + 2, "const %s *px = %s;\n", out_type(g->p, i - 1), row);
    out(g, ind + 2, "for (int x = 0; x < %d; x++)\n", src->out.w);
    out(g, ind + 3, "for (int c = 0; c < %d; c++)\n", op->out.c);
    out(g, ind + 4, "sum[c] += px[x * %d + c];\n", op->out.c);
    out(g, ind + 1, "}\n");
    if (!g->p->int8) {
      out(g, ind + 1, "for (int c = 0; c < %d; c++)\n", op->out.c);
      if (op->relu)
        out(g, ind + 2, "sum[c] = sum[c] > 0.0f ? sum[c] * %.9gf : 0.0f;\n", 1.0 / (op->in.h * op->in.w));
      else
        out(g, ind + 2, "sum[c] = sum[c] * %.9gf;\n", 1.0 / (op->in.h * op->in.w));
    } else if (op->out_i32) {
      if (op->relu) {
        out(g, ind + 1, "for (int c = 0; c < %d; c++)\n", op->out.c);
        out(g, ind + 2, "sum[c] = sum[c] > 0 ? sum[c] : 0;\n");
      }
    } else {
      int lo, hi;
      char orp[128];
      clamp_range(g->p, i, &lo, &hi);
      ring_ptr(g, orp, sizeof orp, i);
      out(g, ind + 1, "for (int c = 0; c < %d; c++)\n", op->out.c);
      out(g, ind + 2, "(%s)[c] = (%s)rq(sum[c], %ld, %d, %d, %d);\n", orp, out_type(g->p, i),
          (long)op->mult[0], op->shift[0], lo, hi);
    }
    out(g, ind, "}\n");
  } else {
    if (i > 0) {
      snprintf(need, sizeof need, "%s * %d + %d", y, op->stride, op->k - 1 - op->pad);
      emit_ensure(g, i - 1, need, ind);
    }
    out(g, ind, "op%d(%s%s);\n", i + 1, i == 0 ? "img, " : "", y);
  }
  if (!last)
    out(g, ind, "d%d++;\n", i + 1);
}

// The header: API, sizes, and how the memory splits across layers.
static void emit_header(Gen *g, const char *guard) {
  const InferPlan *p = g->p;
  const Net *net = g->net;
  const char *mp = p->int8 ? "INT8_" : "";
  out(g, 0, "/* %s: generated by cnnc from network %s; do not edit.\n", guard, net->name);
  out(g, 0, " * %s inference of one image: C99, no malloc, no stdio, no libm.\n",
      p->int8 ? "int8 (post-training quantized)" : "Float");
  out(g, 0, " * Flash: %ld bytes of constant tables (weights%s; code comes on top).\n",
      p->flash_bytes, p->int8 ? ", int32 biases, requantization multipliers" : ", biases");
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
  emit_clones_macro(g->f, "\"avx512f\", \"avx2\", \"default\"");
  for (int i = 0; i < p->n_ops; i++) {
    const InferOp *op = &p->ops[i];
    if (op->kind != IOP_CONV)
      continue;
    char name[32];
    size_t nw = (size_t)op->out.c * op->in.c * op->k * op->k;
    out(g, 0, "/* op %d: conv weights [%d][%d][%d][%d] (ky, kx, in, out)%s */\n", i + 1, op->k,
        op->k, op->in.c, op->out.c, op->bn >= 0 ? ", BatchNorm folded in" : "");
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
  if (p->int8) {
    out(g, 0, "/* acc * mult / 2^shift, rounded half up, clamped to [lo, hi]. */\n");
    out(g, 0, "static int32_t rq(int32_t acc, int32_t mult, int shift, int32_t lo, int32_t hi) {\n");
    out(g, 1, "int64_t v = ((int64_t)acc * mult + ((int64_t)1 << (shift - 1))) >> shift;\n");
    out(g, 1, "return v < lo ? lo : v > hi ? hi : (int32_t)v;\n");
    out(g, 0, "}\n\n");
  }
  for (int i = 0; i < p->n_ops; i++) {
    if (p->ops[i].kind == IOP_CONV)
      emit_conv(g, i);
    else if (p->ops[i].kind == IOP_MAXPOOL)
      emit_pool(g, i);
  }
  out(g, 0, "/* Runs the network on img, pulling rows through the rings: each op\n"
            "   makes a row only once the rows it reads exist. */\n");
  out(g, 0, "CNN_CLONES static void run(const uint8_t *img) {\n");
  if (p->n_ops > 1) {
    out(g, 1, "int ");
    for (int i = 0; i < p->n_ops - 1; i++)
      fprintf(g->f, "d%d = 0%s", i + 1, i + 2 < p->n_ops ? ", " : ";\n");
  }
  emit_produce(g, p->n_ops - 1, true, 1);
  out(g, 0, "}\n\n");
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
    put_float(g->f, (float)(lastop->kind == IOP_GAP ? lastop->acc_scale[0] : lastop->out_scale));
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
  if (d.rows != net->input.h || d.cols != net->input.w || net->input.c != 1) {
    fprintf(stderr, "cnnc: error: calibration images are %dx%dx1, the network takes %dx%dx%d\n",
            d.rows, d.cols, net->input.h, net->input.w, net->input.c);
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
  if (infer_plan_build(net, int8, &p, msg, sizeof msg) < 0 ||
      infer_plan_fold(&p, net, params, state, msg, sizeof msg) < 0) {
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
  if (cnn_ckpt_load(opt->weights, &c, err, sizeof err) < 0 ||
      cnn_ckpt_check(&c, opt->weights, net->name, net->shape_hash, (size_t)net->n_params,
                     (size_t)net->n_state, net->train.mean, net->train.std, err, sizeof err) < 0) {
    fprintf(stderr, "cnnc: error: %s\n", err);
    cnn_ckpt_free(&c);
    return 1;
  }
  int rc = emit_infer_plan(net, outdir, c.params, c.state, opt);
  cnn_ckpt_free(&c);
  return rc;
}
