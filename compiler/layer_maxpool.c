// layer_maxpool.c: maxpool(kernel, stride = kernel) — PyTorch's MaxPool2d
// (no padding). The gradient goes to the first maximum of each window.
#include <stdio.h>

#include "layers.h"

const ParamSpec pool_params[] = {{"kernel", "k", P_PAIR, true}, {"stride", NULL, P_PAIR, false}};

bool pool_args(ArgList *a, Layer *l) {
  bool ok = arg_pair(a, 0, "kernel", 1, 1, &l->kh, &l->kw);
  if (ok)
    ok = arg_pair(a, 1, "stride", 1, 0, &l->sh, &l->sw);
  if (ok && !a->has[1]) {
    l->sh = l->kh;
    l->sw = l->kw;
  }
  return ok;
}

bool pool_shape(Layer *l, char *msg, size_t n) {
  const LayerDef *def = layer_def(l->kind);
  int oh = window_out(l->in.h, l->kh, l->sh, l->pt, l->pb), ow = window_out(l->in.w, l->kw, l->sw, l->pl, l->pr);
  if (oh <= 0 || ow <= 0) {
    char win[32];
    fmt_window(win, sizeof win, l->kh, l->kw);
    snprintf(msg, n, "%s kernel %s is larger than its %dx%dx%d input", def->name, win, l->in.h, l->in.w, l->in.c);
    return false;
  }
  l->out.h = oh;
  l->out.w = ow;
  return rf_window(l, l->kh, l->kw, l->sh, l->sw);
}

void pool_transform(const Layer *l, char *buf, size_t n) {
  const char *t = l->kind == L_MAXPOOL ? "MP" : "AP";
  if (l->sh == l->kh && l->sw == l->kw)
    snprintf(buf, n, "%s(%dx%d)", t, l->kh, l->kw);
  else if (l->sh == l->sw)
    snprintf(buf, n, "%s(%dx%d s%d)", t, l->kh, l->kw, l->sh);
  else
    snprintf(buf, n, "%s(%dx%d s%dx%d)", t, l->kh, l->kw, l->sh, l->sw);
}

