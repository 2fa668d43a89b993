// sgd.h: stochastic gradient descent exactly as torch.optim.SGD:
//   g = grad + wd * p
//   momentum: buf = g on the first step, else buf = momentum*buf + (1-dampening)*g
//             g = nesterov ? g + momentum*buf : buf
//   p -= lr * g
// lr and momentum are fields, set before each step by a schedule.
#ifndef CNN_SGD_H
#define CNN_SGD_H

#include <stddef.h>
#include <stdint.h>

typedef struct cnn_sgd {
  size_t n;
  double lr, momentum, dampening, weight_decay;
  int nesterov;
  float *buf;                  // momentum buffer, n floats
  int has_buf;                 // 0 until the first step with momentum != 0
  uint64_t steps;              // steps taken
} cnn_sgd;

// Sets up an optimizer of n parameters. Returns -1 on bad hyperparameters
// (negative lr, nesterov without momentum or with dampening) or no memory.
int cnn_sgd_init(cnn_sgd *o, size_t n, double lr, double momentum, double dampening,
                 double weight_decay, int nesterov, char *err, size_t errlen);
// One update of params from grads (both n long).
void cnn_sgd_step(cnn_sgd *o, float *params, const float *grads);
// Restores state saved in a checkpoint; buf NULL means no momentum buffer yet.
void cnn_sgd_restore(cnn_sgd *o, const float *buf, uint64_t steps);
// Frees the momentum buffer.
void cnn_sgd_free(cnn_sgd *o);

#endif
