// layer_log_softmax.c: log_softmax — the log-probabilities the NLL loss
// reads; the last layer. Inference returns the scores before it (argmax is
// the same).
#include <stdio.h>

#include "layers.h"

static bool log_softmax_shape(Layer *l, char *msg, size_t n) {
  if (l->in.h != 1 || l->in.w != 1) {
    snprintf(msg, n, "log_softmax needs one value per class, but its input is %dx%dx%d (add gap first)", l->in.h,
             l->in.w, l->in.c);
    return false;
  }
  return true;
}

static void log_softmax_transform(const Layer *l, char *buf, size_t n) {
  (void)l;
  snprintf(buf, n, "LogSoftmax");
}

// log-softmax over the classes of each image (a 1x1 map).
static void log_softmax_emit(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int C = l->in.c;
  int ib = c->ibuf[k], ob = c->buf[k + 1];
  layer_comment(c, k);
  W(c, "// y = x - max - log(sum exp(x - max)).\n");
  W(c, "CNN_CLONES static void %s_l%d_log_softmax_forward(int n) {\n", P, k);
  W(c, "  for (int i = 0; i < n; i++) {\n");
  W(c, "    const cnn_real *restrict x = %s_a%d + i * %d;\n", P, ib, C);
  W(c, "    cnn_real *restrict y = %s_a%d + i * %d;\n", P, ob, C);
  W(c, "    cnn_real m = x[0];\n    for (int c = 1; c < %d; c++)\n      m = x[c] > m ? x[c] : m;\n", C);
  W(c, "    cnn_real s = 0;\n    for (int c = 0; c < %d; c++)\n      s += (cnn_real)exp((double)(x[c] - m));\n", C);
  W(c, "    const cnn_real lse = m + (cnn_real)log((double)s);\n");
  W(c, "    for (int c = 0; c < %d; c++)\n      y[c] = x[c] - lse;\n  }\n}\n", C);
  int dxm = c->gmode[l->src];
  if (!c->gmode[k + 1] || !dxm)
    return;
  ig_open(c, dxm);
  W(c, "// dx = dy - softmax * sum dy.\n");
  W(c, "CNN_CLONES static void %s_l%d_log_softmax_backward(int n) {\n", P, k);
  W(c, "  for (int i = 0; i < n; i++) {\n");
  W(c, "    const cnn_real *restrict y = %s_a%d + i * %d;\n", P, ob, C);
  W(c, "    const cnn_real *restrict dy = %s_d%d + i * %d;\n", P, ob, C);
  W(c, "    cnn_real *restrict dx = %s + i * %d;\n", c->dx[k], C);
  W(c, "    cnn_real s = 0;\n    for (int c = 0; c < %d; c++)\n      s += dy[c];\n", C);
  W(c, "    for (int c = 0; c < %d; c++)\n      dx[c] = dy[c] - (cnn_real)exp((double)y[c]) * s;\n  }\n}\n", C);
  ig_close(c, dxm);
}

// Monotonic: the scores are the logits before it.
static int log_softmax_lower(InferPlan *p, const Net *net, int i, char *msg, size_t n) {
  (void)p;
  if (i != net->n_layers - 1) {
    snprintf(msg, n, "layer %d: inference code needs log_softmax to be the last layer", i + 1);
    return -1;
  }
  InferOp *op = infer_plan_last_op(p);
  if (op)
    op->last = i;
  return 0;
}

// PyTorch's nn.LogSoftmax.
static void log_softmax_torch(const Layer *l, char *mod, size_t n, char *pre, size_t pren) {
  (void)l, (void)pre, (void)pren;
  snprintf(mod, n, "nn.LogSoftmax(dim=1)");
}

const LayerDef layer_log_softmax = {
    .name = "log_softmax", .shape = log_softmax_shape, .transform = log_softmax_transform, .head = true,
    .fn = "log_softmax", .emit_train = log_softmax_emit, .lower = log_softmax_lower,
    .torch = log_softmax_torch,
};
