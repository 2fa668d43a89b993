// infer_plan.c: regroups the net's layers into inference ops, plans the
// streaming arena and folds BatchNorm and the input normalization into the
// convolutions.
#include "infer_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

#define BN_EPS 1e-5 // PyTorch's BatchNorm2d default

InferOp *infer_plan_new_op(InferPlan *p, const Layer *l, int i, InferOpKind kind) {
  InferOp *op = &p->ops[p->n_ops++];
  memset(op, 0, sizeof *op);
  op->kind = kind;
  op->first = op->last = i;
  op->in = l->in;
  op->out = l->out;
  op->k = kind == IOP_GAP ? l->in.h : l->kh;
  op->stride = kind == IOP_GAP ? 1 : l->sh;
  op->pad = kind == IOP_GAP ? 0 : l->pt;
  op->bn = -1;
  return op;
}

InferOp *infer_plan_last_op(InferPlan *p) {
  return p->n_ops ? &p->ops[p->n_ops - 1] : NULL;
}

// Groups the layers into ops, each kind by its module's lowering.
// Puts the source location of layer i in front of msg.
static void locate(const Net *net, int i, char *msg, size_t msglen) {
  const Span *sp = &net->layers[i].span;
  if (!sp->file)
    return;
  char tmp[512];
  snprintf(tmp, sizeof tmp, "%s", msg);
  snprintf(msg, msglen, "%s:%d:%d: %s", sp->file, sp->line, sp->col, tmp);
}

static int group_ops(const Net *net, InferPlan *p, char *msg, size_t msglen) {
  for (int i = 0; i < net->n_layers; i++)
    if (layer_def(net->layers[i].kind)->lower(p, net, i, msg, msglen) < 0) {
      locate(net, i, msg, msglen);
      return -1;
    }
  if (p->n_ops == 0 || p->ops[0].kind != IOP_CONV) {
    snprintf(msg, msglen, "layer 1: inference code needs a conv as the first layer (it takes the "
                          "input normalization)");
    locate(net, 0, msg, msglen);
    return -1;
  }
  return 0;
}

// Flash bytes of one op's constant tables, as emit_infer.c writes them.
static long op_flash(const InferOp *op, bool int8) {
  if (op->kind != IOP_CONV)
    return 0;
  long oc = op->out.c, nw = oc * op->in.c * op->k * op->k;
  if (!int8)
    return 4 * (nw + oc);
  // weights, int32 bias, then mult+shift (or a float scale for the last op)
  return nw + 4 * oc + (op->out_i32 ? 4 * oc : 5 * oc);
}

int infer_plan_build(const Net *net, bool int8, InferPlan *p, char *msg, size_t msglen) {
  memset(p, 0, sizeof *p);
  p->int8 = int8;
  p->ops = calloc((size_t)net->n_layers + 1, sizeof *p->ops);
  if (!p->ops) {
    snprintf(msg, msglen, "out of memory");
    return -1;
  }
  if (group_ops(net, p, msg, msglen) < 0) {
    infer_plan_free(p);
    return -1;
  }
  long off = 0;
  for (int i = 0; i < p->n_ops; i++) {
    InferOp *op = &p->ops[i];
    bool last = i == p->n_ops - 1;
    const InferOp *next = last ? NULL : &p->ops[i + 1];
    // A consumer with a k-row window needs the last k rows produced.
    op->rows = !next || next->kind == IOP_GAP ? 1 : (next->k < op->out.h ? next->k : op->out.h);
    op->row_len = (long)op->out.w * op->out.c;
    op->out_i32 = int8 && last && op->kind != IOP_MAXPOOL;
    long elem = !int8 || op->out_i32 ? 4 : 1;
    op->off = off;
    op->bytes = (op->rows * op->row_len * elem + 3) / 4 * 4; // keep the next ring aligned
    off += op->bytes;
    op->flash = op_flash(op, int8);
    p->flash_bytes += op->flash;
  }
  p->arena_bytes = off;
  return 0;
}

