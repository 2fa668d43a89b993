// layers.h: what a layer kind is to the compiler. Each kind lives in one
// module, compiler/layer_NAME.c, that defines one LayerDef: its parameters
// and how the checker reads them, its shape rule and costs, its cell in the
// summary table, its training forward/backward and initialization, and its
// lowering to inference ops. The checker, net_infer(), the report and both
// emitters loop over the table in layers.c and never switch on a kind.
//
// Adding a kind: a new enum value at the end of LayerKind (net.h), a new
// compiler/layer_NAME.c defining `const LayerDef layer_NAME`, and its row in
// layers.c.
#ifndef CNNC_LAYERS_H
#define CNNC_LAYERS_H

#include <stdbool.h>
#include <stddef.h>

#include "infer_plan.h"
#include "net.h"
#include "train_emit.h"

// How the checker reads one argument.
typedef enum ParamType {
  P_INT,  // a whole number
  P_NUM,  // any number (3% is 0.03)
  P_BOOL, // true or false
  P_PAIR, // a whole number n (meaning n x n) or HxW, like 10x4
  P_PAD,  // a P_PAIR, or the word `same` or `valid`
} ParamType;

// One parameter of a layer (or of a train setting).
typedef struct ParamSpec {
  const char *name, *alias;
  ParamType type;
  bool required;
} ParamSpec;

#define MAX_PARAMS 8

// One argument's value as written (after block parameters are substituted).
typedef struct ArgValue {
  double num;
  bool is_int, percent, b;
  int ndims;        // 2 for HxW (dims), else 0
  long dims[2];
  const char *word; // P_PAD: "same" or "valid", else NULL
  Span span;
} ArgValue;

// The arguments of one layer call, bound to its ParamSpec table by the
// checker. The arg_* helpers (check.c) read them and report errors at the
// argument's source location.
typedef struct ArgList {
  void *ck;           // the checker's state, for diagnostics
  const char *what;   // the layer's name, for messages
  Span call;          // the call
  ArgValue v[MAX_PARAMS];
  bool has[MAX_PARAMS];
} ArgList;

// Argument `slot` as an int in [min, 1000000], or def when absent; false
// after reporting an error.
bool arg_int(ArgList *a, int slot, const char *pname, int min, int def, int *out);
// A P_PAIR argument as rows x cols (a single number n is n x n).
bool arg_pair(ArgList *a, int slot, const char *pname, int min, int def, int *h, int *w);
// A P_PAD argument into l's pt/pb/pl/pr (symmetric) or l->same.
bool arg_padding(ArgList *a, int slot, Layer *l);
// A P_NUM argument that must lie in [0, 1).
bool arg_prob(ArgList *a, int slot, const char *pname, double *out);

// A tensor of a layer as checkpoints and the exported PyTorch module name it.
typedef struct LayerTensor {
  const char *name;  // under the layer's module, PyTorch's: "weight", "running_mean"
  bool in_state;     // in the state block (BN running statistics), not params
  long offset;       // from the layer's param_off (or state_off)
  int ndim, shape[4];
} LayerTensor;

