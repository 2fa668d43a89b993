// train_emit.h: the training-code plan and the helpers every layer module's
// training emitter shares. The plan (train_plan.c) decides, before anything
// is printed, each tensor's buffer (in-place layers share their input's),
// which gradients exist, which layers run fused into another's function,
// and where a gradient is added to one a later consumer already wrote.
// The printer (emit_train.c) writes the file around the layers' functions.
#ifndef CNNC_TRAIN_EMIT_H
#define CNNC_TRAIN_EMIT_H

#include <stdio.h>

#include "net.h"

typedef struct TrainCtx {
  FILE *f;
  const Net *net;
  const char *P;   // symbol prefix: the network's name
  int batch, ngroup, gsize;
  int L;
  // Tensors (0: input, k + 1: output of layer k).
  long *tsize;     // values per image of tensor t
  int *buf;        // activation buffer of tensor t (in-place layers share)
  int *gmode;      // grad of tensor t: 0 none, 1 always, 2 under CNN_INPUT_GRAD
  int *bufg;       // grad mode of each buffer (max over its tensors)
  int *nuse;       // consumers of tensor t
  // Layers.
  int *ibuf;       // buffer of layer k's input tensor (src)
  long *isize;     // its values per image
  int *owner;      // layer whose function runs layer k (k itself unless fused)
  int *bn_stats;   // BN layer k: the conv that sums its statistics, or -1
  int *bn_dsums;   // BN layer k: the conv or max-pool whose backward sums its gradient's, or -1
  int *bn_sweep;   // BN layer k: the conv or max-pool whose forward runs its sweep per image, or -1
  int *bn_dx;      // BN layer k: the conv whose backward runs its dx per image, or -1
  int *fwd_train;  // layer k's forward takes `training`
  // Input gradients: the buffer name layer k's backward writes for src and
  // src2 ("NAME_d3"), and whether that is the scratch buffer, added to the
  // tensor's gradient after the call (another consumer wrote it first).
  char (*dx)[80], (*dx2)[80];
  int *dx_acc, *dx2_acc;
  long scratch;    // values per image of the scratch gradient (0: none)
  int scratch_mode; // 1: some use runs always; 2: all under CNN_INPUT_GRAD
  long maxcol;     // largest im2col matrix of one image
  int slack;       // values every activation and gradient buffer has past
                   // its end for kernels reading whole vectors (0: none)
  int has_dropout;
  int init_rng;    // set when an init has drawn from the generator
} TrainCtx;

// Whether conv l runs on the generated direct kernels (layer_conv.c).
int conv_is_direct(const Layer *l);

// Whether direct conv k runs the dx of the BatchNorm after it image by
// image at every vector width, straight into its own layouts or into a
// one-image scratch (layer_conv.c): the BatchNorm's dx buffer is then
// never used.
int conv_takes_bn_dx(const TrainCtx *c, int k);

// BatchNorm layer k's passes for image i (in scope), run inside a conv's
// function (layer_batchnorm.c): its forward's normalizing sweep (with the
// dropout and ReLU fused into it; group g and `training` in scope); its
// backward's first pass, the gradient at its group's output masked in place
// (ReLU, dropout) and its per-channel sums of dy and dy * xhat; and its
// input gradient, once its backward has set the factors.
void bn_emit_sweep(TrainCtx *c, int k, const char *ind);
// The BatchNorm b that role (bn_sweep, bn_dsums or bn_dx) gives to layer
// k (role[b] == k), or -1: a layer runs at most one of each kind.
int bn_run_by(const TrainCtx *c, const int *role, int k);
// Each sweep that layer j runs (bn_sweep), in its per-image loop.
void bn_emit_sweeps_for(TrainCtx *c, int j);
void bn_emit_dy_sums(TrainCtx *c, int k, const char *ind);
// The same, with dy already masked (masked != 0) by the layer that wrote it.
void bn_emit_dy_sums_of(TrainCtx *c, int k, int masked, const char *ind);
// The factor of BatchNorm k's mask (its ReLU's and dropout's) as an
// expression of y, a value of its output, into buf; 0 when there is no such
// expression (a dropout alone keeps its mask in a buffer).
int bn_dy_mask(const TrainCtx *c, int k, const char *y, char *buf, size_t n);
void bn_emit_dx(TrainCtx *c, int k, const char *ind);
// bn_emit_dx into one image's buffer dst (an expression) instead, or into
// the BatchNorm's dx buffer when dst is NULL.
void bn_emit_dx_to(TrainCtx *c, int k, const char *dst, const char *ind);

// A layout the conv before a BatchNorm reads its dy in: buffer `name`,
// planes `plane` values apart, rows `row` apart, value (0, 0) at `off`;
// under #ifdef CNN_INPUT_GRAD when ig is 2.
typedef struct BnDxDest {
  const char *name;
  long plane, off;
  int row, ig;
} BnDxDest;

// bn_emit_dx, written straight into the n layouts of dst (each value once
// computed) instead of the BatchNorm's dx buffer, which then stays unused.
void bn_emit_dx_into(TrainCtx *c, int k, const BnDxDest *dst, int n, const char *ind);

// Builds the plan of net for a batch; 0, or -1 out of memory.
int train_plan(TrainCtx *c, const Net *net, int batch);
void train_plan_free(TrainCtx *c);

// printf into the output file.
void train_w(TrainCtx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define W train_w

// Opens "#ifdef CNN_INPUT_GRAD" when mode is 2 (code only the input gradient
// needs); ig_close closes it.
void ig_open(TrainCtx *c, int mode);
void ig_close(TrainCtx *c, int mode);

// The per-group image loop: group_begin opens the parallel loop over groups,
// images_begin the loop over group g's images; group_end closes both.
void group_begin(TrainCtx *c);
void images_begin(TrainCtx *c);
void group_end(TrainCtx *c);

// The one-line shape comment over layer k's functions.
void layer_comment(TrainCtx *c, int k);

// The sum of expr over one output plane of l into double s (and of expr2
// into sq), in eight fixed lanes, so the order never depends on threads.
void emit_plane_sum(TrainCtx *c, const Layer *l, const char *expr, const char *expr2, const char *ind);

// Image i's per-channel sums for BN layer bk's partials: of x and x^2, or
// (dy not NULL) of dy and dy * xhat; x and dy are the image's addresses.
void emit_chan_sums(TrainCtx *c, int bk, const char *x, const char *dy, const char *ind);

// Declares BN layer k's per-image partial sums.
void emit_bn_partials(TrainCtx *c, int k);

// Adds the per-group partial gradients NAME[g][..] of layer k, in group
// order, into grads + off.
void emit_group_sum(TrainCtx *c, int k, const char *name, char var, long count, long off);

// Dropout layer k's constants (keep threshold and scale) and its keep test
// for value index idx.
void emit_drop_consts(TrainCtx *c, int k);
void emit_keep_expr(TrainCtx *c, int k, const char *idx);

// PyTorch's default init of n values at params + off: U(-1/sqrt(fan_in),
// 1/sqrt(fan_in)) (kaiming_uniform_ with a = sqrt(5), and the bias rule).
void emit_uniform_init(TrainCtx *c, int k, const char *what, long fan, long n, long off);

#endif