int infer_plan_fold(InferPlan *p, const Net *net, const float *params, const float *state,
                    char *msg, size_t msglen) {
  double mean = net->train.mean, std = net->train.std;
  if (!(std > 0)) {
    snprintf(msg, msglen, "normalize std must be positive to fold it, not %g", std);
    return -1;
  }
  p->in_pad = 255.0 * mean;
  for (int i = 0; i < p->n_ops; i++) {
    InferOp *op = &p->ops[i];
    if (op->kind != IOP_CONV)
      continue;
    const Layer *l = &net->layers[op->first];
    int oc = op->out.c, ic = op->in.c, k = op->k;
    size_t per = (size_t)ic * k * k;
    op->w = malloc(sizeof *op->w * per * oc);
    op->b = malloc(sizeof *op->b * oc);
    op->wf = malloc(sizeof *op->wf * per * oc);
    op->bf = malloc(sizeof *op->bf * oc);
    if (!op->w || !op->b || !op->wf || !op->bf) {
      snprintf(msg, msglen, "out of memory");
      return -1;
    }
    const float *w = params + l->param_off;
    for (int o = 0; o < oc; o++) {
      double g = 1.0, shift = l->bias ? w[per * oc + o] : 0.0;
      if (op->bn >= 0) {
        const Layer *bn = &net->layers[op->bn];
        double gamma = params[bn->param_off + o], beta = params[bn->param_off + oc + o];
        double rm = state[bn->state_off + o], rv = state[bn->state_off + oc + o];
        g = gamma / sqrt(rv + BN_EPS);
        shift = (shift - rm) * g + beta;
      }
      // x = pixel/(255 std) - mean/std: scale the first conv, move the rest into its bias.
      double sum = 0.0;
      for (int c = 0; c < ic; c++)
        for (int y = 0; y < k; y++)
          for (int x = 0; x < k; x++) {
            double v = w[((size_t)(o * ic + c) * k + y) * k + x] * g;
            if (i == 0) {
              sum += v;
              v /= 255.0 * std;
            }
            op->w[(size_t)o * per + ((size_t)y * k + x) * ic + c] = v;
          }
      op->b[o] = i == 0 ? shift - sum * mean / std : shift;
    }
    for (size_t j = 0; j < per * oc; j++) {
      op->wf[j] = (float)op->w[j];
      if (!isfinite(op->wf[j])) {
        snprintf(msg, msglen, "layer %d: a folded weight is not finite (BatchNorm variance?)",
                 op->first + 1);
        return -1;
      }
    }
    for (int o = 0; o < oc; o++) {
      op->bf[o] = (float)op->b[o];
      if (!isfinite(op->bf[o])) {
        snprintf(msg, msglen, "layer %d: a folded bias is not finite", op->first + 1);
        return -1;
      }
    }
  }
  return 0;
}

int infer_memory(const Net *net, bool int8, long *flash_bytes, long *ram_bytes,
                 long *per_layer_flash, long *per_layer_ram) {
  InferPlan p;
  char msg[256];
  if (infer_plan_build(net, int8, &p, msg, sizeof msg) < 0)
    return -1;
  for (int i = 0; per_layer_flash && i < net->n_layers; i++)
    per_layer_flash[i] = 0;
  for (int i = 0; per_layer_ram && i < net->n_layers; i++)
    per_layer_ram[i] = 0;
  for (int i = 0; i < p.n_ops; i++) {
    if (per_layer_flash)
      per_layer_flash[p.ops[i].first] += p.ops[i].flash;
    if (per_layer_ram)
      per_layer_ram[p.ops[i].last] += p.ops[i].bytes;
  }
  if (flash_bytes)
    *flash_bytes = p.flash_bytes;
  if (ram_bytes)
    *ram_bytes = p.arena_bytes;
  infer_plan_free(&p);
  return 0;
}

void infer_plan_free(InferPlan *p) {
  for (int i = 0; p->ops && i < p->n_ops; i++) {
    InferOp *op = &p->ops[i];
    free(op->w);
    free(op->b);
    free(op->wf);
    free(op->bf);
    free(op->wq);
    free(op->bq);
    free(op->mult);
    free(op->shift);
    free(op->acc_scale);
  }
  free(p->ops);
  memset(p, 0, sizeof *p);
}
