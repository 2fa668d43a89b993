// infer_nets.c: the inference code of any network against its training
// code. For one .cnn file and weights (a checkpoint, or PyTorch's default
// init drawn by the training code), it emits the training code and the
// float and int8 inference code, builds them (-Werror: gcc, clang and, when
// installed, arm-none-eabi-gcc for the Cortex-M4), loads them, and on the
// test images of a data directory checks that
//   - float inference = the training code's eval forward (log-probs within
//     1e-4, the same class except where the top two tie within rounding);
//   - int8 is within TOL points of float's accuracy, and its DSP path
//     (emulated ACLE intrinsics) gives the portable path's bits.
//   infer_nets OUTDIR DATADIR NET.cnn CKPT|- TOL [N]
// Prints ok/FAIL lines and "RESULT run failed" (tests/run.sh).
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "checkpoint.h"
#include "cnn_net.h"
#include "emit.h"
#include "idx.h"
#include "infer_plan.h"
#include "net_ckpt.h"
#include "scores.h"

typedef int (*predict_fn)(const uint8_t *);
typedef void (*scores_fn)(const uint8_t *, float *);

static int run, failed;

// Records one check.
static void check(int ok, const char *fmt, ...) {
  va_list ap;
  run++;
  failed += !ok;
  printf("%s - ", ok ? "ok  " : "FAIL");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
}

// Runs a shell command; its exit status (0: success).
static int sh(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  if (rc != 0)
    fprintf(stderr, "infer_nets: command failed (%d): %s\n", rc, cmd);
  return rc;
}

// dlopen of a path (not searched); NULL after a message.
static void *open_so(const char *path) {
  char abs[4200];
  snprintf(abs, sizeof abs, "%s%s", path[0] == '/' ? "" : "./", path);
  void *h = dlopen(abs, RTLD_NOW);
  if (!h)
    fprintf(stderr, "infer_nets: dlopen %s: %s\n", path, dlerror());
  return h;
}

