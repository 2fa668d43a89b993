// torch_module.c: the module tree of the exported PyTorch network (see
// torch_module.h). The flat layer array is regrouped into residual blocks by
// each add's first layer; tensors between ranks get nn.Flatten/nn.Unflatten.
#include "torch_module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

#define PATH_MAX_LEN 256

typedef struct Walker {
  const Net *net;
  const TorchWalk *w;
  int rank;        // of the tensor the next module reads: 2 or 4
  int failed;
} Walker;

// The add of the outermost residual that starts at layer j and ends by `to`, or -1.
static int residual_at(const Net *net, int j, int to) {
  int best = -1;
  for (int k = j; k <= to; k++)
    if (net->layers[k].kind == L_ADD && net->layers[k].first == j)
      best = k;
  return best;
}

// Reports one module at prefix.i and moves i on.
static void emit(Walker *wk, const char *prefix, int *i, const char *expr, int k, int depth) {
  char path[PATH_MAX_LEN];
  if (snprintf(path, sizeof path, "%s.%d", prefix, (*i)++) >= (int)sizeof path) {
    wk->failed = 1;
    return;
  }
  wk->w->module(wk->w->ctx, path, expr, k, depth);
}

// Layer k's modules: an adapter to the rank it needs, what runs before it, itself.
static void walk_layer(Walker *wk, const char *prefix, int *i, int k, int depth) {
  const Layer *l = &wk->net->layers[k];
  const LayerDef *def = layer_def(l->kind);
  char mod[256] = "", pre[256] = "";
  if (def->torch_in == 2 && wk->rank == 4)
    emit(wk, prefix, i, "nn.Flatten()", -1, depth);
  if (def->torch_in == 4 && wk->rank == 2) {
    snprintf(mod, sizeof mod, "nn.Unflatten(1, (%d, %d, %d))", l->in.c, l->in.h, l->in.w);
    emit(wk, prefix, i, mod, -1, depth);
  }
  // A kind without a module still has its tensors named (the checkpoint
  // table); export_torch refuses it first (torch_unexportable).
  if (def->torch)
    def->torch(l, mod, sizeof mod, pre, sizeof pre);
  else
    snprintf(mod, sizeof mod, "nn.Identity()");
  if (pre[0])
    emit(wk, prefix, i, pre, -1, depth);
  emit(wk, prefix, i, mod, k, depth);
  if (def->torch_out)
    wk->rank = def->torch_out;
}

// The modules of layers from..to (a sequence: plain layers and residuals) under prefix.
static void walk_seq(Walker *wk, const char *prefix, int from, int to, int depth) {
  int i = 0;
  for (int j = from; j <= to && !wk->failed;) {
    int add = residual_at(wk->net, j, to);
    if (add < 0) {
      walk_layer(wk, prefix, &i, j, depth);
      j++;
      continue;
    }
    const Layer *a = &wk->net->layers[add];
    char path[PATH_MAX_LEN], sub[PATH_MAX_LEN + 16];
    if (snprintf(path, sizeof path, "%s.%d", prefix, i++) >= (int)sizeof path) {
      wk->failed = 1;
      return;
    }
    int rank = wk->rank;
    wk->w->open(wk->w->ctx, path, add, depth);
    snprintf(sub, sizeof sub, "%s.body", path);
    walk_seq(wk, sub, j, a->src - 1, depth + 1);
    int body_rank = wk->rank;
    bool has = a->src2 > a->src;
    wk->w->shortcut(wk->w->ctx, add, has, depth);
    wk->rank = rank;
    snprintf(sub, sizeof sub, "%s.shortcut", path);
    if (has)
      walk_seq(wk, sub, a->src, a->src2 - 1, depth + 1);
    wk->w->close(wk->w->ctx, add, depth);
    wk->rank = body_rank;
    j = add + 1;
  }
}

// Kinds lack a module only until their file gives one.
int torch_unexportable(const Net *net) {
  for (int k = 0; k < net->n_layers; k++)
    if (net->layers[k].kind != L_ADD && !layer_def(net->layers[k].kind)->torch)
      return k;
  return -1;
}

// The whole net is the top sequence "layers", read as a 4-d tensor.
int torch_walk(const Net *net, const TorchWalk *w) {
  Walker wk = {.net = net, .w = w, .rank = 4};
  walk_seq(&wk, "layers", 0, net->n_layers - 1, 0);
  return wk.failed ? -1 : 0;
}

typedef struct Collect {
  const Net *net;
  cnn_tensor *t;
  size_t n, cap;
  int oom;
} Collect;

// Adds the tensors of a layer's own module (adapters and ZeroPad2d have none).
static void collect_module(void *ctx, const char *path, const char *expr, int k, int depth) {
  Collect *c = ctx;
  (void)depth, (void)expr;
  const Layer *l = k >= 0 ? &c->net->layers[k] : NULL;
  const LayerDef *def = l ? layer_def(l->kind) : NULL;
  if (!def || !def->tensors)
    return;
  LayerTensor lt[4];
  int m = def->tensors(l, lt);
  for (int i = 0; i < m; i++) {
    if (c->n == c->cap) {
      size_t cap = c->cap ? 2 * c->cap : 32;
      cnn_tensor *t = realloc(c->t, cap * sizeof *t);
      if (!t) {
        c->oom = 1;
        return;
      }
      c->t = t;
      c->cap = cap;
    }
    cnn_tensor *t = &c->t[c->n];
    size_t len = strlen(path) + strlen(lt[i].name) + 2;
    char *name = malloc(len);
    if (!name) {
      c->oom = 1;
      return;
    }
    snprintf(name, len, "%s.%s", path, lt[i].name);
    *t = (cnn_tensor){.name = name, .in_state = lt[i].in_state,
                      .offset = (lt[i].in_state ? l->state_off : l->param_off) + (size_t)lt[i].offset,
                      .size = 1, .ndim = lt[i].ndim};
    for (int d = 0; d < lt[i].ndim; d++) {
      t->shape[d] = lt[i].shape[d];
      t->size *= (size_t)lt[i].shape[d];
    }
    c->n++;
  }
}

// Residual structure adds no tensors.
static void collect_open(void *ctx, const char *path, int add, int depth) {
  (void)ctx, (void)path, (void)add, (void)depth;
}
// (The shortcut of a residual: nothing to collect.)
static void collect_shortcut(void *ctx, int add, bool has, int depth) {
  (void)ctx, (void)add, (void)has, (void)depth;
}
// (The end of a residual: nothing to collect.)
static void collect_close(void *ctx, int add, int depth) {
  (void)ctx, (void)add, (void)depth;
}

// qsort order: params before state, then by offset.
static int by_block(const void *a, const void *b) {
  const cnn_tensor *x = a, *y = b;
  if (x->in_state != y->in_state)
    return x->in_state - y->in_state;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

// Collected in walk order, then sorted into the blocks' order.
int torch_tensors(const Net *net, cnn_tensor **out, size_t *n) {
  Collect c = {.net = net};
  TorchWalk w = {&c, collect_module, collect_open, collect_shortcut, collect_close};
  if (torch_walk(net, &w) != 0 || c.oom) {
    torch_tensors_free(c.t, c.n);
    return -1;
  }
  qsort(c.t, c.n, sizeof *c.t, by_block);
  *out = c.t;
  *n = c.n;
  return 0;
}

// The names were malloc'ed one by one.
void torch_tensors_free(cnn_tensor *t, size_t n) {
  for (size_t i = 0; t && i < n; i++)
    free((char *)t[i].name);
  free(t);
}
