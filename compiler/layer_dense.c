// layer_dense.c: dense(units, bias = true) — PyTorch's Linear on a flat
// input (1x1xN, after flatten or gap): y = W x + b, W [units][N].
#include <stdio.h>

#include "layers.h"

static const ParamSpec dense_params[] = {{"units", NULL, P_INT, true}, {"bias", NULL, P_BOOL, false}};

static bool dense_args(ArgList *a, Layer *l) {
  l->bias = a->has[1] ? a->v[1].b : true;
  return arg_int(a, 0, "units", 1, 1, &l->units);
}

static bool dense_shape(Layer *l, char *msg, size_t n) {
  if (l->in.h != 1 || l->in.w != 1) {
    snprintf(msg, n, "dense needs a flat input (1x1xN), but its input is %dx%dx%d (add flatten or gap first)",
             l->in.h, l->in.w, l->in.c);
    return false;
  }
  l->out = (Shape){l->units, 1, 1};
  return true;
}

static bool dense_costs(Layer *l) {
  long w = l->out.c;
  if (!mul_ok(&w, l->in.c))
    return false;
  l->n_params = w + (l->bias ? l->out.c : 0);
  l->macs = w;
  return true;
}

static void dense_transform(const Layer *l, char *buf, size_t n) {
  snprintf(buf, n, "Dense(%d->%d)%s", l->in.c, l->out.c, l->bias ? " +bias" : "");
}

// The path of the bench's table: a dense layer is one GEMM over the whole
// batch, the shape BLAS is built for.
static const char *dense_path(const Layer *l, int gsize) {
  (void)gsize;
  (void)l;
  return "cblas GEMM over the batch (forward, input and weight gradient)";
}

// Dense layer k: one GEMM over the batch each way. With one BLAS thread the
// sums are in a fixed order, whatever the number of OpenMP threads.
static void dense_emit(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int N = l->in.c, U = l->out.c;
  long off = (long)l->param_off;
  int ib = c->ibuf[k], ob = c->buf[k + 1];
  layer_comment(c, k);
  W(c, "// y[n][%d] = x[n][%d] * W^T%s.\n", U, N, l->bias ? " + b" : "");
  W(c, "CNN_CLONES static void %s_l%d_dense_forward(int n) {\n", P, k);
  W(c, "  const cnn_real *restrict w = %s_params + %ld;\n", P, off);
  W(c, "  cnn_real *restrict y = %s_a%d;\n", P, ob);
  W(c, "  GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, n, %d, %d, 1, %s_a%d, %d, w, %d, 0, y, %d);\n", U, N, P, ib, N,
    N, U);
  if (l->bias) {
    W(c, "  const cnn_real *restrict b = %s_params + %ld;\n", P, off + (long)U * N);
    W(c, "  for (int i = 0; i < n; i++)\n    for (int u = 0; u < %d; u++)\n      y[i * %d + u] += b[u];\n", U, U);
  }
  W(c, "}\n");
  int bw = c->gmode[k + 1], dxm = c->gmode[l->src];
  if (!bw)
    return;
  ig_open(c, bw);
  W(c, "// dW = dy^T * x%s%s.\n", l->bias ? ", db = sum dy" : "", dxm ? ", dx = dy * W" : "");
  W(c, "CNN_CLONES static void %s_l%d_dense_backward(int n) {\n", P, k);
  W(c, "  const cnn_real *restrict dy = %s_d%d;\n", P, ob);
  W(c, "  GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, %d, %d, n, 1, dy, %d, %s_a%d, %d, 0, %s_grads + %ld, %d);\n",
    U, N, U, P, ib, N, P, off, N);
  if (l->bias) {
    W(c, "  for (int u = 0; u < %d; u++) {\n    cnn_real s = 0;\n", U);
    W(c, "    for (int i = 0; i < n; i++)\n      s += dy[i * %d + u];\n", U);
    W(c, "    %s_grads[%ld + u] = s;\n  }\n", P, off + (long)U * N);
  }
  if (dxm) {
    ig_open(c, dxm);
    W(c, "  GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, %d, %d, 1, dy, %d, %s_params + %ld, %d, 0, %s, %d);\n",
      N, U, U, P, off, N, c->dx[k], N);
    ig_close(c, dxm);
  }
  W(c, "}\n");
  ig_close(c, bw);
}

// PyTorch's Linear init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
static void dense_init(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  emit_uniform_init(c, k, "dense", l->in.c, (long)l->in.c * l->out.c + (l->bias ? l->out.c : 0),
                    (long)l->param_off);
}

// A conv whose window is the whole map it reads: after flatten that map is
// still HxWxC in the plan, and the weights [units][c][h][w] of the CHW
// flattening are the conv layout [oc][ic][kh][kw] as they are.
static int dense_lower(InferPlan *p, const Net *net, int i, char *msg, size_t n) {
  (void)msg, (void)n;
  const InferOp *src = infer_plan_last_op(p);
  InferOp *op = infer_plan_new_op(p, &net->layers[i], i, IOP_CONV);
  op->in = src ? src->out : net->input;
  op->kh = op->in.h, op->kw = op->in.w;
  op->sh = op->sw = 1;
  op->dense = true;
  return 0;
}

// PyTorch's Linear, on [N, C].
static void dense_torch(const Layer *l, char *mod, size_t n, char *pre, size_t pren) {
  (void)pre, (void)pren;
  snprintf(mod, n, "nn.Linear(%d, %d%s)", l->in.c, l->out.c, l->bias ? "" : ", bias=False");
}

// weight [out][in], then bias [out]: PyTorch's layout.
static int dense_tensors(const Layer *l, LayerTensor t[4]) {
  t[0] = (LayerTensor){"weight", false, 0, 2, {l->out.c, l->in.c}};
  t[1] = (LayerTensor){"bias", false, (long)l->out.c * l->in.c, 1, {l->out.c}};
  return l->bias ? 2 : 1;
}

const LayerDef layer_dense = {
    .name = "dense", .params = dense_params, .n_params = 2,
    .args = dense_args, .shape = dense_shape, .costs = dense_costs, .transform = dense_transform,
    .fn = "dense", .emit_train = dense_emit, .emit_init = dense_init, .train_path = dense_path, .lower = dense_lower,
    .torch = dense_torch, .torch_in = 2, .torch_out = 2, .tensors = dense_tensors,
};
