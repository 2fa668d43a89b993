// gen_testnets.c: builds the small gradient-check networks (and mnist14k) as
// Net structs by hand and emits their training code with emit_train, so the
// emitter's tests do not depend on the front end.
//   gen_testnets OUTDIR    writes OUTDIR/NAME/NAME_train.{c,h} for each net
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "net.h"

// One layer as written in a model: kind and its arguments.
typedef struct Spec {
  LayerKind kind;
  int outc, k, stride, pad, bias;
  double p;
} Spec;

#define CONV(c, k, s, p, b) {L_CONV, c, k, s, p, b, 0}
#define BN {L_BATCHNORM, 0, 0, 0, 0, 0, 0}
#define DROP(p) {L_DROPOUT, 0, 0, 0, 0, 0, p}
#define RELU {L_RELU, 0, 0, 0, 0, 0, 0}
#define POOL(k, s, p) {L_MAXPOOL, 0, k, s, p, 0, 0}
#define GAP {L_GAP, 0, 0, 0, 0, 0, 0}
#define LSM {L_LOG_SOFTMAX, 0, 0, 0, 0, 0, 0}
#define CBR(c, k) CONV(c, k, 1, 0, 0), BN, DROP(0.03), RELU

// Builds, checks and emits one network; 0 on success.
static int make(const char *outdir, const char *name, int c, int h, int w, int batch, const Spec *s, int n) {
  Net net = {0};
  net.name = (char *)name;
  net.input = (Shape){c, h, w};
  train_spec_default(&net.train);
  net.train.batch = batch;
  // The reference recipe (models/mnist14k.cnn's train section).
  net.train.momentum = 0.9;
  net.train.mean = 0.1307;
  net.train.std = 0.3081;
  net.has_train = true;
  net.layers = calloc((size_t)n, sizeof *net.layers);
  net.n_layers = n;
  for (int i = 0; i < n; i++) {
    Layer *l = &net.layers[i];
    l->kind = s[i].kind;
    l->units = s[i].outc;
    l->kh = l->kw = s[i].k;
    l->sh = l->sw = s[i].stride ? s[i].stride : 1;
    l->pt = l->pb = l->pl = l->pr = s[i].pad;
    l->groups = 1;
    l->src = i;
    l->src2 = -1;
    l->bias = s[i].bias;
    l->p = s[i].p;
  }
  char msg[256];
  int bad = net_infer(&net, msg, sizeof msg);
  if (bad >= 0) {
    fprintf(stderr, "gen_testnets: %s: layer %d: %s\n", name, bad, msg);
    free(net.layers);
    return 1;
  }
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/%s", outdir, name);
  EmitOptions opt = {0};
  int rc = emit_train(&net, dir, &opt);
  free(net.layers);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_testnets OUTDIR\n");
    return 2;
  }
  const char *o = argv[1];
  const Spec conv_sp[] = {CONV(3, 3, 2, 1, 1), GAP, LSM};
  const Spec conv_nb[] = {CONV(4, 3, 1, 0, 0), RELU, CONV(3, 2, 1, 1, 1), GAP, LSM};
  const Spec bn[] = {BN, GAP, LSM};
  const Spec drop[] = {CONV(3, 1, 1, 0, 1), DROP(0.3), GAP, LSM};
  const Spec relu[] = {CONV(3, 1, 1, 0, 1), RELU, GAP, LSM};
  const Spec pool[] = {CONV(3, 1, 1, 0, 0), POOL(2, 2, 0), POOL(3, 2, 1), GAP, LSM};
  const Spec fc[] = {GAP, CONV(5, 1, 1, 0, 1), BN, CONV(4, 1, 1, 0, 1), LSM};
  const Spec mnist[] = {CBR(16, 3), CBR(16, 3), CBR(16, 3), POOL(2, 2, 0), CBR(16, 1),
                        CBR(24, 3), CBR(24, 3), CONV(10, 1, 1, 0, 0), GAP, LSM};
#define N(a) (int)(sizeof a / sizeof a[0])
  int rc = 0;
  rc |= make(o, "gc_conv", 2, 6, 6, 4, conv_sp, N(conv_sp));
  rc |= make(o, "gc_conv2", 2, 5, 6, 4, conv_nb, N(conv_nb));
  rc |= make(o, "gc_bn", 3, 4, 5, 4, bn, N(bn));
  rc |= make(o, "gc_dropout", 3, 4, 4, 4, drop, N(drop));
  rc |= make(o, "gc_relu", 3, 4, 4, 4, relu, N(relu));
  rc |= make(o, "gc_pool", 2, 8, 8, 4, pool, N(pool));
  rc |= make(o, "gc_fc", 4, 3, 3, 4, fc, N(fc));
  rc |= make(o, "mnist14k", 1, 28, 28, 64, mnist, N(mnist));
  // For test_layers: tiny nets whose activations are checked by hand.
  const Spec tl_conv[] = {CONV(2, 3, 1, 0, 1), GAP, LSM};
  const Spec tl_conv2[] = {CONV(1, 3, 2, 1, 0), GAP, LSM};
  const Spec tl_bn[] = {BN, GAP, LSM};
  const Spec tl_pool[] = {POOL(2, 2, 0), GAP, LSM};
  const Spec tl_drop[] = {DROP(0.25), GAP, LSM};
  const Spec tl_lsm[] = {LSM};
  rc |= make(o, "tl_conv", 1, 4, 4, 2, tl_conv, N(tl_conv));
  rc |= make(o, "tl_conv2", 2, 4, 4, 2, tl_conv2, N(tl_conv2));
  rc |= make(o, "tl_bn", 2, 2, 2, 2, tl_bn, N(tl_bn));
  rc |= make(o, "tl_pool", 2, 4, 4, 2, tl_pool, N(tl_pool));
  rc |= make(o, "tl_drop", 1, 40, 40, 2, tl_drop, N(tl_drop));
  rc |= make(o, "tl_lsm", 3, 1, 1, 2, tl_lsm, N(tl_lsm));
  return rc;
}