typedef struct LayerDef {
  const char *name;          // as the language spells it
  bool internal;             // made by the checker, not callable (add)
  const ParamSpec *params;   // its parameters in positional order
  int n_params;
  // Checker: fills l's fields from the bound arguments (NULL: none). false
  // after an error has been reported.
  bool (*args)(ArgList *a, Layer *l);
  // Shape rule: with l->in (and l->in2) set, sets l->out and the padding
  // of `same`, and grows the receptive field with rf_window(). false with a
  // message (no location) in msg.
  bool (*shape)(Layer *l, char *msg, size_t msglen);
  // Trainable values, state values and forward MACs (l->n_params, n_state,
  // macs; NULL: none). false when they overflow a long.
  bool (*costs)(Layer *l);
  // The summary table's Transform cell: "(3x3x1)x16", "BN(16)", ...
  void (*transform)(const Layer *l, char *buf, size_t n);
  bool window;               // the RF column shows this layer's receptive field
  bool head;                 // the loss head: every network ends with one, and only there

  // Training code (train_emit.h): the function name part (NAME_lK_FN_forward),
  // whether forward takes `training`, whether the output may share the
  // input's buffer, the forward/backward functions, and PyTorch's default
  // initialization of its parameters and state (NULL: none).
  const char *fn;
  bool fwd_training;
  bool in_place;
  bool view;                 // in place, no code at all (a reshape: flatten)
  void (*emit_train)(TrainCtx *c, int k);
  // Declarations other layers' functions read too (a pass of this layer
  // that runs inside another's function), printed before every function
  // (NULL: none).
  void (*emit_decls)(TrainCtx *c, int k);
  void (*emit_init)(TrainCtx *c, int k);
  // Values of the im2col matrix one image needs (shared by every layer of
  // the net; NULL or 0: none).
  long (*col_size)(const Layer *l);
  // Values its training kernels may read past the end of an activation or
  // gradient buffer (lanes of a vector beyond the data; NULL or 0: none).
  int (*read_slack)(const Layer *l);
  // The code its training passes run on, for the plan's comments and the
  // bench's per-layer table (NULL: its own loops).
  const char *(*train_path)(const Layer *l, int gsize);

  // Inference: turns layer i into ops of the plan (infer_plan.h), or folds it
  // into the last one. 0, or -1 with a message.
  int (*lower)(InferPlan *p, const Net *net, int i, char *msg, size_t msglen);

  // Export to PyTorch (torch_module.c): the module computing the layer as a
  // Python expression ("nn.ReLU()"), and in pre one to run before it, or ""
  // (nn.ZeroPad2d for uneven 'same' padding). torch_in is the rank it needs
  // (0 any, 2 [N, C], 4 [N, C, H, W]), torch_out the one it gives (0: its input's).
  void (*torch)(const Layer *l, char *mod, size_t n, char *pre, size_t pren);
  int torch_in, torch_out;
  // Its tensors in block order, named as PyTorch's state_dict does; returns
  // how many (at most 4). NULL: none.
  int (*tensors)(const Layer *l, LayerTensor t[4]);
} LayerDef;

// The module of kind k.
const LayerDef *layer_def(LayerKind k);
// The kind called name in the language, or -1.
int layer_find(const char *name);

// Grows l's receptive field by a kh x kw window of stride sh x sw (not on a
// 1x1 input: a layer after gap or flatten already sees everything).
bool rf_window(Layer *l, int kh, int kw, int sh, int sw);

// Output size of a window: (in + pads - k) / stride + 1, or <= 0 if none fits.
int window_out(int in, int k, int stride, int pad_lo, int pad_hi);
// Keras/TensorFlow 'same' padding of one axis: output ceil(in / stride),
// the odd padding row or column at the bottom/right.
void same_padding(int in, int k, int stride, int *lo, int *hi);

// The pooling layers' shared parameters (kernel, stride = kernel), shape
// rule and Transform cell (layer_maxpool.c).
extern const ParamSpec pool_params[];
bool pool_args(ArgList *a, Layer *l);
bool pool_shape(Layer *l, char *msg, size_t n);
void pool_transform(const Layer *l, char *buf, size_t n);
// The pool's PyTorch module: cls(kernel[, stride=...]).
void pool_torch(const Layer *l, const char *cls, char *mod, size_t n);

// Multiplies into *acc unless the product leaves a long's range.
bool mul_ok(long *acc, long x);

// "3x3" or "10x4" style text of a window, square as one number when asked.
void fmt_window(char *buf, size_t n, int h, int w);
// A PyTorch size argument: "3" when h == w, else "(10, 4)".
void fmt_torch_pair(char *buf, size_t n, int h, int w);

#endif
