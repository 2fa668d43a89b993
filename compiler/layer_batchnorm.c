// layer_batchnorm.c: batchnorm — PyTorch's BatchNorm2d (momentum 0.1,
// eps 1e-5, unbiased running variance). In training code a dropout and a
// ReLU right after it run fused into its sweep (train_plan.c decides), and
// the conv before it sums its statistics; in inference it is folded into the
// conv before it.
#include <stdio.h>

#include "layers.h"

// The layers fused into BatchNorm layer k's sweep: a dropout right after it
// (*dk, else -1) and a ReLU after that (*rk, else -1).
static void bn_group(const TrainCtx *c, int k, int *dk, int *rk) {
  int j = k + 1;
  *dk = *rk = -1;
  if (j < c->L && c->owner[j] == k && c->net->layers[j].kind == L_DROPOUT)
    *dk = j++;
  if (j < c->L && c->owner[j] == k && c->net->layers[j].kind == L_RELU)
    *rk = j;
}

// gamma and beta per channel; running mean and variance as state.
static bool bn_costs(Layer *l) {
  l->n_params = 2L * l->out.c;
  l->n_state = 2L * l->out.c;
  return true;
}

static void bn_transform(const Layer *l, char *buf, size_t n) {
  snprintf(buf, n, "BN(%d)", l->out.c);
}

// Layer j's image i (in scope) first gets the normalizing sweep of each
// BatchNorm whose output j alone reads (bn_sweep); see train_emit.h.
void bn_emit_sweeps_for(TrainCtx *c, int j) {
  for (int b = 0; b < j; b++)
    if (c->bn_sweep[b] == j) {
      W(c, "      { // layer %d's sweep: this image's input\n", b);
      bn_emit_sweep(c, b, "        ");
      W(c, "      }\n");
    }
}

// BatchNorm layer k's first backward pass for image i; see train_emit.h.
void bn_emit_dy_sums(TrainCtx *c, int k, const char *ind) {
  bn_emit_dy_sums_of(c, k, 0, ind);
}

int bn_dy_mask(const TrainCtx *c, int k, const char *y, char *buf, size_t n) {
  int dk, rk;
  bn_group(c, k, &dk, &rk);
  if (rk >= 0 && dk >= 0)
    snprintf(buf, n, "(cnn_real)(%s > 0) * L%d_SCALE", y, dk);
  else if (rk >= 0)
    snprintf(buf, n, "(cnn_real)(%s > 0)", y);
  else
    return 0;
  return 1;
}

void bn_emit_dy_sums_of(TrainCtx *c, int k, int masked, const char *ind) {
  const char *P = c->P;
  int ib = c->ibuf[k], ob = c->buf[k + 1];
  long sz = c->isize[k];
  int dk, rk;
  bn_group(c, k, &dk, &rk);
  int keep_store = dk >= 0 && rk < 0;
  char x[96], dy[96];
  snprintf(x, sizeof x, "%s_a%d + (size_t)i * %ld", P, ib, sz);
  snprintf(dy, sizeof dy, "%s_d%d + (size_t)i * %ld", P, ob, sz);
  if ((rk >= 0 || dk >= 0) && !masked) {
    W(c, "%s{\n%s  cnn_real *restrict dy = %s;\n", ind, ind, dy);
    if (rk >= 0)
      W(c, "%s  const cnn_real *restrict y = %s_a%d + (size_t)i * %ld;\n", ind, P, ob, sz);
    if (keep_store)
      W(c, "%s  const uint8_t *restrict m = %s_l%d_keep + (size_t)i * %ld;\n", ind, P, dk, sz);
    W(c, "%s  for (int p = 0; p < %ld; p++) // a multiply, not a branch: it vectorizes\n", ind, sz);
    char mask[64];
    if (bn_dy_mask(c, k, "y[p]", mask, sizeof mask))
      W(c, "%s    dy[p] *= %s;\n", ind, mask);
    else
      W(c, "%s    dy[p] *= (cnn_real)m[p] * L%d_SCALE;\n", ind, dk);
    W(c, "%s}\n", ind);
  }
  emit_chan_sums(c, k, x, dy, ind);
}

// Whether BatchNorm layer k spreads its scale and shift per value: planes
// whose size is not a multiple of 4 do not vectorize at -O2, so its sweep
// runs over whole images instead.
static int bn_flat(const TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  return (l->out.h * l->out.w) % 4 != 0 && c->isize[k] % 4 == 0;
}