// Max-pool layer k; the gradient goes to the first maximum (row-major scan).
// 2x2/2 windows keep no argmax: backward finds it again from the input, with
// compares as multipliers, so neither pass branches on the data. When it
// alone reads a BatchNorm's output it runs the BatchNorm's passes image by
// image (train_plan.c): the sweep before pooling, the first backward pass
// after routing the gradient.
static void maxpool_emit(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int ib = c->ibuf[k], ob = c->buf[k + 1];
  long isz = c->isize[k], osz = c->tsize[k + 1];
  int bw = c->gmode[k + 1], dxm = c->gmode[l->src];
  int pad = l->pt || l->pb || l->pl || l->pr;
  int fast = l->kh == 2 && l->kw == 2 && l->sh == 2 && l->sw == 2 && !pad;
  int IW = l->in.w;
  layer_comment(c, k);
  if (dxm && !fast) {
    ig_open(c, dxm);
    W(c, "// Index (within its image) of the maximum each output took.\n");
    W(c, "static int32_t %s_l%d_arg[BATCH * %ld];\n", P, k, osz);
    ig_close(c, dxm);
  }
  W(c, "CNN_CLONES static void %s_l%d_maxpool_forward(int n, int training) {\n", P, k);
  // A BatchNorm's sweep run here reads `training`.
  if (bn_run_by(c, c->bn_sweep, k) < 0 && (!dxm || fast || dxm == 2)) // mode 2: used only under CNN_INPUT_GRAD
    W(c, "  (void)training;\n");
  group_begin(c);
  images_begin(c);
  bn_emit_sweeps_for(c, k);
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
    W(c, "            for (int ky = 0; ky < %d; ky++) {\n", l->kh);
    W(c, "              const int iy = oy * %d + ky - %d;\n", l->sh, l->pt);
    if (pad)
      W(c, "              if (iy < 0 || iy >= %d)\n                continue;\n", l->in.h);
    W(c, "              for (int kx = 0; kx < %d; kx++) {\n", l->kw);
    W(c, "                const int ix = ox * %d + kx - %d;\n", l->sw, l->pl);
    if (pad)
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
  // The BatchNorm whose first backward pass follows, if any: its pass
  // reads dx through pointers of its own, so dx (restrict) goes out of
  // scope first.
  int bn = bn_run_by(c, c->bn_dsums, k);
  // Its mask, where it is a function of the inputs read here, applied as
  // each gradient is routed: one pass over dx fewer.
  char mbuf[64];
  int masked = fast && bn >= 0 && bn_dy_mask(c, bn, "a", mbuf, sizeof mbuf);
  group_begin(c);
  images_begin(c);
  if (bn >= 0)
    W(c, "      {\n");
  W(c, "      const cnn_real *restrict dy = %s_d%d + (size_t)i * %ld;\n", P, ob, osz);
  W(c, "      cnn_real *restrict dx = %s + (size_t)i * %ld;\n", c->dx[k], isz);
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
    // x >= m is x == m here (m is the max), and compiles without the NaN
    // branch of ==. Selects, not products of compares: GCC turned those into
    // a branch on the data, mispredicted about once a window.
    W(c, "            // g at the first of the four equal to the max, 0 elsewhere.\n");
    W(c, "            const cnn_real g = dy[(c * %d + oy) * %d + ox];\n", l->out.h, l->out.w);
    W(c, "            const cnn_real ga = a >= m ? g : 0, r1 = a >= m ? 0 : g;\n");
    W(c, "            const cnn_real gb = b >= m ? r1 : 0, r2 = b >= m ? 0 : r1;\n");
    W(c, "            const cnn_real gd = d >= m ? r2 : 0, ge = d >= m ? 0 : r2;\n");
    if (masked) { // the BatchNorm's mask, of the values at hand (0 where nothing is routed)
      char ma[64], mb[64], md[64], me[64];
      bn_dy_mask(c, bn, "a", ma, sizeof ma), bn_dy_mask(c, bn, "b", mb, sizeof mb);
      bn_dy_mask(c, bn, "d", md, sizeof md), bn_dy_mask(c, bn, "e", me, sizeof me);
      W(c, "            dx[j0] = ga * (%s);\n            dx[j0 + 1] = gb * (%s);\n", ma, mb);
      W(c, "            dx[j0 + %d] = gd * (%s);\n            dx[j0 + %d] = ge * (%s);\n", IW, md, IW + 1, me);
    } else {
      W(c, "            dx[j0] = ga;\n            dx[j0 + 1] = gb;\n");
      W(c, "            dx[j0 + %d] = gd;\n            dx[j0 + %d] = ge;\n", IW, IW + 1);
    }
    W(c, "          }\n");
  } else {
    W(c, "      const int32_t *restrict arg = %s_l%d_arg + (size_t)i * %ld;\n", P, k, osz);
    W(c, "      for (int j = 0; j < %ld; j++)\n        dx[j] = 0;\n", isz);
    W(c, "      for (int o = 0; o < %ld; o++)\n        dx[arg[o]] += dy[o];\n", osz);
  }
  if (bn >= 0) {
    W(c, "      }\n      { // layer %d's first backward pass for this image, while its dx is in cache\n", bn);
    bn_emit_dy_sums_of(c, bn, masked, "        ");
    W(c, "      }\n");
  }
  group_end(c);
  W(c, "}\n");
  ig_close(c, dxm);
}

// A maxpool op of the plan.
static int maxpool_lower(InferPlan *p, const Net *net, int i, char *msg, size_t n) {
  (void)msg, (void)n;
  infer_plan_new_op(p, &net->layers[i], i, IOP_MAXPOOL);
  return 0;
}

// The module text of a pool: its class, kernel and (when not the kernel) stride.
void pool_torch(const Layer *l, const char *cls, char *mod, size_t n) {
  char k[32], st[32];
  fmt_torch_pair(k, sizeof k, l->kh, l->kw);
  fmt_torch_pair(st, sizeof st, l->sh, l->sw);
  if (l->kh == l->sh && l->kw == l->sw)
    snprintf(mod, n, "%s(%s)", cls, k);
  else
    snprintf(mod, n, "%s(%s, stride=%s)", cls, k, st);
}

// PyTorch's MaxPool2d (no padding; windows that do not fit are dropped, as there).
static void maxpool_torch(const Layer *l, char *mod, size_t n, char *pre, size_t pren) {
  (void)pre, (void)pren;
  pool_torch(l, "nn.MaxPool2d", mod, n);
}

const LayerDef layer_maxpool = {
    .name = "maxpool", .params = pool_params, .n_params = 2,
    .args = pool_args, .shape = pool_shape, .transform = pool_transform, .window = true,
    .fn = "maxpool", .fwd_training = true, .emit_train = maxpool_emit, .lower = maxpool_lower,
    .torch = maxpool_torch, .torch_in = 4,
};
