// train_emit.c: the helpers the layer modules' training emitters share.
#include "train_emit.h"

#include <stdarg.h>
#include <string.h>

#include "layers.h"

void train_w(TrainCtx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(c->f, fmt, ap);
  va_end(ap);
}

void ig_open(TrainCtx *c, int mode) {
  if (mode == 2)
    W(c, "#ifdef CNN_INPUT_GRAD\n");
}

void ig_close(TrainCtx *c, int mode) {
  if (mode == 2)
    W(c, "#endif\n");
}

void group_begin(TrainCtx *c) {
  W(c, "  CNN_OMP(omp parallel for schedule(static))\n"
       "  for (int g = 0; g < NGROUP; g++) {\n");
}

void images_begin(TrainCtx *c) {
  W(c, "    for (int i = g * GSIZE; i < n && i < (g + 1) * GSIZE; i++) {\n");
}

void group_end(TrainCtx *c) {
  W(c, "    }\n  }\n");
}

// Whether kind def has a parameter called name.
static int has_param(const LayerDef *def, const char *name) {
  for (int i = 0; i < def->n_params; i++)
    if (strcmp(def->params[i].name, name) == 0)
      return 1;
  return 0;
}

// Writes "3x3" for a square window, "10x4" otherwise; likewise strides.
static void pair_text(char *buf, size_t n, int a, int b, int square_as_one) {
  if (square_as_one && a == b)
    snprintf(buf, n, "%d", a);
  else
    snprintf(buf, n, "%dx%d", a, b);
}

void layer_comment(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const LayerDef *def = layer_def(l->kind);
  W(c, "\n// Layer %d: %s", k, def->name);
  if (has_param(def, "kernel")) {
    char win[32], st[32], pad[64];
    pair_text(win, sizeof win, l->kh, l->kw, 0);
    pair_text(st, sizeof st, l->sh, l->sw, 1);
    if (l->pt == l->pb && l->pt == l->pl && l->pt == l->pr)
      snprintf(pad, sizeof pad, "%d", l->pt);
    else
      snprintf(pad, sizeof pad, "%d,%d,%d,%d (top, bottom, left, right)", l->pt, l->pb, l->pl, l->pr);
    W(c, " %s, stride %s, pad %s", win, st, pad);
  }
  if (l->groups > 1)
    W(c, ", %d groups", l->groups);
  if (has_param(def, "bias"))
    W(c, ", %s bias", l->bias ? "with" : "no");
  if (has_param(def, "p"))
    W(c, " p=%g", l->p);
  char rf[32];
  pair_text(rf, sizeof rf, l->rf, l->rf_w, 1);
  W(c, ": %dx%dx%d -> %dx%dx%d (HxWxC), RF %s, %ld params, %ld MACs/image.\n", l->in.h, l->in.w,
    l->in.c, l->out.h, l->out.w, l->out.c, rf, l->n_params, l->macs);
}

