// infer_plan.c: regroups the net's layers into inference ops, schedules
// their rows, plans the streaming arena and folds BatchNorm and the input
// normalization into the convolutions.
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
  op->src = p->cur;
  op->src2 = l->src2 >= 0 ? p->tensor_op[l->src2] : -1;
  op->in = l->in;
  op->out = l->out;
  bool gap = kind == IOP_GAP;
  op->kh = gap ? l->in.h : l->kh;
  op->kw = gap ? l->in.w : l->kw;
  op->sh = gap || kind == IOP_ADD ? 1 : l->sh;
  op->sw = gap || kind == IOP_ADD ? 1 : l->sw;
  if (kind == IOP_CONV || kind == IOP_MAXPOOL) {
    op->pt = l->pt, op->pb = l->pb, op->pl = l->pl, op->pr = l->pr;
  }
  if (kind == IOP_ADD)
    op->kh = op->kw = 1;
  op->groups = kind == IOP_CONV && l->groups > 0 ? l->groups : 1;
  op->bn = -1;
  return op;
}

InferOp *infer_plan_last_op(InferPlan *p) {
  return p->cur >= 0 ? &p->ops[p->cur] : NULL;
}

InferOp *infer_plan_fold_target(InferPlan *p, const Net *net, int i, char *msg, size_t msglen) {
  InferOp *op = infer_plan_last_op(p);
  const char *what = layer_kind_name(net->layers[i].kind);
  if (!op) {
    snprintf(msg, msglen, "layer %d: inference code folds %s into the op before it; this one reads the input",
             i + 1, what);
    return NULL;
  }
  // Every other reader of this op's output must be a link of the chain that
  // leads here (dropout, flatten, an earlier fold): else it would see the change.
  for (int j = 0; j < net->n_layers; j++) {
    const Layer *r = &net->layers[j];
    if (j == i)
      continue;
    bool reads = (r->src <= i && p->tensor_op[r->src] == p->cur) ||
                 (r->src2 >= 0 && r->src2 <= i && p->tensor_op[r->src2] == p->cur);
    if (reads && (j > i || p->tensor_op[j + 1] != p->cur)) {
      snprintf(msg, msglen, "layer %d: inference code folds %s into the op before it, but layer %d "
                            "reads that op's output too", i + 1, what, j + 1);
      return NULL;
    }
  }
  return op;
}

// Puts the source location of layer i in front of msg.
static void locate(const Net *net, int i, char *msg, size_t msglen) {
  const Span *sp = &net->layers[i].span;
  if (!sp->file)
    return;
  char tmp[512];
  snprintf(tmp, sizeof tmp, "%s", msg);
  snprintf(msg, msglen, "%s:%d:%d: %s", sp->file, sp->line, sp->col, tmp);
}

// Whether an op reads its sources in the shape they were made (HxWxC rows):
// after a flatten of a bigger map only a dense knows the CHW order.
static bool reads_as_made(const InferPlan *p, const Net *net, const InferOp *op) {
  if (op->dense)
    return true;
  for (int s = 0; s < 2; s++) {
    int src = s ? op->src2 : op->src;
    if (s && src < 0)
      continue;
    Shape m = src >= 0 ? p->ops[src].out : net->input;
    if (m.c != op->in.c || m.h != op->in.h || m.w != op->in.w)
      return false;
  }
  return true;
}

// Groups the layers into ops, each kind by its module's lowering; a layer
// that makes no op of its own leaves its output to the op it read.
static int group_ops(const Net *net, InferPlan *p, char *msg, size_t msglen) {
  p->tensor_op[0] = -1;
  for (int i = 0; i < net->n_layers; i++) {
    int before = p->n_ops;
    p->cur = p->tensor_op[net->layers[i].src];
    if (layer_def(net->layers[i].kind)->lower(p, net, i, msg, msglen) < 0) {
      locate(net, i, msg, msglen);
      return -1;
    }
    p->tensor_op[i + 1] = p->n_ops > before ? p->n_ops - 1 : p->cur;
    for (int j = before; j < p->n_ops; j++)
      if ((p->ops[j].src < 0 && p->ops[j].kind != IOP_CONV) || (p->ops[j].kind == IOP_ADD && p->ops[j].src2 < 0)) {
        // The image is raw pixels: only a conv folds the normalization in.
        snprintf(msg, msglen, "layer %d: inference code needs a conv (or dense) to read the input: "
                              "it takes the input normalization", i + 1);
        locate(net, i, msg, msglen);
        return -1;
      } else if (!reads_as_made(p, net, &p->ops[j])) {
        snprintf(msg, msglen, "layer %d: inference code reads a flatten of a map larger than 1x1 "
                              "only with dense", i + 1);
        locate(net, i, msg, msglen);
        return -1;
      }
  }
  if (p->n_ops == 0 || p->tensor_op[net->n_layers] != p->n_ops - 1) {
    snprintf(msg, msglen, "layer 1: inference code needs a conv or dense layer");
    locate(net, 0, msg, msglen);
    return -1;
  }
  // The scores are the last op's output as it made it: a flatten of a map
  // larger than 1x1 after it would give more classes, in CHW order.
  if (p->ops[p->n_ops - 1].out.c != net->layers[net->n_layers - 1].out.c) {
    int i = net->n_layers - 1;
    while (i > 0 && net->layers[i].kind != L_FLATTEN)
      i--;
    snprintf(msg, msglen, "layer %d: inference code needs a dense after a flatten of a map larger than 1x1", i + 1);
    locate(net, i, msg, msglen);
    return -1;
  }
  return 0;
}