// What BatchNorm layer k's functions and the convs that run its passes
// share, declared before any function: its partial sums, batch statistics,
// scale and shift, the dropout's constants and mask buffers, and backward's
// per-channel factors.
static void bn_decls(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int C = l->out.c, HW = l->out.h * l->out.w, dk, rk;
  long sz = c->isize[k];
  bn_group(c, k, &dk, &rk);
  int bw = c->gmode[k + 1], keep_store = dk >= 0 && rk < 0;
  W(c, "\n// Layer %d (batchnorm%s%s): what its passes share.\n", k, dk >= 0 ? ", dropout" : "", rk >= 0 ? ", relu" : "");
  emit_bn_partials(c, k);
  W(c, "// The batch mean and 1/sqrt(var + eps), which backward reuses, and the\n"
       "// scale and shift the sweep applies.\n");
  W(c, "static cnn_real %s_l%d_mean[%d], %s_l%d_invstd[%d], %s_l%d_scale[%d], %s_l%d_shift[%d];\n", P, k, C, P, k,
    C, P, k, C, P, k, C);
  if (bn_flat(c, k))
    W(c, "// Scale and shift spread per value (planes of %d do not vectorize at -O2).\n"
         "static cnn_real %s_l%d_scv[%ld] CNN_ALIGNED, %s_l%d_shv[%ld] CNN_ALIGNED;\n", HW, P, k, sz, P, k, sz);
  if (dk >= 0) {
    emit_drop_consts(c, dk);
    unsigned long t16 = (unsigned long)((double)(float)(1.0 - c->net->layers[dk].p) * 65536.0 + 0.5);
    W(c, "// In the fused sweep, two draws per hash: keep when a 16-bit half < %lu (1 - p = %.6f).\n",
      t16, t16 / 65536.0);
    W(c, "#define L%d_KEEP16 %luu\n", dk, t16);
    W(c, "// Each group's mask multipliers for one image: 1 / (1 - p) or 0.\n");
    W(c, "static cnn_real %s_l%d_km[NGROUP][%ld] CNN_ALIGNED;\n", P, dk, sz);
    if (keep_store && bw) {
      ig_open(c, bw);
      W(c, "static uint8_t %s_l%d_keep[BATCH * %ld];\n", P, dk, sz);
      ig_close(c, bw);
    }
  }
  if (bw && c->gmode[l->src]) {
    ig_open(c, c->gmode[l->src]);
    W(c, "// dx = k1 * (dy - k2 - xhat * k3) per channel.\n");
    W(c, "static cnn_real %s_l%d_k1[%d], %s_l%d_k2[%d], %s_l%d_k3[%d];\n", P, k, C, P, k, C, P, k, C);
    ig_close(c, c->gmode[l->src]);
  }
}