void emit_plane_sum(TrainCtx *c, const Layer *l, const char *expr, const char *expr2, const char *ind) {
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

// Image i's per-channel sums for BatchNorm layer bk's partials: of x and
// x^2 (forward: dy NULL), or of dy and dy * xhat (backward: x is bk's
// input); x and dy are the image's base addresses. One plane's eight lanes
// alone wait on each add (mnist14k's first conv spent a third of its
// forward there), so where the file has vectors four (or two) channels'
// chains run at once, each summing its lanes in the order of
// emit_plane_sum: the same bits.
void emit_chan_sums(TrainCtx *c, int bk, const char *x, const char *dy, const char *ind) {
  const Layer *l = &c->net->layers[bk];
  const char *P = c->P;
  int C = l->out.c, HW = l->out.h * l->out.w, H8 = HW / 8 * 8, J = C % 4 == 0 ? 4 : C % 2 == 0 ? 2 : 1;
  const char *v = dy ? "dy" : "x"; // the values of the first sum
  char in2[48], in3[48];
  snprintf(in2, sizeof in2, "%s  ", ind);
  snprintf(in3, sizeof in3, "%s    ", ind);
  if (J == 1 || !c->slack || !H8) {
    W(c, "%sfor (int c = 0; c < %d; c++) {\n", ind, C);
    W(c, "%sconst cnn_real *restrict x = %s + c * %d;\n", in2, x, HW);
    if (dy) {
      W(c, "%sconst cnn_real *restrict dy = %s + c * %d;\n", in2, dy, HW);
      W(c, "%sconst cnn_real m_ = %s_l%d_mean[c], is = %s_l%d_invstd[c];\n", in2, P, bk, P, bk);
    }
    emit_plane_sum(c, l, dy ? "dy[p]" : "x[p]", dy ? "dy[p] * ((x[p] - m_) * is)" : "x[p] * x[p]", in2);
    W(c, "%s%s_l%d_ps[i][c] = s;\n%s%s_l%d_pq[i][c] = sq;\n%s}\n", in2, P, bk, in2, P, bk, ind);
    return;
  }
  W(c, "%sfor (int c = 0; c < %d; c += %d) { // %d channels' chains at once\n", ind, C, J, J);
  W(c, "%sconst cnn_real *restrict x = %s + c * %d;\n", in2, x, HW);
  if (dy) {
    W(c, "%sconst cnn_real *restrict dy = %s + c * %d;\n%sconst cnn_real ", in2, dy, HW, in2);
    for (int j = 0; j < J; j++)
      W(c, "m%d = %s_l%d_mean[c + %d], i%d = %s_l%d_invstd[c + %d]%s", j, P, bk, j, j, P, bk, j, j + 1 < J ? ", " : ";\n");
  }
  W(c, "%scnn_v8 ", in2);
  for (int j = 0; j < J; j++)
    W(c, "a%d = {0}, q%d = {0}%s", j, j, j + 1 < J ? ", " : ";\n");
  W(c, "%sfor (int b = 0; b < %d; b += 8) {\n%s  cnn_v8 t%s;\n", in2, H8, in2, dy ? ", u" : "");
  for (int j = 0; j < J; j++) {
    W(c, "%smemcpy(&t, %s + %d + b, sizeof t);\n", in3, v, j * HW);
    if (dy)
      W(c, "%smemcpy(&u, x + %d + b, sizeof u);\n%sa%d += t;\n%sq%d += t * ((u - m%d) * i%d);\n", in3, j * HW, in3,
        j, in3, j, j, j);
    else
      W(c, "%sa%d += t;\n%sq%d += t * t;\n", in3, j, in3, j);
  }
  W(c, "%s}\n%scnn_real as[%d][8], aq[%d][8];\n", in2, in2, J, J);
  for (int j = 0; j < J; j++)
    W(c, "%smemcpy(as[%d], &a%d, sizeof a%d);\n%smemcpy(aq[%d], &q%d, sizeof q%d);\n", in2, j, j, j, in2, j, j, j);
  W(c, "%sfor (int j = 0; j < %d; j++) {\n", in2, J);
  if (H8 < HW) {
    if (dy)
      W(c, "%sconst cnn_real m_ = %s_l%d_mean[c + j], is = %s_l%d_invstd[c + j];\n", in3, P, bk, P, bk);
    W(c, "%sfor (int p = %d; p < %d; p++) {\n", in3, H8, HW);
    W(c, "%s  as[j][p - %d] += %s[j * %d + p];\n", in3, H8, v, HW);
    if (dy)
      W(c, "%s  aq[j][p - %d] += dy[j * %d + p] * ((x[j * %d + p] - m_) * is);\n", in3, H8, HW, HW);
    else
      W(c, "%s  aq[j][p - %d] += x[j * %d + p] * x[j * %d + p];\n", in3, H8, HW, HW);
    W(c, "%s}\n", in3);
  }
  W(c, "%sdouble s = 0, sq = 0;\n", in3);
  W(c, "%sfor (int u = 0; u < 8; u++) {\n%s  s += as[j][u];\n%s  sq += aq[j][u];\n%s}\n", in3, in3, in3, in3);
  W(c, "%s%s_l%d_ps[i][c + j] = s;\n%s%s_l%d_pq[i][c + j] = sq;\n", in3, P, bk, in3, P, bk);
  W(c, "%s}\n%s}\n", in2, ind);
}

int bn_run_by(const TrainCtx *c, const int *role, int k) {
  int found = -1;
  for (int b = 0; b < c->L; b++)
    if (role[b] == k)
      found = b;
  return found;
}

void emit_bn_partials(TrainCtx *c, int k) {
  int C = c->net->layers[k].out.c;
  W(c, "// Layer %d's per-image, per-channel sums (summed over the batch in double):\n"
       "// of x and x^2 in forward, of dy and dy * xhat in backward.\n", k);
  W(c, "static double %s_l%d_ps[BATCH][%d], %s_l%d_pq[BATCH][%d];\n", c->P, k, C, c->P, k, C);
}

void emit_keep_expr(TrainCtx *c, int k, const char *idx) {
  W(c, "(%s_mix32(%s_mix32((uint32_t)(%s) ^ key[0]) + key[1]) >> 8) < L%d_KEEP24", c->P, c->P, idx, k);
}

// Keep probability 1 - p as a 24-bit threshold (the resolution of a float
// uniform draw), and the 1 / (1 - p) scale.
void emit_drop_consts(TrainCtx *c, int k) {
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

void emit_group_sum(TrainCtx *c, int k, const char *name, char var, long count, long off) {
  const char *P = c->P;
  if (count >= 1024) // the partials of half the groups sit in the other core's cache
    W(c, "  CNN_OMP(omp parallel for schedule(static))\n");
  W(c, "  for (int %c = 0; %c < %ld; %c++) {\n", var, var, count, var);
  W(c, "    cnn_real s = %s_l%d_%s[0][%c];\n", P, k, name, var);
  W(c, "    for (int g = 1; g < used; g++)\n      s += %s_l%d_%s[g][%c];\n", P, k, name, var);
  W(c, "    %s_grads[%ld + %c] = s;\n  }\n", P, off, var);
}

void emit_uniform_init(TrainCtx *c, int k, const char *what, long fan, long n, long off) {
  c->init_rng = 1;
  W(c, "  { // layer %d %s, fan_in %ld\n", k, what, fan);
  W(c, "    const double bound = 1 / sqrt(%ld.0);\n", fan);
  W(c, "    for (int j = 0; j < %ld; j++)\n", n);
  W(c, "      %s_params[%ld + j] = (cnn_real)(-bound + 2 * bound * cnn_rng_uniform(rng));\n  }\n", c->P, off);
}
