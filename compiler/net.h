// net.h: the checked network — a flat, typed array of layers with fixed
// shapes. This is the IR every back end (report, emit_train, emit_infer)
// reads; nothing after the checker looks at the AST.
#ifndef CNNC_NET_H
#define CNNC_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// A place in a source file, for diagnostics. Lines and columns count from 1;
// len is the number of bytes the caret line underlines.
typedef struct Span {
  const char *file;
  int line, col, len;
} Span;

// The layer kinds. Each has one module, compiler/layer_NAME.c, with all the
// compiler knows of it (layers.h); this enum and the table in layers.c are
// the only lists. The order is part of the shape hash of checkpoints: add
// new kinds at the end.
typedef enum LayerKind {
  L_CONV,
  L_BATCHNORM,
  L_DROPOUT,
  L_RELU,
  L_MAXPOOL,
  L_GAP,
  L_LOG_SOFTMAX,
  L_AVGPOOL,
  L_FLATTEN,
  L_DENSE,
  L_ADD,
  L_N_KINDS
} LayerKind;

// An activation shape: channels, height, width (one image).
typedef struct Shape {
  int c, h, w;
} Shape;

typedef struct Layer {
  LayerKind kind;
  Span span;        // the call in the source that made this layer
  const char *block; // name of the user block it was expanded from, or NULL

  // The tensors it reads. Tensor t is the output of layer t - 1 (tensor 0 is
  // the network input); a chain reads src = its own index. add reads src2 too.
  int src, src2;
  int first;        // add: the index of its residual's first layer (the body's first)
  Shape in, out;    // in: the shape of tensor src
  Shape in2;        // add: the shape of tensor src2

  // Windows (conv, maxpool, avgpool): kh x kw, stride sh x sw, zero padding
  // top, bottom, left, right (Keras 'same' puts the odd one bottom/right).
  int kh, kw, sh, sw;
  int pt, pb, pl, pr;
  bool same;        // padding written as `same` (for the report)
  int groups;       // conv: input and output channels split into groups
  int units;        // conv, dense: output channels as written
  bool bias;        // conv, dense
  double p;         // dropout probability

  // Filled by net_infer(): costs and the receptive field after this layer.
  long n_params;   // trainable values
  long n_state;    // non-trainable values (BN running mean and var)
  long macs;       // multiply-accumulates per image, forward
  long act_size;   // out.c * out.h * out.w
  int rf, jump;    // receptive field and jump (input pixels) after it, rows
  int rf_w, jump_w; // the same across columns

  // Offsets into the network's parameter and state blocks. Layout, shared
  // by every back end and by checkpoints:
  //   conv:      weight [out.c][in.c / groups][kh][kw], then bias [out.c] if bias
  //   dense:     weight [out.c][in.c] (PyTorch's Linear), then bias [out.c]
  //   batchnorm: gamma [c], beta [c];   state: running_mean [c], running_var [c]
  size_t param_off, state_off;
} Layer;

typedef enum SchedKind { SCHED_CONSTANT, SCHED_STEP, SCHED_ONECYCLE } SchedKind;

// The `train { ... }` section, with PyTorch's defaults for what is unsaid.
typedef struct TrainSpec {
  int epochs;          // 20
  int batch;           // 64
  uint64_t seed;       // 1
  // optimizer = sgd(lr, momentum, nesterov, weight_decay, dampening)
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
  // schedule = constant | step(step_size, gamma) | onecycle(max_lr, ...)
  SchedKind sched;
  int step_size;        // epochs between decays
  double gamma;         // 0.1
  double max_lr;        // one-cycle peak; torch.optim.lr_scheduler.OneCycleLR
  double pct_start;     // 0.3
  double div_factor;    // 25
  double final_div_factor; // 1e4
  bool cycle_momentum;  // true
  double base_momentum, max_momentum; // 0.85, 0.95
  // normalize(mean, std): x = (pixel/255 - mean) / std
  double mean, std;     // 0, 1
  // augment(rotate, shift): random rotation in degrees and shift in pixels
  double rotate, shift; // 0, 0
  // label_smoothing = eps: the loss of torch.nn.CrossEntropyLoss(
  // label_smoothing=eps), (1 - eps) * NLL + eps * mean over classes of -log p
  double label_smoothing; // 0
} TrainSpec;

typedef struct Net {
  char *name;
  Shape input;
  Layer *layers;
  int n_layers;
  int classes;          // out.c of the last layer; output is 1x1xclasses
  TrainSpec train;
  bool has_train;       // the source had a train section
  long n_params, n_state, macs;
  long max_act;         // largest activation, in values, one image
  uint64_t shape_hash;  // net_hash(): ties checkpoints to this net's shapes
  char *strings;        // owns Layer.block and Span.file strings (cnnc_load_*)
} Net;

// Default train settings (PyTorch's defaults plus the reference's recipe).
void train_spec_default(TrainSpec *t);

// Infers every layer's shapes, costs, receptive field and block offsets from
// net->input and each layer's own arguments (kind, k, stride, pad, bias, p,
// and out.c for conv), then the totals and shape hash. On a shape error it
// returns the index of the offending layer and writes a message (without
// location) to msg; on success it returns -1.
int net_infer(Net *net, char *msg, size_t msglen);

// The first BatchNorm that would see a single value per channel (a 1x1 map)
// in batches of `batch` images, or -1: its variance is 0, it cannot learn.
int net_single_value_bn(const Net *net, int batch);

// FNV-1a over the layer kinds, their arguments and shapes.
uint64_t net_hash(const Net *net);

// A layer kind's name as written in the language ("conv", "batchnorm", ...).
const char *layer_kind_name(LayerKind k);

void net_free(Net *net);

#endif
