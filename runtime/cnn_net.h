// cnn_net.h: where the runtime and a generated network meet. The runtime
// drives any network through this descriptor without knowing its layers;
// the generated code fills it and never opens a file or picks an optimizer.
#ifndef CNN_NET_H
#define CNN_NET_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

// The scalar of generated training code: float, or double for gradient checks
// (build the generated file with -DCNN_REAL=double).
#ifndef CNN_REAL
#define CNN_REAL float
#endif
typedef CNN_REAL cnn_real;

typedef enum cnn_sched_kind {
  CNN_SCHED_CONSTANT,
  CNN_SCHED_STEP,
  CNN_SCHED_ONECYCLE,
} cnn_sched_kind;

// The network's `train { ... }` section, as data. PyTorch names and defaults.
typedef struct cnn_train_config {
  int epochs, batch;
  uint64_t seed;
  double lr, momentum, dampening, weight_decay;
  int nesterov;
  cnn_sched_kind sched;
  int step_size;               // step: lr *= gamma every step_size epochs
  double gamma;
  double max_lr, pct_start, div_factor, final_div_factor; // one-cycle (cos)
  int cycle_momentum;
  double base_momentum, max_momentum;
  double mean, std;            // x = (pixel / 255 - mean) / std
  double rotate, shift;        // augmentation: degrees, pixels (0: none)
  double label_smoothing;      // eps of the training loss (0: NLL)
} cnn_train_config;

// One named tensor of a network's parameter or state block: what a
// checkpoint stores it under (the state_dict key of the PyTorch module
// `cnnc export` writes, e.g. "layers.4.weight"), where it lives in the block,
// and its shape in PyTorch's order (conv weight [out][in / groups][kh][kw]).
typedef struct cnn_tensor {
  const char *name;
  int in_state;                // 0: in params (trained), 1: in state (BN running statistics)
  size_t offset, size;         // in values, within that block
  int ndim;
  int shape[4];
} cnn_tensor;

typedef struct cnn_net {
  const char *name;
  int batch;                   // the most images one forward takes
  int in_c, in_h, in_w;        // one input image, CHW
  int classes;
  uint64_t shape_hash;         // checkpoints of other shapes are refused
  size_t n_params;
  cnn_real *params, *grads;    // one contiguous block each, n_params long
  size_t n_state;
  cnn_real *state;             // BN running statistics, not trained
  const cnn_train_config *train;
  // Every tensor of params and state, in block order (checkpoints name them).
  const cnn_tensor *tensors;
  size_t n_tensors;
  // PyTorch's default initialization of params and state.
  void (*init)(cnn_rng *rng);
  // Runs n <= batch images x[n][in_c][in_h][in_w]. In training mode, BN uses
  // batch statistics (and updates the running ones) and dropout draws its
  // masks from rng. With labels y, returns the mean NLL loss (else 0) and
  // keeps what backward needs; in training with train->label_smoothing eps,
  // the mean of (1 - eps) * NLL + eps * the mean over classes of -log p.
  double (*forward)(const cnn_real *x, const uint8_t *y, int n, int training, cnn_rng *rng);
  // Writes to grads the gradient of the last forward's mean loss.
  void (*backward)(void);
  // Log-probabilities of the last forward: [n][classes].
  const cnn_real *logprobs;
  // The vector width and instruction set its kernels run with on this CPU
  // ("16-wide AVX-512 (x86-64-v4)", ...), for a program to print.
  const char *(*kernels)(void);
} cnn_net;

#endif
