// infer_plan.h: the inference plan of a network — its layers regrouped into
// ops that each produce one activation (conv with BatchNorm and ReLU folded
// in, maxpool, gap), the row-streaming memory plan, the folded weights and,
// for int8, their quantization. Shared by emit_infer.c, interp.c, quant.c
// and `cnnc summary --weights`.
//
// Streaming: every op computes its output one row at a time, and keeps only
// the rows its consumer still needs (a ring of k rows for a k x k consumer,
// one row before a gap). So no feature map ever exists whole and all rings
// are live at once: the arena is their sum.
#ifndef CNNC_INFER_PLAN_H
#define CNNC_INFER_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emit.h"
#include "net.h"

typedef enum InferOpKind { IOP_CONV, IOP_MAXPOOL, IOP_GAP } InferOpKind;

typedef struct InferOp {
  InferOpKind kind;
  int first, last;   // net layers folded into this op
  Shape in, out;
  int k, stride, pad;
  bool relu;         // ReLU fused on its output
  int bn;            // conv: the BatchNorm layer folded into it, or -1
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
} InferOp;

typedef struct InferPlan {
  bool int8;
  InferOp *ops;
  int n_ops;
  long arena_bytes;  // the one static arena (= .bss of the inference object)
  long flash_bytes;  // the constant tables (weights, biases, multipliers)
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

// For the layer modules' lowering: a new op made by layer i (its shapes and
// square window), and the last op so far (NULL: none).
InferOp *infer_plan_new_op(InferPlan *p, const Layer *l, int i, InferOpKind kind);
InferOp *infer_plan_last_op(InferPlan *p);

// Frees what build, fold and quantization allocated.
void infer_plan_free(InferPlan *p);

#endif
