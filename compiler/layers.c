// layers.c: the table of layer kinds, and the window arithmetic they share.
#include "layers.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

extern const LayerDef layer_conv, layer_batchnorm, layer_dropout, layer_relu, layer_maxpool, layer_gap,
    layer_log_softmax, layer_avgpool, layer_flatten, layer_dense, layer_add;

// One row per kind, in LayerKind order.
static const LayerDef *const table[L_N_KINDS] = {
    [L_CONV] = &layer_conv,       [L_BATCHNORM] = &layer_batchnorm,     [L_DROPOUT] = &layer_dropout,
    [L_RELU] = &layer_relu,       [L_MAXPOOL] = &layer_maxpool,         [L_GAP] = &layer_gap,
    [L_LOG_SOFTMAX] = &layer_log_softmax, [L_AVGPOOL] = &layer_avgpool, [L_FLATTEN] = &layer_flatten,
    [L_DENSE] = &layer_dense,     [L_ADD] = &layer_add,
};

const LayerDef *layer_def(LayerKind k) {
  return table[k];
}

int layer_find(const char *name) {
  for (int k = 0; k < L_N_KINDS; k++)
    if (!table[k]->internal && strcmp(table[k]->name, name) == 0)
      return k;
  return -1;
}

const char *layer_kind_name(LayerKind k) {
  return k >= 0 && k < L_N_KINDS ? table[k]->name : "?";
}

bool mul_ok(long *acc, long x) {
  if (x != 0 && (*acc > LONG_MAX / x || *acc < 0 || x < 0))
    return false;
  *acc *= x;
  return true;
}

bool rf_window(Layer *l, int kh, int kw, int sh, int sw) {
  if (l->in.h == 1 && l->in.w == 1)
    return true;
  long r = l->rf + (long)(kh - 1) * l->jump, rw = l->rf_w + (long)(kw - 1) * l->jump_w;
  long j = (long)l->jump * sh, jw = (long)l->jump_w * sw;
  if (r > INT_MAX || j > INT_MAX || rw > INT_MAX || jw > INT_MAX)
    return false;
  l->rf = (int)r;
  l->jump = (int)j;
  l->rf_w = (int)rw;
  l->jump_w = (int)jw;
  return true;
}

int window_out(int in, int k, int stride, int pad_lo, int pad_hi) {
  long span = (long)in + pad_lo + pad_hi - k;
  return span < 0 ? -1 : (int)(span / stride + 1);
}

void same_padding(int in, int k, int stride, int *lo, int *hi) {
  long out = ((long)in + stride - 1) / stride;
  long total = (out - 1) * stride + k - in;
  if (total < 0)
    total = 0;
  *lo = (int)(total / 2);
  *hi = (int)(total - total / 2);
}

void fmt_window(char *buf, size_t n, int h, int w) {
  snprintf(buf, n, "%dx%d", h, w);
}

void fmt_torch_pair(char *buf, size_t n, int h, int w) {
  if (h == w)
    snprintf(buf, n, "%d", h);
  else
    snprintf(buf, n, "(%d, %d)", h, w);
}
