// layer_flatten.c: flatten — the CxHxW map as one vector of C*H*W values in
// PyTorch's order (channel, then row, then column), a 1x1 map for dense.
// Training activations are already stored that way: no code, one buffer.
#include <stdio.h>

#include "layers.h"

static bool flatten_shape(Layer *l, char *msg, size_t n) {
  long v = (long)l->in.c * l->in.h * l->in.w;
  if (v > 1000000000L) {
    snprintf(msg, n, "flatten of %dx%dx%d gives %ld values, more than 1,000,000,000", l->in.h, l->in.w, l->in.c,
             v);
    return false;
  }
  l->out = (Shape){(int)v, 1, 1};
  // What comes after sees the whole map, as after gap.
  return rf_window(l, l->in.h, l->in.w, l->in.h, l->in.w);
}

static void flatten_transform(const Layer *l, char *buf, size_t n) {
  snprintf(buf, n, "Flatten(CHW %d)", l->out.c);
}

// Only when another layer also reads the input (no shared buffer): copies.
static void flatten_emit(TrainCtx *c, int k) {
  const char *P = c->P;
  int ib = c->ibuf[k], ob = c->buf[k + 1];
  if (ib == ob)
    return;
  layer_comment(c, k);
  W(c, "CNN_CLONES static void %s_l%d_flatten_forward(int n) {\n", P, k);
  W(c, "  memcpy(%s_a%d, %s_a%d, (size_t)n * %ld * sizeof(cnn_real));\n}\n", P, ob, P, ib, c->isize[k]);
  ig_open(c, c->gmode[k + 1]);
  W(c, "CNN_CLONES static void %s_l%d_flatten_backward(int n) {\n", P, k);
  W(c, "  memcpy(%s, %s_d%d, (size_t)n * %ld * sizeof(cnn_real));\n}\n", c->dx[k], P, ob, c->isize[k]);
  ig_close(c, c->gmode[k + 1]);
}

// No op: the plan keeps the map HxWxC and the dense after it reads it whole.
static int flatten_lower(InferPlan *p, const Net *net, int i, char *msg, size_t n) {
  (void)net, (void)msg, (void)n;
  InferOp *op = infer_plan_last_op(p);
  if (op)
    op->last = i;
  return 0;
}

// PyTorch's nn.Flatten.
static void flatten_torch(const Layer *l, char *mod, size_t n, char *pre, size_t pren) {
  (void)l, (void)pre, (void)pren;
  snprintf(mod, n, "nn.Flatten()");
}

const LayerDef layer_flatten = {
    .name = "flatten", .shape = flatten_shape, .transform = flatten_transform, .window = true,
    .fn = "flatten", .in_place = true, .view = true, .emit_train = flatten_emit, .lower = flatten_lower,
    .torch = flatten_torch, .torch_out = 2,
};
