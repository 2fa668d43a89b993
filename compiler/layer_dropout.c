// layer_dropout.c: dropout(p) — inverted dropout as PyTorch's Dropout: in
// training a value is kept with probability 1 - p and scaled by 1 / (1 - p);
// identity in eval and at inference. After a BatchNorm it runs inside the
// BN's sweep (layer_batchnorm.c); this is the standalone form.
#include <stdio.h>

#include "layers.h"

static const ParamSpec dropout_params[] = {{"p", NULL, P_NUM, true}};

static bool dropout_args(ArgList *a, Layer *l) {
  return arg_prob(a, 0, "dropout probability", &l->p);
}

static void dropout_transform(const Layer *l, char *buf, size_t n) {
  snprintf(buf, n, "Dropout(%g%%)", l->p * 100);
}

// Inverted dropout layer k on its own (not after a BatchNorm): in place
// unless another layer reads its input too.
static void dropout_emit(TrainCtx *c, int k) {
  const char *P = c->P;
  long sz = c->isize[k];
  int b = c->ibuf[k], ob = c->buf[k + 1];
  layer_comment(c, k);
  emit_drop_consts(c, k);
  int bw = c->gmode[k + 1];
  ig_open(c, bw);
  W(c, "static uint8_t %s_l%d_keep[BATCH * %ld];\n", P, k, sz);
  ig_close(c, bw);
  if (b == ob)
    W(c, "// In place; identity in eval. Image i's mask hashes its value indices with\n"
         "// keys of (seed, layer %d, i), so it does not depend on the thread count.\n", k);
  else
    W(c, "// Identity in eval. Image i's mask hashes its value indices with keys of\n"
         "// (seed, layer %d, i), so it does not depend on the thread count.\n", k);
  W(c, "CNN_CLONES static void %s_l%d_dropout_forward(int n, int training) {\n", P, k);
  if (b == ob)
    W(c, "  if (!training)\n    return;\n");
  else
    W(c, "  if (!training) {\n    memcpy(%s_a%d, %s_a%d, (size_t)n * %ld * sizeof(cnn_real));\n    return;\n  }\n", P,
      ob, P, b, sz);
  group_begin(c);
  images_begin(c);
  W(c, "      uint32_t key[2];\n      %s_drop_keys(%d, i, key);\n", P, k);
  W(c, "      cnn_real *restrict x = %s_a%d + (size_t)i * %ld;\n", P, b, sz);
  if (b != ob)
    W(c, "      cnn_real *restrict y = %s_a%d + (size_t)i * %ld;\n", P, ob, sz);
  if (bw) {
    ig_open(c, bw);
    W(c, "      uint8_t *restrict m = %s_l%d_keep + (size_t)i * %ld;\n", P, k, sz);
    ig_close(c, bw);
  }
  W(c, "      for (int j = 0; j < %ld; j++) {\n", sz);
  W(c, "        const int keep = ");
  emit_keep_expr(c, k, "j");
  W(c, ";\n");
  if (bw) {
    ig_open(c, bw);
    W(c, "        m[j] = (uint8_t)keep;\n");
    ig_close(c, bw);
  }
  W(c, "        %s[j] = keep ? x[j] * L%d_SCALE : 0;\n      }\n", b == ob ? "x" : "y", k);
  group_end(c);
  W(c, "}\n");
  if (!bw)
    return;
  ig_open(c, bw);
  if (b == ob) {
    W(c, "// In place: dx = dy * mask / (1 - p).\n");
    W(c, "CNN_CLONES static void %s_l%d_dropout_backward(int n) {\n", P, k);
    W(c, "  cnn_real *restrict d = %s_d%d;\n  const uint8_t *restrict m = %s_l%d_keep;\n", P, b, P, k);
    W(c, "  CNN_OMP(omp parallel for schedule(static))\n");
    W(c, "  for (long j = 0; j < (long)n * %ld; j++)\n", sz);
    W(c, "    d[j] = m[j] ? d[j] * L%d_SCALE : 0;\n}\n", k);
  } else {
    W(c, "// dx = dy * mask / (1 - p).\n");
    W(c, "CNN_CLONES static void %s_l%d_dropout_backward(int n) {\n", P, k);
    W(c, "  const cnn_real *restrict dy = %s_d%d;\n  cnn_real *restrict dx = %s;\n", P, ob, c->dx[k]);
    W(c, "  const uint8_t *restrict m = %s_l%d_keep;\n", P, k);
    W(c, "  CNN_OMP(omp parallel for schedule(static))\n");
    W(c, "  for (long j = 0; j < (long)n * %ld; j++)\n", sz);
    W(c, "    dx[j] = m[j] ? dy[j] * L%d_SCALE : 0;\n}\n", k);
  }
  ig_close(c, bw);
}

// Identity at inference.
static int dropout_lower(InferPlan *p, const Net *net, int i, char *msg, size_t n) {
  (void)net, (void)msg, (void)n;
  InferOp *op = infer_plan_last_op(p);
  if (op)
    op->last = i;
  return 0;
}

// PyTorch's Dropout (its own masks: the same rate, not the same draws).
static void dropout_torch(const Layer *l, char *mod, size_t n, char *pre, size_t pren) {
  (void)pre, (void)pren;
  snprintf(mod, n, "nn.Dropout(%.6g)", l->p);
}

const LayerDef layer_dropout = {
    .name = "dropout", .params = dropout_params, .n_params = 1,
    .args = dropout_args, .transform = dropout_transform,
    .fn = "dropout", .fwd_training = true, .in_place = true, .emit_train = dropout_emit, .lower = dropout_lower,
    .torch = dropout_torch,
};