// BatchNorm layer k's normalizing sweep for image i (i and group g in
// scope, and `training`): y = x * scale + shift, dropped and rectified, from
// its input's buffer to its output's, the dropout's mask drawn first.
void bn_emit_sweep(TrainCtx *c, int k, const char *ind) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int C = l->out.c, HW = l->out.h * l->out.w, ib = c->ibuf[k], ob = c->buf[k + 1], dk, rk;
  long sz = c->isize[k];
  bn_group(c, k, &dk, &rk);
  int bw = c->gmode[k + 1], keep_store = dk >= 0 && rk < 0, flat = bn_flat(c, k);
  W(c, "%sconst cnn_real *restrict bx = %s_a%d + (size_t)i * %ld;\n", ind, P, ib, sz);
  W(c, "%scnn_real *restrict by = %s_a%d + (size_t)i * %ld;\n", ind, P, ob, sz);
  if (dk >= 0)
    W(c, "%scnn_real *restrict km = %s_l%d_km[g];\n", ind, P, dk);
  if (flat) // restrict copies: the arrays are shared with the other threads
    W(c, "%sconst cnn_real *restrict sv = %s_l%d_scv, *restrict hv = %s_l%d_shv;\n", ind, P, k, P, k);
  const char *relu = rk >= 0 ? "v = v > 0 ? v : 0;\n" : "";
  if (dk < 0)
    W(c, "%s(void)training; // (no dropout)\n", ind);
  if (dk >= 0) {
    long half = sz / 2;
    W(c, "%sif (training) { // the mask as multipliers: one hash gives two 16-bit draws\n", ind);
    W(c, "%s  uint32_t key[2];\n%s  %s_drop_keys(%d, i, key);\n", ind, ind, P, dk);
    W(c, "%s  for (int j = 0; j < %ld; j++) {\n", ind, half);
    W(c, "%s    const uint32_t h = %s_mix32(%s_mix32((uint32_t)j ^ key[0]) + key[1]);\n", ind, P, P);
    W(c, "%s    km[j] = (h & 0xffffu) < L%d_KEEP16 ? L%d_SCALE : 0;\n", ind, dk, dk);
    W(c, "%s    km[j + %ld] = (h >> 16) < L%d_KEEP16 ? L%d_SCALE : 0;\n%s  }\n", ind, half, dk, dk, ind);
    if (sz % 2)
      W(c, "%s  km[%ld] = (%s_mix32(%s_mix32((uint32_t)%ld ^ key[0]) + key[1]) & 0xffffu) < L%d_KEEP16 ? L%d_SCALE : 0;\n",
        ind, sz - 1, P, P, sz - 1, dk, dk);
    if (keep_store && bw) {
      ig_open(c, bw);
      W(c, "%s  for (int j = 0; j < %ld; j++)\n", ind, sz);
      W(c, "%s    %s_l%d_keep[(size_t)i * %ld + j] = km[j] != 0;\n", ind, P, dk, sz);
      ig_close(c, bw);
    }
    W(c, "%s}\n", ind);
  }
  if (flat) {
    if (dk >= 0) {
      W(c, "%sif (training)\n", ind);
      W(c, "%s  for (int j = 0; j < %ld; j++) {\n", ind, sz);
      W(c, "%s    cnn_real v = (bx[j] * sv[j] + hv[j]) * km[j];\n", ind);
      if (rk >= 0)
        W(c, "%s    %s", ind, relu);
      W(c, "%s    by[j] = v;\n%s  }\n%selse\n", ind, ind, ind);
    }
    W(c, "%s  for (int j = 0; j < %ld; j++) {\n", ind, sz);
    W(c, "%s    cnn_real v = bx[j] * sv[j] + hv[j];\n", ind);
    if (rk >= 0)
      W(c, "%s    %s", ind, relu);
    W(c, "%s    by[j] = v;\n%s  }\n", ind, ind);
    return;
  }
  W(c, "%sfor (int c = 0; c < %d; c++) {\n", ind, C);
  W(c, "%s  const cnn_real sc = %s_l%d_scale[c], sh = %s_l%d_shift[c];\n", ind, P, k, P, k);
  W(c, "%s  const cnn_real *restrict xc = bx + c * %d;\n%s  cnn_real *restrict yc = by + c * %d;\n", ind, HW, ind, HW);
  if (dk >= 0) {
    W(c, "%s  if (training) {\n", ind);
    W(c, "%s    const cnn_real *restrict kc = km + c * %d;\n", ind, HW);
    W(c, "%s    for (int p = 0; p < %d; p++) {\n", ind, HW);
    W(c, "%s      cnn_real v = (xc[p] * sc + sh) * kc[p];\n", ind);
    if (rk >= 0)
      W(c, "%s      %s", ind, relu);
    W(c, "%s      yc[p] = v;\n%s    }\n%s    continue;\n%s  }\n", ind, ind, ind, ind);
  }
  W(c, "%s  for (int p = 0; p < %d; p++) {\n", ind, HW);
  W(c, "%s    cnn_real v = xc[p] * sc + sh;\n", ind);
  if (rk >= 0)
    W(c, "%s    %s", ind, relu);
  W(c, "%s    yc[p] = v;\n%s  }\n%s}\n", ind, ind, ind);
}

// The head of BatchNorm layer k's input-gradient pass for image i (in
// scope): its input, the masked gradient at its output, and per channel c
// the factors its backward computed; the caller closes the channel loop.
static void bn_dx_head(TrainCtx *c, int k, const char *ind) {
  const char *P = c->P;
  int C = c->net->layers[k].out.c;
  long sz = c->isize[k];
  W(c, "%sconst cnn_real *restrict bx = %s_a%d + (size_t)i * %ld;\n", ind, P, c->ibuf[k], sz);
  W(c, "%sconst cnn_real *restrict bdy = %s_d%d + (size_t)i * %ld;\n", ind, P, c->buf[k + 1], sz);
  W(c, "%sfor (int c = 0; c < %d; c++) {\n", ind, C);
  W(c, "%s  const cnn_real m_ = %s_l%d_mean[c], is = %s_l%d_invstd[c];\n", ind, P, k, P, k);
  W(c, "%s  const cnn_real a = %s_l%d_k1[c], b = %s_l%d_k2[c], q = %s_l%d_k3[c];\n", ind, P, k, P, k, P, k);
}

