// infer_plan.h: the inference plan of a network — its layers regrouped into
// ops that each produce one activation (conv or dense with BatchNorm and
// ReLU folded in, maxpool, avgpool, gap, the add of a residual), the
// row-streaming schedule and memory plan, the folded weights and, for int8,
// their quantization. Shared by emit_infer.c, interp.c, quant.c and
// `cnnc summary --weights`.
//
// Streaming: every op computes its output one row at a time, and keeps only
// the rows its consumers still need (a ring of k rows for one k x k
// consumer; for a residual's input, the rows between what the add and the
// block's first conv read). The schedule is found at compile time by
// pulling rows from the last op, as the code will: so no feature map ever
// exists whole, all rings are live at once, and the arena is their sum.
#ifndef CNNC_INFER_PLAN_H
#define CNNC_INFER_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emit.h"
#include "net.h"

typedef enum InferOpKind { IOP_CONV, IOP_MAXPOOL, IOP_GAP, IOP_AVGPOOL, IOP_ADD } InferOpKind;

typedef struct InferOp {
  InferOpKind kind;
  int first, last;   // net layers folded into this op
  int src, src2;     // the ops it reads (-1: the image); src2 only for add
  Shape in, out;
  // Window (conv, pools): kh x kw, stride sh x sw, zero padding top, bottom,
  // left, right; conv input and output channels split into groups. A dense
  // layer is a conv whose window is its whole input map (its weights
  // [units][c][h][w], flattened CHW, are already a conv's layout).
  int kh, kw, sh, sw, pt, pb, pl, pr, groups;
  bool dense;        // a conv made from a dense layer
  bool relu;         // ReLU fused on its output
  int bn;            // conv: the BatchNorm layer folded into it, or -1
  int steps;         // calls of its row function: out.h rows (gap: one per input row)
  int rows;          // rows of the output kept in the arena
  long row_len;      // values in one output row: out.w * out.c
  long off, bytes;   // its ring: byte offset and size in the arena
  long flash;        // bytes of its constant tables
  // conv, after infer_plan_fold: w[oc][ky][kx][ic] and b[oc], with BN and
  // (first op) the input normalization folded in, in double; wf/bf are the
  // same rounded to the float the generated code holds.
  double *w, *b;
  float *wf, *bf;
  // int8, after quant_calibrate. Activations are symmetric (zero point 0):
  // uint8 when known non-negative, else int8; the last op (conv or gap)
  // leaves int32 accumulators that only the scores function scales.
  double out_scale;  // real value of one output step
  bool out_u8;       // output is uint8 (after ReLU, or pool of such)
  bool out_i32;      // output is the raw int32 accumulator
  int8_t *wq;        // conv weights, per-output-channel scales
  int32_t *bq;       // conv bias in accumulator units
  int32_t *mult;     // requantization: out = (acc * mult) >> shift, rounded
  int8_t *shift;
  double *acc_scale; // real value of one accumulator step, per channel
  int32_t add_m[2];  // add: out = (a * add_m[0] + b * add_m[1]) >> add_shift, rounded
  int add_shift;
} InferOp;

typedef struct InferPlan {
  bool int8;
  InferOp *ops;
  int n_ops;
  int *sched;        // the order of row-function calls (op indices), n_sched long
  int n_sched;
  int *tensor_op;    // while grouping: the op that makes net tensor t (-1: image)
  int cur;           // while grouping: the op the current layer reads (-1: image)
  long arena_bytes;  // the one static arena (= .bss of the inference object)
  long flash_bytes;  // the constant tables (weights, biases, multipliers)
  long sched_bytes;  // the row schedule's table, besides them
  double in_pad;     // the pixel a zero-padded normalized input stands for
} InferPlan;

// The ops and memory plan of net for float or int8 inference. 0, or -1 with
// a message in msg (a layer order the inference code cannot run).
int infer_plan_build(const Net *net, bool int8, InferPlan *p, char *msg, size_t msglen);

// Folds params/state (the checkpoint layout of net.h) into the conv ops:
// BatchNorm (eps 1e-5) into the preceding conv, and the input normalization
// x = (pixel/255 - mean)/std into the first conv. 0, or -1 with a message.
int infer_plan_fold(InferPlan *p, const Net *net, const float *params, const float *state,
                    char *msg, size_t msglen);

// Flash (constant tables) and RAM (arena) bytes, total and per net layer
// (arrays of net->n_layers, may be NULL; an op's flash goes to its first
// layer, the conv, and its RAM to its last).
// Returns 0, or -1 when the net has no inference plan.
int infer_memory(const Net *net, bool int8, long *flash_bytes, long *ram_bytes,
                 long *per_layer_flash, long *per_layer_ram);

// emit_infer without a checkpoint file: the files of net for these params
// and state (checkpoint layout). 0, or 1 after an error message.
int emit_infer_plan(const Net *net, const char *outdir, const float *params, const float *state,
                    const EmitOptions *opt);

// For the layer modules' lowering: a new op made by layer i (its shapes,
// window and inputs), and the op whose output layer i reads (NULL: the
// image).
InferOp *infer_plan_new_op(InferPlan *p, const Layer *l, int i, InferOpKind kind);
InferOp *infer_plan_last_op(InferPlan *p);
// The op a value-changing layer i (batchnorm, relu) may be folded into: the
// op it reads, when nothing else reads that op's output. NULL, with a
// message, when there is none.
InferOp *infer_plan_fold_target(InferPlan *p, const Net *net, int i, char *msg, size_t msglen);

// Frees what build, fold and quantization allocated.
void infer_plan_free(InferPlan *p);

#endif
