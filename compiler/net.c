// net.c: shape inference and costs over the flat layer array.
#include "net.h"

#include "layers.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

// Default train settings: PyTorch's defaults, and the reference's batch 64.
void train_spec_default(TrainSpec *t) {
  *t = (TrainSpec){
      .epochs = 20, .batch = 64, .seed = 1,
      .lr = 0.01, .momentum = 0.0, .dampening = 0.0, .weight_decay = 0.0,
      .nesterov = false,
      .sched = SCHED_CONSTANT, .step_size = 1, .gamma = 0.1,
      .max_lr = 0.1, .pct_start = 0.3, .div_factor = 25.0,
      .final_div_factor = 1e4, .cycle_momentum = true,
      .base_momentum = 0.85, .max_momentum = 0.95,
      .mean = 0.0, .std = 1.0, .rotate = 0.0, .shift = 0.0,
      .label_smoothing = 0.0,
  };
}

int net_infer(Net *net, char *msg, size_t msglen) {
  int L = net->n_layers;
  // Per tensor (t = 0 the input, t = k + 1 the output of layer k): its shape
  // and receptive field, rows and columns.
  Shape *shape = malloc(sizeof *shape * ((size_t)L + 1));
  int (*rf)[4] = malloc(sizeof *rf * ((size_t)L + 1));
  if (!shape || !rf) {
    free(shape);
    free(rf);
    snprintf(msg, msglen, "out of memory");
    return 0;
  }
  shape[0] = net->input;
  rf[0][0] = rf[0][1] = rf[0][2] = rf[0][3] = 1;
  size_t poff = 0, soff = 0;
  int bad = -1;
  net->n_params = net->n_state = net->macs = 0;
  net->max_act = (long)net->input.c * net->input.h * net->input.w;
  for (int i = 0; i < L && bad < 0; i++) {
    Layer *l = &net->layers[i];
    const LayerDef *def = layer_def(l->kind);
    l->in = shape[l->src];
    l->out = l->in;
    l->rf = rf[l->src][0], l->jump = rf[l->src][1], l->rf_w = rf[l->src][2], l->jump_w = rf[l->src][3];
    if (l->src2 >= 0) {
      // The receptive field through a residual is the larger of its paths.
      l->in2 = shape[l->src2];
      if (rf[l->src2][0] > l->rf)
        l->rf = rf[l->src2][0], l->jump = rf[l->src2][1];
      if (rf[l->src2][2] > l->rf_w)
        l->rf_w = rf[l->src2][2], l->jump_w = rf[l->src2][3];
    }
    msg[0] = '\0';
    if (def->shape && !def->shape(l, msg, msglen)) {
      if (!msg[0])
        snprintf(msg, msglen, "receptive field overflows");
      bad = i;
      break;
    }
    shape[i + 1] = l->out;
    rf[i + 1][0] = l->rf, rf[i + 1][1] = l->jump, rf[i + 1][2] = l->rf_w, rf[i + 1][3] = l->jump_w;
    l->act_size = l->out.c;
    l->n_params = l->n_state = l->macs = 0;
    if (!mul_ok(&l->act_size, l->out.h) || !mul_ok(&l->act_size, l->out.w) || (def->costs && !def->costs(l))) {
      snprintf(msg, msglen, "%s layer is too large: its size overflows", def->name);
      bad = i;
      break;
    }
    l->param_off = poff;
    l->state_off = soff;
    if (net->n_params > LONG_MAX - l->n_params || net->macs > LONG_MAX - l->macs) {
      snprintf(msg, msglen, "network is too large: its totals overflow");
      bad = i;
      break;
    }
    poff += (size_t)l->n_params;
    soff += (size_t)l->n_state;
    net->n_params += l->n_params;
    net->n_state += l->n_state;
    net->macs += l->macs;
    if (l->act_size > net->max_act)
      net->max_act = l->act_size;
  }
  Shape s = shape[L];
  free(shape);
  free(rf);
  if (bad >= 0)
    return bad;
  net->classes = s.c;
  if (net->n_layers == 0 || s.h != 1 || s.w != 1) {
    snprintf(msg, msglen,
             "the network must end in one value per class, but its output is %dx%dx%d "
             "(end with gap or a conv to 1x1)",
             s.h, s.w, s.c);
    return net->n_layers > 0 ? net->n_layers - 1 : 0;
  }
  net->shape_hash = net_hash(net);
  return -1;
}

int net_single_value_bn(const Net *net, int batch) {
  for (int i = 0; batch == 1 && i < net->n_layers; i++) {
    const Layer *l = &net->layers[i];
    if (l->kind == L_BATCHNORM && l->in.h * l->in.w == 1)
      return i;
  }
  return -1;
}

// Folds n bytes into an FNV-1a hash.
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 1099511628211ULL;
  }
  return h;
}

uint64_t net_hash(const Net *net) {
  uint64_t h = 14695981039346656037ULL;
  int32_t in[3] = {net->input.c, net->input.h, net->input.w};
  h = fnv(h, in, sizeof in);
  for (int i = 0; i < net->n_layers; i++) {
    const Layer *l = &net->layers[i];
    // The v1 fields: a square window, stride and padding of conv and maxpool
    // (0, 1, 0 for the others), so existing checkpoints keep their hash.
    int win = l->kind == L_CONV || l->kind == L_MAXPOOL;
    int32_t v[10] = {(int32_t)l->kind, l->in.c, l->in.h, l->in.w, l->out.c, l->out.h, l->out.w,
                     win ? l->kh : 0, win ? l->sh : 1, (win ? l->pt : 0) * 2 + (l->bias ? 1 : 0)};
    h = fnv(h, v, sizeof v);
    // What v1 could not say, only where it is said.
    int32_t x[10] = {l->kw, l->sw, l->pb, l->pl, l->pr, l->groups, l->src, l->src2, l->kh, l->sh};
    if (l->kind > L_LOG_SOFTMAX || l->kw != l->kh || l->sw != l->sh || l->pb != l->pt || l->pl != l->pt ||
        l->pr != l->pt || l->groups != 1 || l->src != i || l->src2 >= 0)
      h = fnv(h, x, sizeof x);
  }
  return h;
}

void net_free(Net *net) {
  if (!net)
    return;
  free(net->name);
  free(net->layers);
  free(net->strings);
  net->strings = NULL;
  net->name = NULL;
  net->layers = NULL;
  net->n_layers = 0;
}