// A symbol NAME_suffix of h.
static void *sym(void *h, const char *name, const char *suffix) {
  char s[256];
  snprintf(s, sizeof s, "%s_%s", name, suffix);
  void *p = h ? dlsym(h, s) : NULL;
  if (!p)
    fprintf(stderr, "infer_nets: no symbol %s\n", s);
  return p;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: infer_nets OUTDIR DATADIR NET.cnn CKPT|- TOL [N]\n");
    return 2;
  }
  const char *dir = argv[1], *data = argv[2], *file = argv[3], *ck = argv[4];
  double tol = atof(argv[5]);
  int limit = argc > 6 ? atoi(argv[6]) : 10000;
  Net net = {0};
  cnn_idx test = {0};
  cnn_ckpt c = {0};
  float *x = NULL, *s = NULL, *sq = NULL, *sd = NULL;
  double *got = NULL, *want = NULL;
  int rc = 1;
  if (cnnc_load_file(file, &net) != 0)
    goto done;
  const char *N = net.name;
  char err[512];
  if (cnn_idx_load(data, "t10k", net.classes, &test, err, sizeof err) < 0 ||
      cnn_idx_check(&test, N, net.input.c, net.input.h, net.input.w, err, sizeof err) < 0) {
    fprintf(stderr, "infer_nets: %s\n", err);
    goto done;
  }
  // The training code, built without the sanitizers (it runs every image).
  EmitOptions topt = {0};
  if (sh("mkdir -p %s", dir) || emit_train(&net, dir, &topt) != 0 ||
      sh("gcc -std=c11 -O2 -fPIC -shared -Wall -Wextra -Wpedantic -Werror -Iruntime %s/%s_train.c "
         "runtime/rng.c -o %s/%s_train.so -lopenblas -lm", dir, N, dir, N))
    goto done;
  char so[4200];
  snprintf(so, sizeof so, "%s/%s_train.so", dir, N);
  void *ht = open_so(so);
  cnn_net *tn = sym(ht, N, "net");
  if (!tn)
    goto done;
  if (strcmp(ck, "-")) {
    if (net_ckpt_load(&net, ck, &c, err, sizeof err) < 0) {
      fprintf(stderr, "infer_nets: %s\n", err);
      goto done;
    }
    memcpy(tn->params, c.params, sizeof(float) * tn->n_params);
    memcpy(tn->state, c.state, sizeof(float) * tn->n_state);
  } else {
    cnn_rng rng;
    cnn_rng_seed(&rng, 1, 1);
    tn->init(&rng);
  }
  // Float and int8 inference code from the same weights.
  EmitOptions fopt = {0}, qopt = {.int8 = true, .calib_dir = data, .calib_n = 500};
  if (emit_infer_plan(&net, dir, tn->params, tn->state, &fopt) != 0 ||
      emit_infer_plan(&net, dir, tn->params, tn->state, &qopt) != 0)
    goto done;
  const char *W = "-std=c99 -Wall -Wextra -Wpedantic -Werror";
  for (int q = 0; q < 2; q++) {
    const char *v = q ? "_int8" : "";
    check(sh("gcc %s -O2 -fPIC -shared %s/%s_infer%s.c -o %s/%s_infer%s.so", W, dir, N, v, dir, N, v) == 0,
          "%s%s: inference code builds with gcc -Werror", N, v);
    check(sh("clang %s -O2 -c %s/%s_infer%s.c -o %s/%s_infer%s.clang.o", W, dir, N, v, dir, N, v) == 0,
          "%s%s: and with clang -Werror", N, v);
    if (system("command -v arm-none-eabi-gcc >/dev/null 2>&1") == 0)
      check(sh("arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 %s -O2 -c "
               "%s/%s_infer%s.c -o %s/%s_infer%s.arm.o", W, dir, N, v, dir, N, v) == 0,
            "%s%s: and with arm-none-eabi-gcc -Werror for the Cortex-M4 (DSP path)", N, v);
  }
  check(sh("gcc %s -O2 -fPIC -shared -D__ARM_FEATURE_DSP=1 -Iexamples/firmware/acle_host "
           "%s/%s_infer_int8.c -o %s/%s_infer_int8_dsp.so", W, dir, N, dir, N) == 0,
        "%s_int8: DSP path builds on the host (emulated intrinsics)", N);
  void *hf, *hq, *hd;
  snprintf(so, sizeof so, "%s/%s_infer.so", dir, N);
  hf = open_so(so);
  snprintf(so, sizeof so, "%s/%s_infer_int8.so", dir, N);
  hq = open_so(so);
  snprintf(so, sizeof so, "%s/%s_infer_int8_dsp.so", dir, N);
  hd = open_so(so);
  char qn[200];
  snprintf(qn, sizeof qn, "%s_int8", N);
  scores_fn fs = (scores_fn)(uintptr_t)sym(hf, N, "scores"), qs = (scores_fn)(uintptr_t)sym(hq, qn, "scores"),
            ds = (scores_fn)(uintptr_t)sym(hd, qn, "scores");
  predict_fn fp = (predict_fn)(uintptr_t)sym(hf, N, "predict"), qp = (predict_fn)(uintptr_t)sym(hq, qn, "predict");
  if (!fs || !qs || !ds || !fp || !qp)
    goto done;

  int n = test.n < limit ? test.n : limit, nb = tn->batch, K = net.classes;
  size_t px = (size_t)net.input.c * net.input.h * net.input.w;
  x = malloc(sizeof *x * (size_t)nb * px), s = malloc(sizeof *s * K), sq = malloc(sizeof *sq * K);
  sd = malloc(sizeof *sd * K), got = malloc(sizeof *got * K), want = malloc(sizeof *want * K);
  if (!x || !s || !sq || !sd || !got || !want)
    goto done;
  float mean = (float)net.train.mean, std = (float)net.train.std;
  double maxdiff = 0;
  int fok = 0, tok = 0, qok = 0, agree = 0, mismatch = 0, ties = 0, dsp_differ = 0, argmax_bad = 0;
  for (int b0 = 0; b0 < n; b0 += nb) {
    int m = n - b0 < nb ? n - b0 : nb;
    const uint8_t *img0 = test.pixels + (size_t)b0 * px;
    // HWC pixels to the training code's normalized CHW.
    for (int i = 0; i < m; i++)
      for (int ch = 0; ch < net.input.c; ch++)
        for (int j = 0; j < net.input.h * net.input.w; j++)
          x[(size_t)i * px + (size_t)ch * net.input.h * net.input.w + j] =
              ((float)img0[(size_t)i * px + (size_t)j * net.input.c + ch] / 255.0f - mean) / std;
    tn->forward(x, NULL, m, 0, NULL);
    for (int i = 0; i < m; i++) {
      const uint8_t *img = img0 + (size_t)i * px;
      int label = test.labels[b0 + i];
      double mt, mi;
      fs(img, s);
      log_softmax(s, got, K);
      for (int k = 0; k < K; k++) {
        want[k] = tn->logprobs[i * K + k];
        maxdiff = fmax(maxdiff, fabs(got[k] - want[k]));
      }
      int pi = top(got, K, &mi), pt = top(want, K, &mt);
      if (mt <= 1e-4)
        ties++;
      else
        mismatch += pi != pt;
      qs(img, sq);
      ds(img, sd);
      dsp_differ += memcmp(sq, sd, sizeof *sq * K) != 0;
      int pq = qp(img), best = 0;
      for (int k = 1; k < K; k++)
        if (sq[k] > sq[best])
          best = k;
      argmax_bad += best != pq;
      argmax_bad += fp(img) != pi && mi > 1e-5;
      fok += pi == label;
      tok += pt == label;
      qok += pq == label;
      agree += pq == pi;
    }
  }
  check(maxdiff <= 1e-4, "%s: float inference = training eval forward on %d images: max |logprob diff| %.3g",
        N, n, maxdiff);
  check(mismatch == 0, "%s: the same class on all but near-ties (%d differ, %d near-ties)", N, mismatch, ties);
  check(argmax_bad == 0, "%s: predict is the argmax of scores, float and int8", N);
  check(dsp_differ == 0, "%s_int8: DSP path = portable path, bit for bit, on %d of %d", N, n - dsp_differ, n);
  check(fabs(100.0 * (fok - qok) / n) <= tol,
        "%s: accuracy float %.2f%% (training code %.2f%%), int8 %.2f%% (within %.2f points), int8 = float "
        "on %.2f%%", N, 100.0 * fok / n, 100.0 * tok / n, 100.0 * qok / n, tol, 100.0 * agree / n);
  printf("RESULT %d %d\n", run, failed);
  rc = failed != 0;
done:
  free(x), free(s), free(sq), free(sd), free(got), free(want);
  cnn_ckpt_free(&c);
  cnn_idx_free(&test);
  net_free(&net);
  return rc;
}
