// torch_module.h: the PyTorch module cnnc exports for a network, as a tree
// of modules with paths ("layers.3.body.0"), and the tensor table that
// follows from it: each parameter and state tensor under its state_dict key,
// with its shape and place in the flat blocks. Checkpoints store tensors by
// these names, so the compiler, the generated training code and the exported
// Python module agree on them.
#ifndef CNNC_TORCH_MODULE_H
#define CNNC_TORCH_MODULE_H

#include <stdbool.h>

#include "cnn_net.h"
#include "net.h"

// What torch_walk reports, in order. A plain network is one nn.Sequential
// "layers"; a residual is a Residual(body, shortcut) module in it whose body
// and shortcut are nn.Sequential again.
typedef struct TorchWalk {
  void *ctx;
  // A module at path: layer k's own, or (k = -1) one its layer runs before it
  // (ZeroPad2d) or an adapter between ranks (nn.Flatten, nn.Unflatten). depth: nesting.
  void (*module)(void *ctx, const char *path, const char *expr, int k, int depth);
  // The residual of add layer `add` at path opens; its body's modules follow.
  void (*open)(void *ctx, const char *path, int add, int depth);
  // Its shortcut's modules follow (has: it has layers; else the identity).
  void (*shortcut)(void *ctx, int add, bool has, int depth);
  void (*close)(void *ctx, int add, int depth);
} TorchWalk;

// Walks net's module tree; the top nn.Sequential is "layers". 0, or -1 when
// a path would not fit (nesting beyond any real network).
int torch_walk(const Net *net, const TorchWalk *w);

// The first layer whose kind has no PyTorch module (no torch field), or -1.
int torch_unexportable(const Net *net);

// The tensor table of net: params tensors in offset order, then state ones;
// names malloc'ed. 0, or -1 out of memory.
int torch_tensors(const Net *net, cnn_tensor **out, size_t *n);
void torch_tensors_free(cnn_tensor *t, size_t n);

#endif
