// train_plan.c: decides the training code's buffers, gradients and fused
// layers before anything is printed (see train_emit.h).
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "train_emit.h"

// Whether layer j exists, is of kind k and is the only reader of its input,
// which is the output of layer j - 1: it can run inside that layer's sweep.
static int fusable(const TrainCtx *c, int j, LayerKind k) {
  const Net *n = c->net;
  return j < n->n_layers && n->layers[j].kind == k && n->layers[j].src == j && c->nuse[j] == 1;
}

// The layer that alone reads tensor t (and not as a second input), image
// by image, so that it can run a BatchNorm's passes on it: a direct conv
// or a max-pool; or -1.
static int sole_image_reader(const TrainCtx *c, int t) {
  if (c->nuse[t] != 1)
    return -1;
  for (int j = t; j < c->L; j++) {
    const Layer *l = &c->net->layers[j];
    if (l->src == t && l->src2 != t && c->owner[j] == j &&
        ((l->kind == L_CONV && conv_is_direct(l)) || l->kind == L_MAXPOOL))
      return j;
  }
  return -1;
}

int train_plan(TrainCtx *c, const Net *net, int batch) {
  int L = net->n_layers;
  c->net = net;
  c->P = net->name;
  c->L = L;
  c->batch = batch;
  c->ngroup = c->batch < 8 ? c->batch : 8;
  c->gsize = (c->batch + c->ngroup - 1) / c->ngroup;
  size_t T = (size_t)L + 1;
  c->tsize = calloc(T, sizeof *c->tsize);
  c->buf = calloc(T, sizeof *c->buf);
  c->gmode = calloc(T, sizeof *c->gmode);
  c->bufg = calloc(T, sizeof *c->bufg);
  c->nuse = calloc(T, sizeof *c->nuse);
  c->ibuf = calloc(T, sizeof *c->ibuf);
  c->isize = calloc(T, sizeof *c->isize);
  c->owner = calloc(T, sizeof *c->owner);
  c->bn_stats = calloc(T, sizeof *c->bn_stats);
  c->bn_dsums = calloc(T, sizeof *c->bn_dsums);
  c->bn_sweep = calloc(T, sizeof *c->bn_sweep);
  c->bn_dx = calloc(T, sizeof *c->bn_dx);
  c->fwd_train = calloc(T, sizeof *c->fwd_train);
  c->dx = calloc(T, sizeof *c->dx);
  c->dx2 = calloc(T, sizeof *c->dx2);
  c->dx_acc = calloc(T, sizeof *c->dx_acc);
  c->dx2_acc = calloc(T, sizeof *c->dx2_acc);
  int *dep = calloc(T, sizeof *dep), *written = calloc(T, sizeof *written);
  if (!c->tsize || !c->buf || !c->gmode || !c->bufg || !c->nuse || !c->ibuf || !c->isize || !c->owner ||
      !c->bn_stats || !c->bn_dsums || !c->bn_sweep || !c->bn_dx || !c->fwd_train || !c->dx || !c->dx2 || !c->dx_acc || !c->dx2_acc || !dep || !written) {
    free(dep);
    free(written);
    train_plan_free(c);
    return -1;
  }
  c->tsize[0] = (long)net->input.c * net->input.h * net->input.w;
  for (int k = 0; k < L; k++) {
    const Layer *l = &net->layers[k];
    c->nuse[l->src]++;
    if (l->src2 >= 0)
      c->nuse[l->src2]++;
  }
  for (int k = 0; k < L; k++) {
    const Layer *l = &net->layers[k];
    const LayerDef *def = layer_def(l->kind);
    c->tsize[k + 1] = l->act_size;
    c->isize[k] = c->tsize[l->src];
    // In place only where nothing else reads the input afterwards.
    int inplace = def->in_place && c->nuse[l->src] == 1;
    c->buf[k + 1] = inplace ? c->buf[l->src] : k + 1;
    c->ibuf[k] = c->buf[l->src];
    c->owner[k] = k;
    c->bn_stats[k] = -1;
    c->bn_dsums[k] = -1;
    c->bn_sweep[k] = -1;
    c->bn_dx[k] = -1;
    c->fwd_train[k] = def->fwd_training;
    if (l->kind == L_DROPOUT)
      c->has_dropout = 1;
    if (def->read_slack && def->read_slack(l) > c->slack)
      c->slack = def->read_slack(l);
    if (def->col_size) {
      long m = def->col_size(l);
      if (m > c->maxcol)
        c->maxcol = m;
    }
    // A tensor's gradient is needed when it depends on a parameter; the
    // others only for the input gradient (-DCNN_INPUT_GRAD).
    dep[k + 1] = l->n_params > 0 || dep[l->src] || (l->src2 >= 0 && dep[l->src2]);
  }
  // Fusion: a conv sums the statistics of the BatchNorm reading it; a
  // BatchNorm runs the dropout and the ReLU right after it in its sweep.
  for (int k = 0; k < L; k++) {
    const Layer *l = &net->layers[k];
    if (l->kind != L_BATCHNORM)
      continue;
    if (l->src == k && k > 0 && net->layers[k - 1].kind == L_CONV)
      c->bn_stats[k] = k - 1;
    int j = k + 1;
    if (fusable(c, j, L_DROPOUT))
      c->owner[j++] = k;
    if (fusable(c, j, L_RELU))
      c->owner[j] = k;
  }
  for (int t = 0; t <= L; t++) {
    c->gmode[t] = dep[t] ? 1 : 2;
    if (c->gmode[t] > c->bufg[c->buf[t]] && c->bufg[c->buf[t]] != 1)
      c->bufg[c->buf[t]] = c->gmode[t];
    if (c->gmode[t] == 1)
      c->bufg[c->buf[t]] = 1;
  }
  // Input gradients, in backward order: the first consumer to run writes
  // the tensor's gradient, the others write the scratch buffer and add it.
  for (int k = L - 1; k >= 0; k--) {
    const Layer *l = &net->layers[k];
    for (int s = 0; s < 2; s++) {
      int t = s ? l->src2 : l->src;
      if (t < 0)
        continue;
      char *name = s ? c->dx2[k] : c->dx[k];
      int *acc = s ? &c->dx2_acc[k] : &c->dx_acc[k];
      if (written[t] && c->owner[k] == k) {
        snprintf(name, 80, "%s_dscratch", c->P);
        *acc = 1;
        if (c->tsize[t] > c->scratch)
          c->scratch = c->tsize[t];
        // Declared where it is used: else unused without CNN_INPUT_GRAD.
        if (!c->scratch_mode || c->gmode[t] < c->scratch_mode)
          c->scratch_mode = c->gmode[t];
      } else {
        snprintf(name, 80, "%s_d%d", c->P, c->buf[t]);
      }
      if (c->owner[k] == k)
        written[t] = 1;
    }
  }
  // Fusion across layers. The direct conv or max-pool j that alone reads a
  // BatchNorm group's output t runs the BatchNorm's passes on it image by image,
  // while the image is in cache: backward, it masks the gradient and sums
  // its statistics right after its input gradient (when it writes that
  // gradient itself, not into the scratch buffer); forward, when the conv p
  // before the BatchNorm takes its statistics, it runs the normalizing
  // sweep before its own work. And p, when the BatchNorm alone reads its
  // output and writes its gradient, runs its input gradient. One pass less
  // over each tensor, and no parallel region of the BatchNorm's own.
  for (int k = 0; k < L; k++) {
    if (net->layers[k].kind != L_BATCHNORM)
      continue;
    int e = k;
    while (e + 1 < L && c->owner[e + 1] == k)
      e++;
    int t = e + 1, j = sole_image_reader(c, t), p = c->bn_stats[k];
    if (j >= 0 && !c->dx_acc[j])
      c->bn_dsums[k] = j;
    if (j >= 0 && p >= 0) {
      c->bn_sweep[k] = j;
      c->fwd_train[j] = 1;
    }
    if (p >= 0 && c->nuse[k] == 1 && !c->dx_acc[k] && conv_is_direct(&net->layers[p]))
      c->bn_dx[k] = p;
  }
  for (int k = 0; k + 1 < L; k++)
    if (c->bn_stats[k + 1] == k)
      c->fwd_train[k] = 1;
  // A BatchNorm's dx buffer that its conv never reads is not declared.
  for (int k = 0; k < L; k++) {
    if (c->bn_dx[k] < 0 || !conv_takes_bn_dx(c, c->bn_dx[k]))
      continue;
    int users = 0;
    for (int t = 0; t <= L; t++)
      users += c->buf[t] == c->buf[k];
    if (users == 1)
      c->bufg[c->buf[k]] = 0;
  }
  free(dep);
  free(written);
  return 0;
}

void train_plan_free(TrainCtx *c) {
  free(c->tsize);
  free(c->buf);
  free(c->gmode);
  free(c->bufg);
  free(c->nuse);
  free(c->ibuf);
  free(c->isize);
  free(c->owner);
  free(c->bn_stats);
  free(c->bn_dsums);
  free(c->bn_sweep);
  free(c->bn_dx);
  free(c->fwd_train);
  free(c->dx);
  free(c->dx2);
  free(c->dx_acc);
  free(c->dx2_acc);
  memset(c, 0, sizeof *c);
}