// The lowest and highest input row step t of op c reads, clipped to the
// input (an add and a gap read one row per step).
static void step_rows(const InferOp *c, int t, int in_h, int *lo, int *hi) {
  if (c->kind == IOP_GAP || c->kind == IOP_ADD) {
    *lo = *hi = t;
    return;
  }
  *lo = t * c->sh - c->pt;
  *hi = *lo + c->kh - 1;
  if (*lo < 0)
    *lo = 0;
  if (*hi > in_h - 1)
    *hi = in_h - 1;
}

// Output rows an op has made after `done` steps (a gap makes its one row
// at its last step).
static int rows_made(const InferOp *op, int done) {
  return op->kind == IOP_GAP ? done == op->steps : done;
}

// Appends the calls that make the next step of op i to the schedule, after
// those that make the input rows it reads (pulled as the code will run), and
// widens the ring of each op to the rows its consumers still need.
static void schedule_step(InferPlan *p, int i, int *done) {
  InferOp *op = &p->ops[i];
  int srcs[2] = {op->src, op->src2};
  for (int s = 0; s < 2; s++) {
    if (srcs[s] < 0)
      continue;
    int lo, hi;
    step_rows(op, done[i], p->ops[srcs[s]].out.h, &lo, &hi);
    while (rows_made(&p->ops[srcs[s]], done[srcs[s]]) <= hi)
      schedule_step(p, srcs[s], done);
  }
  p->sched[p->n_sched++] = i;
  if (++done[i], op->kind == IOP_GAP)
    return; // a gap's one output row is kept whole
  // Rows of op i from the lowest any unfinished consumer reads next.
  int low = done[i] - 1;
  for (int c = i + 1; c < p->n_ops; c++) {
    const InferOp *co = &p->ops[c];
    if ((co->src != i && co->src2 != i) || done[c] >= co->steps)
      continue;
    int lo, hi;
    step_rows(co, done[c], op->out.h, &lo, &hi);
    if (lo < low)
      low = lo;
  }
  if (done[i] - low > op->rows)
    op->rows = done[i] - low;
}

// Flash bytes of one op's constant tables, as emit_infer.c writes them.
static long op_flash(const InferOp *op, bool int8) {
  if (op->kind != IOP_CONV)
    return 0;
  long oc = op->out.c, nw = oc * (op->in.c / op->groups) * op->kh * op->kw;
  if (!int8)
    return 4 * (nw + oc);
  // weights, int32 bias, then mult+shift (or a float scale for the last op)
  return nw + 4 * oc + (op->out_i32 ? 4 * oc : 5 * oc);
}

int infer_plan_build(const Net *net, bool int8, InferPlan *p, char *msg, size_t msglen) {
  memset(p, 0, sizeof *p);
  p->int8 = int8;
  p->ops = calloc((size_t)net->n_layers + 1, sizeof *p->ops);
  p->tensor_op = calloc((size_t)net->n_layers + 1, sizeof *p->tensor_op);
  if (!p->ops || !p->tensor_op) {
    snprintf(msg, msglen, "out of memory");
    infer_plan_free(p);
    return -1;
  }
  if (group_ops(net, p, msg, msglen) < 0) {
    infer_plan_free(p);
    return -1;
  }
  long total = 0;
  for (int i = 0; i < p->n_ops; i++) {
    InferOp *op = &p->ops[i];
    op->steps = op->kind == IOP_GAP ? op->in.h : op->out.h;
    op->rows = 1;
    total += op->steps;
  }
  int *done = calloc((size_t)p->n_ops, sizeof *done);
  p->sched = malloc(sizeof *p->sched * (size_t)total);
  if (!done || !p->sched) {
    free(done);
    snprintf(msg, msglen, "out of memory");
    infer_plan_free(p);
    return -1;
  }
  int last = p->n_ops - 1;
  while (done[last] < p->ops[last].steps)
    schedule_step(p, last, done);
  free(done);
  long off = 0;
  for (int i = 0; i < p->n_ops; i++) {
    InferOp *op = &p->ops[i];
    if (op->rows > op->out.h)
      op->rows = op->out.h;
    op->row_len = (long)op->out.w * op->out.c;
    op->out_i32 = int8 && i == last && (op->kind == IOP_CONV || op->kind == IOP_GAP || op->kind == IOP_AVGPOOL);
    long elem = !int8 || op->out_i32 ? 4 : 1;
    op->off = off;
    op->bytes = (op->rows * op->row_len * elem + 3) / 4 * 4; // keep the next ring aligned
    if (op->kind == IOP_GAP && int8 && !op->out_i32)
      op->bytes += 4L * op->out.c; // the int32 sums, after the output
    off += op->bytes;
    op->flash = op_flash(op, int8);
    p->flash_bytes += op->flash;
  }
  // The schedule table: one byte per call (two past 255 ops).
  p->sched_bytes = (long)p->n_sched * (p->n_ops > 255 ? 2 : 1);
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
    int oc = op->out.c, ic = op->in.c / op->groups, kh = op->kh, kw = op->kw;
    bool image = op->src < 0;
    size_t per = (size_t)ic * kh * kw;
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
      // x = pixel/(255 std) - mean/std: scale a conv of the image, move the rest into its bias.
      double sum = 0.0;
      for (int c = 0; c < ic; c++)
        for (int y = 0; y < kh; y++)
          for (int x = 0; x < kw; x++) {
            double v = w[((size_t)(o * ic + c) * kh + y) * kw + x] * g;
            if (image) {
              sum += v;
              v /= 255.0 * std;
            }
            op->w[(size_t)o * per + ((size_t)y * kw + x) * ic + c] = v;
          }
      op->b[o] = image ? shift - sum * mean / std : shift;
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
  free(p->sched);
  free(p->tensor_op);
  memset(p, 0, sizeof *p);
}
