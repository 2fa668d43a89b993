// net.c: shape inference and costs over the flat layer array.
#include "net.h"

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
  };
}

// A layer kind's name as the language spells it.
const char *layer_kind_name(LayerKind k) {
  switch (k) {
  case L_CONV: return "conv";
  case L_BATCHNORM: return "batchnorm";
  case L_DROPOUT: return "dropout";
  case L_RELU: return "relu";
  case L_MAXPOOL: return "maxpool";
  case L_GAP: return "gap";
  case L_LOG_SOFTMAX: return "log_softmax";
  }
  return "?";
}

// Multiplies into *acc unless the product leaves a long's range.
static bool mul_ok(long *acc, long x) {
  if (x != 0 && (*acc > LONG_MAX / x || *acc < 0 || x < 0))
    return false;
  *acc *= x;
  return true;
}

// Sets the cost fields of one layer whose shapes are known; false on overflow.
static bool layer_costs(Layer *l) {
  l->act_size = l->out.c;
  if (!mul_ok(&l->act_size, l->out.h) || !mul_ok(&l->act_size, l->out.w))
    return false;
  l->n_params = l->n_state = l->macs = 0;
  if (l->kind == L_CONV) {
    long w = l->out.c;
    if (!mul_ok(&w, l->in.c) || !mul_ok(&w, l->k) || !mul_ok(&w, l->k))
      return false;
    l->n_params = w + (l->bias ? l->out.c : 0);
    l->macs = l->out.h;
    if (!mul_ok(&l->macs, l->out.w) || !mul_ok(&l->macs, w))
      return false;
  } else if (l->kind == L_BATCHNORM) {
    l->n_params = 2L * l->out.c;
    l->n_state = 2L * l->out.c;
  }
  return true;
}

// Output side of a k x k window with stride and padding, or -1 if none fits.
static int window_out(int in, int k, int stride, int pad) {
  long span = (long)in + 2L * pad - k;
  return span < 0 ? -1 : (int)(span / stride + 1);
}

int net_infer(Net *net, char *msg, size_t msglen) {
  Shape s = net->input;
  int rf = 1, jump = 1;
  size_t poff = 0, soff = 0;
  net->n_params = net->n_state = net->macs = 0;
  net->max_act = (long)s.c * s.h * s.w;
  for (int i = 0; i < net->n_layers; i++) {
    Layer *l = &net->layers[i];
    l->in = s;
    switch (l->kind) {
    case L_CONV:
    case L_MAXPOOL: {
      bool flat = s.h == 1 && s.w == 1;
      if (l->kind == L_CONV && l->out.c <= 0) {
        snprintf(msg, msglen, "conv needs a positive number of output channels, not %d", l->out.c);
        return i;
      }
      if (l->k <= 0 || l->stride <= 0 || l->pad < 0) {
        snprintf(msg, msglen, "%s needs a positive kernel and stride and a non-negative padding",
                 layer_kind_name(l->kind));
        return i;
      }
      if (l->pad >= l->k) {
        snprintf(msg, msglen, "%s padding %d must be smaller than its kernel %d",
                 layer_kind_name(l->kind), l->pad, l->k);
        return i;
      }
      int oh = window_out(s.h, l->k, l->stride, l->pad);
      int ow = window_out(s.w, l->k, l->stride, l->pad);
      if (oh <= 0 || ow <= 0) {
        snprintf(msg, msglen, "%s kernel %dx%d is larger than its %dx%dx%d input%s",
                 layer_kind_name(l->kind), l->k, l->k, s.h, s.w, s.c,
                 l->pad ? " (with padding)" : "");
        return i;
      }
      s.h = oh;
      s.w = ow;
      if (l->kind == L_CONV)
        s.c = l->out.c;
      // A 1x1 conv on a 1x1 map (after gap) is a fully connected layer; its
      // receptive field is already the whole input.
      if (!flat) {
        long r = rf + (long)(l->k - 1) * jump;
        long j = (long)jump * l->stride;
        if (r > INT_MAX || j > INT_MAX) {
          snprintf(msg, msglen, "receptive field overflows");
          return i;
        }
        rf = (int)r;
        jump = (int)j;
      }
      break;
    }
    case L_GAP:
      // GAP sees the whole map: its window is the map itself.
      rf += ((s.h > s.w ? s.h : s.w) - 1) * jump;
      jump *= s.h > s.w ? s.h : s.w;
      s.h = s.w = 1;
      break;
    case L_DROPOUT:
      if (!(l->p >= 0.0 && l->p < 1.0)) {
        snprintf(msg, msglen, "dropout probability %g is outside [0, 1)", l->p);
        return i;
      }
      break;
    case L_LOG_SOFTMAX:
      if (s.h != 1 || s.w != 1) {
        snprintf(msg, msglen,
                 "log_softmax needs one value per class, but its input is %dx%dx%d (add gap first)",
                 s.h, s.w, s.c);
        return i;
      }
      break;
    case L_BATCHNORM:
    case L_RELU:
      break;
    }
    l->out = s;
    l->rf = rf;
    l->jump = jump;
    if (!layer_costs(l)) {
      snprintf(msg, msglen, "%s layer is too large: its size overflows", layer_kind_name(l->kind));
      return i;
    }
    l->param_off = poff;
    l->state_off = soff;
    if (net->n_params > LONG_MAX - l->n_params || net->macs > LONG_MAX - l->macs) {
      snprintf(msg, msglen, "network is too large: its totals overflow");
      return i;
    }
    poff += (size_t)l->n_params;
    soff += (size_t)l->n_state;
    net->n_params += l->n_params;
    net->n_state += l->n_state;
    net->macs += l->macs;
    if (l->act_size > net->max_act)
      net->max_act = l->act_size;
  }
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
    int32_t v[10] = {(int32_t)l->kind, l->in.c, l->in.h, l->in.w, l->out.c,
                     l->out.h, l->out.w, l->k, l->stride, l->pad * 2 + (l->bias ? 1 : 0)};
    h = fnv(h, v, sizeof v);
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
