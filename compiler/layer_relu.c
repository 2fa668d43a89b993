// layer_relu.c: relu — max(x, 0). In place in training code (backward reads
// the output's sign); fused into a BatchNorm's sweep or an inference op.
#include <stdio.h>

#include "layers.h"

static void relu_transform(const Layer *l, char *buf, size_t n) {
  (void)l;
  snprintf(buf, n, "ReLU");
}

// ReLU layer k: in place unless another layer reads its input too.
static void relu_emit(TrainCtx *c, int k) {
  const char *P = c->P;
  long sz = c->isize[k];
  int b = c->ibuf[k], ob = c->buf[k + 1];
  layer_comment(c, k);
  if (b == ob) {
    W(c, "// In place: x = max(x, 0).\n");
    W(c, "CNN_CLONES static void %s_l%d_relu_forward(int n) {\n", P, k);
    W(c, "  cnn_real *restrict x = %s_a%d;\n", P, b);
    W(c, "  CNN_OMP(omp parallel for schedule(static))\n");
    W(c, "  for (long j = 0; j < (long)n * %ld; j++)\n", sz);
    W(c, "    x[j] = x[j] > 0 ? x[j] : 0;\n}\n");
  } else {
    W(c, "// y = max(x, 0).\n");
    W(c, "CNN_CLONES static void %s_l%d_relu_forward(int n) {\n", P, k);
    W(c, "  const cnn_real *restrict x = %s_a%d;\n  cnn_real *restrict y = %s_a%d;\n", P, b, P, ob);
    W(c, "  CNN_OMP(omp parallel for schedule(static))\n");
    W(c, "  for (long j = 0; j < (long)n * %ld; j++)\n", sz);
    W(c, "    y[j] = x[j] > 0 ? x[j] : 0;\n}\n");
  }
  int bw = c->gmode[k + 1];
  if (!bw)
    return;
  ig_open(c, bw);
  if (b == ob) {
    W(c, "// In place: dx = dy where the output is positive.\n");
    W(c, "CNN_CLONES static void %s_l%d_relu_backward(int n) {\n", P, k);
    W(c, "  const cnn_real *restrict y = %s_a%d;\n  cnn_real *restrict d = %s_d%d;\n", P, b, P, b);
    W(c, "  CNN_OMP(omp parallel for schedule(static))\n");
    W(c, "  for (long j = 0; j < (long)n * %ld; j++)\n", sz);
    W(c, "    d[j] = y[j] > 0 ? d[j] : 0;\n}\n");
  } else {
    W(c, "// dx = dy where the output is positive.\n");
    W(c, "CNN_CLONES static void %s_l%d_relu_backward(int n) {\n", P, k);
    W(c, "  const cnn_real *restrict y = %s_a%d, *restrict dy = %s_d%d;\n", P, ob, P, ob);
    W(c, "  cnn_real *restrict dx = %s;\n", c->dx[k]);
    W(c, "  CNN_OMP(omp parallel for schedule(static))\n");
    W(c, "  for (long j = 0; j < (long)n * %ld; j++)\n", sz);
    W(c, "    dx[j] = y[j] > 0 ? dy[j] : 0;\n}\n");
  }
  ig_close(c, bw);
}

// Fused on the output of the op before it.
// Folds into the op it reads, on that op's output.
static int relu_lower(InferPlan *p, const Net *net, int i, char *msg, size_t n) {
  InferOp *op = infer_plan_fold_target(p, net, i, msg, n);
  if (!op)
    return -1;
  op->relu = true;
  op->last = i;
  return 0;
}

// PyTorch's nn.ReLU.
static void relu_torch(const Layer *l, char *mod, size_t n, char *pre, size_t pren) {
  (void)l, (void)pre, (void)pren;
  snprintf(mod, n, "nn.ReLU()");
}

const LayerDef layer_relu = {
    .name = "relu", .transform = relu_transform,
    .fn = "relu", .in_place = true, .emit_train = relu_emit, .lower = relu_lower,
    .torch = relu_torch,
};