// BatchNorm layer k's input gradient for image i (in scope), from the masked
// gradient at its output and the factors its backward computed.
void bn_emit_dx(TrainCtx *c, int k, const char *ind) {
  bn_emit_dx_to(c, k, NULL, ind);
}

void bn_emit_dx_to(TrainCtx *c, int k, const char *dst, const char *ind) {
  const Layer *l = &c->net->layers[k];
  int HW = l->out.h * l->out.w;
  if (dst)
    W(c, "%scnn_real *restrict bdx = %s;\n", ind, dst);
  else
    W(c, "%scnn_real *restrict bdx = %s + (size_t)i * %ld;\n", ind, c->dx[k], c->isize[k]);
  bn_dx_head(c, k, ind);
  W(c, "%s  for (int p = 0; p < %d; p++) {\n", ind, HW);
  W(c, "%s    const cnn_real xh = (bx[c * %d + p] - m_) * is;\n", ind, HW);
  W(c, "%s    bdx[c * %d + p] = a * (bdy[c * %d + p] - b - xh * q);\n%s  }\n%s}\n", ind, HW, HW, ind, ind);
}

void bn_emit_dx_into(TrainCtx *c, int k, const BnDxDest *dst, int n, const char *ind) {
  const Layer *l = &c->net->layers[k];
  int H = l->out.h, Wd = l->out.w;
  bn_dx_head(c, k, ind);
  W(c, "%s  for (int y = 0; y < %d; y++)\n%s    for (int x = 0; x < %d; x++) {\n", ind, H, ind, Wd);
  W(c, "%s      const cnn_real xh = (bx[(c * %d + y) * %d + x] - m_) * is;\n", ind, H, Wd);
  W(c, "%s      const cnn_real v = a * (bdy[(c * %d + y) * %d + x] - b - xh * q);\n", ind, H, Wd);
  for (int j = 0; j < n; j++) {
    ig_open(c, dst[j].ig);
    W(c, "%s      %s[c * %ld + y * %d + %ld + x] = v;\n", ind, dst[j].name, dst[j].plane, dst[j].row, dst[j].off);
    ig_close(c, dst[j].ig);
  }
  W(c, "%s    }\n%s}\n", ind, ind);
}

