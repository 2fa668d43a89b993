// sgd.c: torch.optim.SGD's update, in float like PyTorch's float32 tensors.
#include "sgd.h"

#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Checks hyperparameters the way torch does before any step.
int cnn_sgd_init(cnn_sgd *o, size_t n, double lr, double momentum, double dampening,
                 double weight_decay, int nesterov, char *err, size_t errlen) {
  memset(o, 0, sizeof *o);
  if (lr < 0 || momentum < 0 || weight_decay < 0) {
    cnn_seterr(err, errlen, "sgd: invalid lr %g, momentum %g or weight_decay %g (must be >= 0)",
           lr, momentum, weight_decay);
    return -1;
  }
  if (nesterov && (momentum <= 0 || dampening != 0)) {
    cnn_seterr(err, errlen, "sgd: nesterov momentum requires a momentum and zero dampening");
    return -1;
  }
  o->buf = calloc(n ? n : 1, sizeof *o->buf);
  if (!o->buf) {
    cnn_seterr(err, errlen, "sgd: out of memory for %zu momentum values", n);
    return -1;
  }
  o->n = n;
  o->lr = lr;
  o->momentum = momentum;
  o->dampening = dampening;
  o->weight_decay = weight_decay;
  o->nesterov = nesterov;
  return 0;
}

// One step; the first momentum step copies g into the buffer, as torch does.
void cnn_sgd_step(cnn_sgd *o, float *params, const float *grads) {
  const float lr = (float)o->lr, mom = (float)o->momentum, wd = (float)o->weight_decay;
  const float damp = 1.0f - (float)o->dampening;
  const int use_mom = o->momentum != 0, first = !o->has_buf;
  float *buf = o->buf;
  for (size_t i = 0; i < o->n; i++) {
    float g = grads[i];
    if (wd != 0)
      g += wd * params[i];
    if (use_mom) {
      float b = first ? g : mom * buf[i] + damp * g;
      buf[i] = b;
      g = o->nesterov ? g + mom * b : b;
    }
    params[i] -= lr * g;
  }
  if (use_mom)
    o->has_buf = 1;
  o->steps++;
}

// Resumes from a checkpoint's optimizer state.
void cnn_sgd_restore(cnn_sgd *o, const float *buf, uint64_t steps) {
  if (buf) {
    memcpy(o->buf, buf, o->n * sizeof *o->buf);
    o->has_buf = 1;
  } else {
    memset(o->buf, 0, o->n * sizeof *o->buf);
    o->has_buf = 0;
  }
  o->steps = steps;
}

// Frees the buffer.
void cnn_sgd_free(cnn_sgd *o) {
  free(o->buf);
  memset(o, 0, sizeof *o);
}
