// layer_gap.c: gap — global average pooling (AdaptiveAvgPool2d(1)): one
// mean per channel.
#include <stdio.h>

#include "layers.h"

// 1x1 output; the window is the whole map.
static bool gap_shape(Layer *l, char *msg, size_t n) {
  (void)msg, (void)n;
  l->out.h = l->out.w = 1;
  return rf_window(l, l->in.h, l->in.w, l->in.h, l->in.w);
}

static void gap_transform(const Layer *l, char *buf, size_t n) {
  (void)l;
  snprintf(buf, n, "GAP");
}

// Global average pooling layer k.
static void gap_emit(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int C = l->in.c, HW = l->in.h * l->in.w;
  int ib = c->ibuf[k], ob = c->buf[k + 1];
  layer_comment(c, k);
  W(c, "// y[c] = mean of x[c] over its %d positions.\n", HW);
  W(c, "CNN_CLONES static void %s_l%d_gap_forward(int n) {\n", P, k);
  W(c, "  for (int i = 0; i < n; i++)\n    for (int c = 0; c < %d; c++) {\n", C);
  W(c, "      const cnn_real *restrict x = %s_a%d + (size_t)i * %ld + c * %d;\n", P, ib, c->isize[k], HW);
  W(c, "      cnn_real s = 0;\n      for (int p = 0; p < %d; p++)\n        s += x[p];\n", HW);
  W(c, "      %s_a%d[i * %d + c] = s / %d;\n    }\n}\n", P, ob, C, HW);
  int dxm = c->gmode[l->src];
  if (!c->gmode[k + 1] || !dxm)
    return;
  ig_open(c, dxm);
  W(c, "// dx = dy / %d everywhere.\n", HW);
  W(c, "CNN_CLONES static void %s_l%d_gap_backward(int n) {\n", P, k);
  W(c, "  for (int i = 0; i < n; i++)\n    for (int c = 0; c < %d; c++) {\n", C);
  W(c, "      const cnn_real v = %s_d%d[i * %d + c] / %d;\n", P, ob, C, HW);
  W(c, "      cnn_real *restrict dx = %s + (size_t)i * %ld + c * %d;\n", c->dx[k], c->isize[k], HW);
  W(c, "      for (int p = 0; p < %d; p++)\n        dx[p] = v;\n    }\n}\n", HW);
  ig_close(c, dxm);
}

// A gap op of the plan: it sums its input row by row.
static int gap_lower(InferPlan *p, const Net *net, int i, char *msg, size_t n) {
  (void)msg, (void)n;
  infer_plan_new_op(p, &net->layers[i], i, IOP_GAP);
  return 0;
}

// PyTorch's nn.AdaptiveAvgPool2d.
static void gap_torch(const Layer *l, char *mod, size_t n, char *pre, size_t pren) {
  (void)l, (void)pre, (void)pren;
  snprintf(mod, n, "nn.AdaptiveAvgPool2d(1)");
}

const LayerDef layer_gap = {
    .name = "gap", .shape = gap_shape, .transform = gap_transform, .window = true,
    .fn = "gap", .emit_train = gap_emit, .lower = gap_lower,
    .torch = gap_torch, .torch_in = 4,
};