// BatchNorm2d layer k: batch statistics in training, running ones in eval;
// a dropout and a ReLU right after it are fused into its normalizing sweep.
// Its forward function takes the statistics (unless the conv before it
// did) and sets scale and shift; its sweep runs there too unless the conv
// after it runs it image by image (bn_sweep). Its backward sums the masked
// gradient (unless the conv after it did: bn_dsums) and sets the gradients
// of gamma and beta and dx's factors; dx itself runs there unless the conv
// before it runs it image by image (bn_dx).
static void bn_emit(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  const char *P = c->P;
  int C = l->out.c, HW = l->out.h * l->out.w;
  long off = (long)l->param_off, soff = (long)l->state_off;
  int ib = c->ibuf[k];
  long sz = c->isize[k];
  int dk, rk;
  bn_group(c, k, &dk, &rk);
  int stats_in_conv = c->bn_stats[k] >= 0;
  int bw = c->gmode[k + 1], dxm = c->gmode[l->src];
  layer_comment(c, k);
  if (dk >= 0)
    layer_comment(c, dk);
  if (rk >= 0)
    layer_comment(c, rk);
  if (dk >= 0 || rk >= 0)
    W(c, "// Fused: one sweep per image normalizes%s%s while the image is in cache\n"
         "// (in place in the output buffer, [batch][%d][%d])%s.\n",
      dk >= 0 ? ", drops" : "", rk >= 0 ? ", rectifies" : "", C, HW,
      c->bn_sweep[k] >= 0 ? ", run by the conv that reads it" : "");
  W(c, "// y = (x - mean) / sqrt(var + 1e-5) * gamma + beta; training updates the\n"
       "// running stats with momentum 0.1 and the unbiased variance.%s%s\n",
    dk >= 0 ? "\n// Dropout (training only): y = keep ? y / (1 - p) : 0, masks from "
              "per-image hash keys." : "",
    rk >= 0 ? "\n// ReLU: y = max(y, 0)." : "");
  W(c, "CNN_CLONES static void %s_l%d_bn_forward(int n, int training) {\n", P, k);
  W(c, "  const cnn_real *restrict gamma = %s_params + %ld, *restrict beta = %s_params + %ld;\n", P, off, P,
    off + C);
  W(c, "  cnn_real *restrict rmean = %s_state + %ld, *restrict rvar = %s_state + %ld;\n", P, soff, P, soff + C);
  W(c, "  cnn_real *restrict scale = %s_l%d_scale, *restrict shift = %s_l%d_shift;\n", P, k, P, k);
  W(c, "  if (training) {\n");
  if (stats_in_conv) {
    W(c, "    // The per-image sums were taken by layer %d's forward.\n", c->bn_stats[k]);
  } else {
    W(c, "  ");
    group_begin(c);
    W(c, "  ");
    images_begin(c);
    char x[96];
    snprintf(x, sizeof x, "%s_a%d + (size_t)i * %ld", P, ib, sz);
    emit_chan_sums(c, k, x, NULL, "        ");
    W(c, "      }\n    }\n");
  }
  W(c, "    const double N = (double)n * %d;\n", HW);
  W(c, "    for (int c = 0; c < %d; c++) {\n", C);
  W(c, "      double s = 0, sq = 0;\n");
  W(c, "      for (int i = 0; i < n; i++) {\n        s += %s_l%d_ps[i][c];\n        sq += %s_l%d_pq[i][c];\n      }\n", P, k, P, k);
  W(c, "      const double mean = s / N;\n");
  W(c, "      double var = sq / N - mean * mean;\n      if (var < 0)\n        var = 0;\n");
  W(c, "      const double invstd = 1 / sqrt(var + 1e-5);\n");
  W(c, "      %s_l%d_mean[c] = (cnn_real)mean;\n      %s_l%d_invstd[c] = (cnn_real)invstd;\n", P, k, P, k);
  W(c, "      rmean[c] = (cnn_real)(0.9 * rmean[c] + 0.1 * mean);\n");
  W(c, "      rvar[c] = (cnn_real)(0.9 * rvar[c] + 0.1 * (N > 1 ? var * N / (N - 1) : var));\n");
  W(c, "      scale[c] = gamma[c] * %s_l%d_invstd[c];\n", P, k);
  W(c, "      shift[c] = beta[c] - %s_l%d_mean[c] * scale[c];\n", P, k);
  W(c, "    }\n  } else {\n");
  W(c, "    for (int c = 0; c < %d; c++) {\n", C);
  W(c, "      scale[c] = gamma[c] * (cnn_real)(1 / sqrt((double)rvar[c] + 1e-5));\n");
  W(c, "      shift[c] = beta[c] - rmean[c] * scale[c];\n    }\n  }\n");
  if (bn_flat(c, k)) {
    W(c, "  // Spread per value: the sweep runs over whole images (%ld values).\n", sz);
    W(c, "  for (int c = 0; c < %d; c++)\n    for (int p = 0; p < %d; p++) {\n", C, HW);
    W(c, "      %s_l%d_scv[c * %d + p] = scale[c];\n      %s_l%d_shv[c * %d + p] = shift[c];\n    }\n", P, k, HW, P, k,
      HW);
  }
  if (c->bn_sweep[k] >= 0) {
    W(c, "  (void)n; // layer %d's forward runs the sweep, image by image\n", c->bn_sweep[k]);
  } else {
    group_begin(c);
    images_begin(c);
    bn_emit_sweep(c, k, "      ");
    group_end(c);
  }
  W(c, "}\n");

  if (!bw)
    return;
  ig_open(c, bw);
  W(c, "\n");
  if (rk >= 0 || dk >= 0)
    W(c, "// First, in place, the gradient at BN's output: dy%s%s.\n", rk >= 0 ? " where y > 0" : "",
      dk >= 0 ? (rk >= 0 ? ", times 1 / (1 - p) (y > 0 implies kept)" : ", times keep / (1 - p)") : "");
  W(c, "// dgamma = sum dy * xhat, dbeta = sum dy;\n"
       "// dx = gamma * invstd * (dy - dbeta / N - xhat * dgamma / N)%s.\n",
    c->bn_dx[k] >= 0 ? " (run by the conv before it, image by image)" : "");
  W(c, "CNN_CLONES static void %s_l%d_bn_backward(int n) {\n", P, k);
  if (c->bn_dsums[k] < 0) {
    group_begin(c);
    images_begin(c);
    bn_emit_dy_sums(c, k, "      ");
    group_end(c);
  } else {
    W(c, "  // Layer %d's backward masked dy and took the per-image sums.\n", c->bn_dsums[k]);
  }
  if (dxm) {
    ig_open(c, dxm);
    W(c, "  const double N = (double)n * %d;\n", HW);
    ig_close(c, dxm);
  }
  W(c, "  for (int c = 0; c < %d; c++) {\n", C);
  W(c, "    double db = 0, dg = 0;\n");
  W(c, "    for (int i = 0; i < n; i++) {\n      db += %s_l%d_ps[i][c];\n      dg += %s_l%d_pq[i][c];\n    }\n", P, k, P, k);
  W(c, "    %s_grads[%ld + c] = (cnn_real)dg;\n    %s_grads[%ld + c] = (cnn_real)db;\n", P, off, P, off + C);
  if (dxm) {
    ig_open(c, dxm);
    W(c, "    %s_l%d_k1[c] = %s_params[%ld + c] * %s_l%d_invstd[c];\n", P, k, P, off, P, k);
    W(c, "    %s_l%d_k2[c] = (cnn_real)(db / N);\n    %s_l%d_k3[c] = (cnn_real)(dg / N);\n", P, k, P, k);
    ig_close(c, dxm);
  }
  W(c, "  }\n");
  if (dxm && c->bn_dx[k] < 0) {
    ig_open(c, dxm);
    group_begin(c);
    images_begin(c);
    bn_emit_dx(c, k, "      ");
    group_end(c);
    ig_close(c, dxm);
  }
  W(c, "}\n");
  ig_close(c, bw);
}

