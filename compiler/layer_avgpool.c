// layer_avgpool.c: avgpool(kernel, stride = kernel) — PyTorch's AvgPool2d
// without padding: the mean of each window. Windows that do not fit at the
// bottom/right are dropped, as in PyTorch and Keras ('valid').
#include <stdio.h>

#include "layers.h"

// Average-pool layer k: y = sum of the window / (kh * kw); backward spreads
// each output's gradient evenly over its window.
static void avgpool_emit(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int ib = c->ibuf[k], ob = c->buf[k + 1];
  long isz = c->isize[k], osz = c->tsize[k + 1];
  int KH = l->kh, KW = l->kw, IH = l->in.h, IW = l->in.w, OH = l->out.h, OW = l->out.w;
  layer_comment(c, k);
  W(c, "// y = mean of each %dx%d window.\n", KH, KW);
  W(c, "CNN_CLONES static void %s_l%d_avgpool_forward(int n) {\n", P, k);
  group_begin(c);
  images_begin(c);
  W(c, "      const cnn_real *restrict x = %s_a%d + (size_t)i * %ld;\n", P, ib, isz);
  W(c, "      cnn_real *restrict y = %s_a%d + (size_t)i * %ld;\n", P, ob, osz);
  W(c, "      for (int c = 0; c < %d; c++)\n", l->out.c);
  W(c, "        for (int oy = 0; oy < %d; oy++)\n", OH);
  W(c, "          for (int ox = 0; ox < %d; ox++) {\n", OW);
  W(c, "            cnn_real s = 0;\n");
  W(c, "            for (int ky = 0; ky < %d; ky++)\n", KH);
  W(c, "              for (int kx = 0; kx < %d; kx++)\n", KW);
  W(c, "                s += x[(c * %d + oy * %d + ky) * %d + ox * %d + kx];\n", IH, l->sh, IW, l->sw);
  W(c, "            y[(c * %d + oy) * %d + ox] = s / %d;\n", OH, OW, KH * KW);
  W(c, "          }\n");
  group_end(c);
  W(c, "}\n");
  int dxm = c->gmode[l->src];
  if (!c->gmode[k + 1] || !dxm)
    return;
  ig_open(c, dxm);
  W(c, "// dx = dy / %d over each window (overlapping windows add up).\n", KH * KW);
  W(c, "CNN_CLONES static void %s_l%d_avgpool_backward(int n) {\n", P, k);
  group_begin(c);
  images_begin(c);
  W(c, "      const cnn_real *restrict dy = %s_d%d + (size_t)i * %ld;\n", P, ob, osz);
  W(c, "      cnn_real *restrict dx = %s + (size_t)i * %ld;\n", c->dx[k], isz);
  W(c, "      for (int j = 0; j < %ld; j++)\n        dx[j] = 0;\n", isz);
  W(c, "      for (int c = 0; c < %d; c++)\n", l->out.c);
  W(c, "        for (int oy = 0; oy < %d; oy++)\n", OH);
  W(c, "          for (int ox = 0; ox < %d; ox++) {\n", OW);
  W(c, "            const cnn_real g = dy[(c * %d + oy) * %d + ox] / %d;\n", OH, OW, KH * KW);
  W(c, "            for (int ky = 0; ky < %d; ky++)\n", KH);
  W(c, "              for (int kx = 0; kx < %d; kx++)\n", KW);
  W(c, "                dx[(c * %d + oy * %d + ky) * %d + ox * %d + kx] += g;\n", IH, l->sh, IW, l->sw);
  W(c, "          }\n");
  group_end(c);
  W(c, "}\n");
  ig_close(c, dxm);
}

// An op of its own: the window sums, scaled.
static int avgpool_lower(InferPlan *p, const Net *net, int i, char *msg, size_t n) {
  (void)msg, (void)n;
  infer_plan_new_op(p, &net->layers[i], i, IOP_AVGPOOL);
  return 0;
}

// PyTorch's AvgPool2d (no padding; windows that do not fit are dropped, as there).
static void avgpool_torch(const Layer *l, char *mod, size_t n, char *pre, size_t pren) {
  (void)pre, (void)pren;
  pool_torch(l, "nn.AvgPool2d", mod, n);
}

const LayerDef layer_avgpool = {
    .name = "avgpool", .params = pool_params, .n_params = 2,
    .args = pool_args, .shape = pool_shape, .transform = pool_transform, .window = true,
    .fn = "avgpool", .emit_train = avgpool_emit, .lower = avgpool_lower,
    .torch = avgpool_torch, .torch_in = 4,
};
