// layer_add.c: the join of a residual block — its body's output plus its
// shortcut's (the block's input, or the shortcut's layers). Written in the
// language as `residual { ... } [shortcut { ... }]`; check.c makes the add.
#include <stdio.h>

#include "layers.h"

static bool add_shape(Layer *l, char *msg, size_t n) {
  if (l->in.c != l->in2.c || l->in.h != l->in2.h || l->in.w != l->in2.w) {
    snprintf(msg, n, "residual add of different shapes: the body gives %dx%dx%d, the shortcut %dx%dx%d", l->in.h,
             l->in.w, l->in.c, l->in2.h, l->in2.w, l->in2.c);
    return false;
  }
  l->out = l->in;
  return true;
}

static void add_transform(const Layer *l, char *buf, size_t n) {
  (void)l;
  snprintf(buf, n, "Add");
}

// y = a + b; both inputs get dy.
static void add_emit(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  long sz = c->tsize[k + 1];
  int ob = c->buf[k + 1];
  layer_comment(c, k);
  W(c, "// y = x + (tensor %d).\n", l->src2);
  W(c, "CNN_CLONES static void %s_l%d_add_forward(int n) {\n", P, k);
  W(c, "  const cnn_real *restrict a = %s_a%d, *restrict b = %s_a%d;\n", P, c->ibuf[k], P, c->buf[l->src2]);
  W(c, "  cnn_real *restrict y = %s_a%d;\n", P, ob);
  W(c, "  CNN_OMP(omp parallel for schedule(static))\n");
  W(c, "  for (long j = 0; j < (long)n * %ld; j++)\n    y[j] = a[j] + b[j];\n}\n", sz);
  if (!c->gmode[k + 1])
    return;
  ig_open(c, c->gmode[k + 1]);
  W(c, "// dx = dy for both inputs.\n");
  W(c, "CNN_CLONES static void %s_l%d_add_backward(int n) {\n", P, k);
  for (int s = 0; s < 2; s++) {
    int m = c->gmode[s ? l->src2 : l->src];
    if (m == 2 && c->gmode[k + 1] == 1)
      ig_open(c, 2);
    W(c, "  memcpy(%s, %s_d%d, (size_t)n * %ld * sizeof(cnn_real));\n", s ? c->dx2[k] : c->dx[k], P, ob, sz);
    if (m == 2 && c->gmode[k + 1] == 1)
      ig_close(c, 2);
  }
  W(c, "}\n");
  ig_close(c, c->gmode[k + 1]);
}

// The add of a residual: an op of its own, reading the block's output and
// the shortcut's (or the block's input) row by row.
static int add_lower(InferPlan *p, const Net *net, int i, char *msg, size_t n) {
  (void)msg, (void)n;
  infer_plan_new_op(p, &net->layers[i], i, IOP_ADD);
  return 0;
}

const LayerDef layer_add = {
    .name = "add", .internal = true, .shape = add_shape, .transform = add_transform,
    .fn = "add", .emit_train = add_emit, .lower = add_lower,
};