// gamma 1, beta 0; running mean 0, variance 1.
static void bn_init(TrainCtx *c, int k) {
  const Layer *l = &c->net->layers[k];
  int C = l->out.c;
  W(c, "  for (int j = 0; j < %d; j++) { // layer %d batchnorm\n", C, k);
  W(c, "    %s_params[%ld + j] = 1;\n    %s_params[%ld + j] = 0;\n", c->P, (long)l->param_off, c->P,
    (long)l->param_off + C);
  W(c, "    %s_state[%ld + j] = 0;\n    %s_state[%ld + j] = 1;\n  }\n", c->P, (long)l->state_off, c->P,
    (long)l->state_off + C);
}

// Folds into the conv op before it: only a conv's own affine output can
// absorb BN exactly.
// Folds into the conv it reads (its scale into the weights, its shift into
// the bias).
static int bn_lower(InferPlan *p, const Net *net, int i, char *msg, size_t n) {
  InferOp *op = infer_plan_fold_target(p, net, i, msg, n);
  if (!op)
    return -1;
  // After a flatten its channels are no longer the conv's.
  if (op->kind != IOP_CONV || op->relu || op->bn >= 0 || op->out.c != net->layers[i].in.c) {
    snprintf(msg, n,
             "layer %d: inference code folds batchnorm into the conv before it; "
             "this one follows %s",
             i + 1, op->relu ? "a relu" : layer_kind_name(net->layers[op->last].kind));
    return -1;
  }
  op->bn = i;
  op->last = i;
  return 0;
}

// PyTorch's BatchNorm2d with its defaults, which are cnnc's (eps 1e-5, momentum 0.1).
static void bn_torch(const Layer *l, char *mod, size_t n, char *pre, size_t pren) {
  (void)pre, (void)pren;
  snprintf(mod, n, "nn.BatchNorm2d(%d)", l->out.c);
}

// gamma and beta as weight and bias; the running statistics in the state block.
static int bn_tensors(const Layer *l, LayerTensor t[4]) {
  int c = l->out.c;
  t[0] = (LayerTensor){"weight", false, 0, 1, {c}};
  t[1] = (LayerTensor){"bias", false, c, 1, {c}};
  t[2] = (LayerTensor){"running_mean", true, 0, 1, {c}};
  t[3] = (LayerTensor){"running_var", true, c, 1, {c}};
  return 4;
}

const LayerDef layer_batchnorm = {
    .name = "batchnorm", .costs = bn_costs, .transform = bn_transform,
    .fn = "bn", .fwd_training = true, .emit_decls = bn_decls, .emit_train = bn_emit, .emit_init = bn_init,
    .lower = bn_lower,
    .torch = bn_torch, .torch_in = 4, .tensors = bn_tensors,
};
