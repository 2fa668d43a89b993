// net_ckpt.c: reads a checkpoint for a checked network (net_ckpt.h), with
// the tensor table the network's module tree gives (torch_module.c).
#include "net_ckpt.h"

#include <stdio.h>
#include <string.h>

#include "torch_module.h"

// The table is built for this one call: the checkpoint keeps only its arrays.
int net_ckpt_load(const Net *net, const char *path, cnn_ckpt *c, char *err, size_t errlen) {
  cnn_tensor *t;
  size_t n;
  memset(c, 0, sizeof *c);
  if (torch_tensors(net, &t, &n) != 0) {
    snprintf(err, errlen, "%s: out of memory", path);
    return -1;
  }
  int rc = cnn_ckpt_load(path, c, err, errlen) < 0 ||
                   cnn_ckpt_check(c, path, net->name, net->shape_hash, (size_t)net->n_params,
                                  (size_t)net->n_state, net->train.mean, net->train.std, t, n,
                                  err, errlen) < 0
               ? -1
               : 0;
  // The table goes with this call; the arrays stay.
  c->tensors = NULL;
  c->n_tensors = 0;
  torch_tensors_free(t, n);
  return rc;
}
