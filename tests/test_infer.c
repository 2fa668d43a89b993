// test_infer.c: the generated inference code. It is emitted for mnist14k
// (random weights, and models/mnist14k.ckpt when it exists), compiled with
// gcc, clang and arm-none-eabi-gcc under -std=c99 -Werror, loaded with
// dlopen and run on MNIST test images against an independent double forward
// of the unfolded network (conv, BN, ReLU, pool, GAP, log_softmax), and on
// all 10,000 against the eval-mode forward of the generated training code
// (emit_train, built -O2 without the sanitizers and loaded the same way).
// `cnnc summary --weights` is run here too, where checkpoints can be made.
#include <CUnit/CUnit.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"
#include "checkpoint.h"
#include "cnn_net.h"
#include "emit.h"
#include "idx.h"
#include "infer_plan.h"
#include "net_ckpt.h"
#include "quant.h"
#include "scores.h"
#include "torch_module.h"

#define OUT "build/test_infer"
#define ARM_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"

typedef int (*predict_fn)(const uint8_t *);
typedef void (*scores_fn)(const uint8_t *, float *);

static Net net;
static float *params, *state;
static cnn_idx test_set;
static const char *mnist_dir;

// mnist14k as cnnc reads it from models/mnist14k.cnn (again after a test
// edited its layers).
static void build_net(void) {
  net_free(&net);
  if (cnnc_load_file("models/mnist14k.cnn", &net) != 0)
    fprintf(stderr, "test_infer: cannot load models/mnist14k.cnn\n");
}

// Uniform in [lo, hi) from a fixed LCG, so every run tests the same weights.
static double uni(uint64_t *s, double lo, double hi) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return lo + (hi - lo) * (double)(*s >> 11) / 9007199254740992.0;
}

// PyTorch-like random weights and plausible BN statistics.
static void random_weights(void) {
  uint64_t s = 42;
  params = malloc(sizeof *params * (size_t)net.n_params);
  state = malloc(sizeof *state * (size_t)net.n_state);
  for (int i = 0; i < net.n_layers; i++) {
    const Layer *l = &net.layers[i];
    if (l->kind == L_CONV) {
      double b = 1.0 / sqrt((double)l->in.c * l->kh * l->kw);
      for (long j = 0; j < l->n_params; j++)
        params[l->param_off + j] = (float)uni(&s, -b, b);
    } else if (l->kind == L_BATCHNORM) {
      int c = l->out.c;
      for (int j = 0; j < c; j++) {
        params[l->param_off + j] = (float)uni(&s, 0.5, 1.5);
        params[l->param_off + c + j] = (float)uni(&s, -0.2, 0.2);
        state[l->state_off + j] = (float)uni(&s, -0.3, 0.3);
        state[l->state_off + c + j] = (float)uni(&s, 0.05, 0.5);
      }
    }
  }
}

// The unfolded network in double, CHW, PyTorch eval semantics: log-probs.
static void reference(const uint8_t *img, double *logp) {
  static double a[16 * 28 * 28 * 2], b[16 * 28 * 28 * 2];
  Shape s = net.input;
  for (int j = 0; j < 28 * 28; j++)
    a[j] = (img[j] / 255.0 - net.train.mean) / net.train.std;
  for (int i = 0; i < net.n_layers; i++) {
    const Layer *l = &net.layers[i];
    Shape o = l->out;
    switch (l->kind) {
    case L_CONV: {
      const float *w = params + l->param_off;
      for (int oc = 0; oc < o.c; oc++)
        for (int y = 0; y < o.h; y++)
          for (int x = 0; x < o.w; x++) {
            double acc = 0;
            for (int ic = 0; ic < s.c; ic++)
              for (int ky = 0; ky < l->kh; ky++)
                for (int kx = 0; kx < l->kw; kx++)
                  acc += w[((oc * s.c + ic) * l->kh + ky) * l->kw + kx] *
                         a[(ic * s.h + y + ky) * s.w + x + kx];
            b[(oc * o.h + y) * o.w + x] = acc;
          }
      break;
    }
    case L_BATCHNORM:
      for (int c = 0; c < s.c; c++) {
        double g = params[l->param_off + c], be = params[l->param_off + s.c + c];
        double m = state[l->state_off + c], v = state[l->state_off + s.c + c];
        for (int j = 0; j < s.h * s.w; j++)
          b[c * s.h * s.w + j] = (a[c * s.h * s.w + j] - m) / sqrt(v + 1e-5) * g + be;
      }
      break;
    case L_RELU:
      for (int j = 0; j < s.c * s.h * s.w; j++)
        b[j] = a[j] > 0 ? a[j] : 0;
      break;
    case L_MAXPOOL:
      for (int c = 0; c < o.c; c++)
        for (int y = 0; y < o.h; y++)
          for (int x = 0; x < o.w; x++) {
            double m = -1e300;
            for (int ky = 0; ky < l->kh; ky++)
              for (int kx = 0; kx < l->kw; kx++)
                m = fmax(m, a[(c * s.h + y * l->sh + ky) * s.w + x * l->sw + kx]);
            b[(c * o.h + y) * o.w + x] = m;
          }
      break;
    case L_GAP:
      for (int c = 0; c < s.c; c++) {
        double sum = 0;
        for (int j = 0; j < s.h * s.w; j++)
          sum += a[c * s.h * s.w + j];
        b[c] = sum / (s.h * s.w);
      }
      break;
    case L_LOG_SOFTMAX: {
      double mx = a[0], sum = 0;
      for (int c = 1; c < s.c; c++)
        mx = fmax(mx, a[c]);
      for (int c = 0; c < s.c; c++)
        sum += exp(a[c] - mx);
      for (int c = 0; c < s.c; c++)
        b[c] = a[c] - mx - log(sum);
      break;
    }
    case L_DROPOUT:
      memcpy(b, a, sizeof(double) * (size_t)(s.c * s.h * s.w));
      break;
    default: // this reference covers mnist14k's kinds only
      CU_FAIL_FATAL("reference: layer kind not covered");
    }
    memcpy(a, b, sizeof(double) * (size_t)(o.c * o.h * o.w));
    s = o;
  }
  memcpy(logp, a, sizeof(double) * 10);
}

// Runs a shell command; its exit status.
static int sh(const char *fmt, const char *a, const char *b) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, fmt, a, b, a, b);
  int rc = system(cmd);
  if (rc != 0)
    fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
  return rc;
}

// Emits float or int8 code into dir; 0 on success.
static int emit(const char *dir, bool int8) {
  EmitOptions opt = {.int8 = int8, .calib_dir = mnist_dir, .calib_n = 1000};
  return emit_infer_plan(&net, dir, params, state, &opt);
}

// Builds dir/mnist14k_infer{,_int8}.c into a shared object and loads it;
// dsp: the int8 code's DSP path, on the emulated intrinsics of
// examples/firmware/acle_host.
static void *load_as(const char *dir, const char *suffix, bool dsp) {
  char src[256], so[256];
  snprintf(src, sizeof src, "%s/mnist14k_infer%s.c", dir, suffix);
  snprintf(so, sizeof so, "%s/mnist14k_infer%s%s.so", dir, suffix, dsp ? "_dsp" : "");
  if (sh(dsp ? "gcc -std=c99 -O2 -fPIC -shared -Wall -Wextra -Wpedantic -Werror "
               "-D__ARM_FEATURE_DSP=1 -Iexamples/firmware/acle_host %s -o %s"
             : "gcc -std=c99 -O2 -fPIC -shared -Wall -Wextra -Wpedantic -Werror %s -o %s",
         src, so))
    return NULL;
  char abs[300];
  snprintf(abs, sizeof abs, "./%s", so); // a path, so dlopen does not search
  void *h = dlopen(abs, RTLD_NOW);
  if (!h)
    fprintf(stderr, "dlopen %s: %s\n", so, dlerror());
  return h;
}

// The portable build of dir's inference code.
static void *load(const char *dir, const char *suffix) {
  return load_as(dir, suffix, false);
}

// Compares float and int8 code for the current weights on n test images.
// The double reference (slow under the sanitizers) runs on the first nref.
static void check_accuracy(const char *dir, int n, int nref, bool trained) {
  CU_ASSERT_EQUAL_FATAL(emit(dir, false), 0);
  CU_ASSERT_EQUAL_FATAL(emit(dir, true), 0);
  void *hf = load(dir, ""), *hq = load(dir, "_int8");
  CU_ASSERT_PTR_NOT_NULL_FATAL(hf);
  CU_ASSERT_PTR_NOT_NULL_FATAL(hq);
  predict_fn fpred = (predict_fn)(uintptr_t)dlsym(hf, "mnist14k_predict");
  scores_fn fscores = (scores_fn)(uintptr_t)dlsym(hf, "mnist14k_scores");
  predict_fn qpred = (predict_fn)(uintptr_t)dlsym(hq, "mnist14k_int8_predict");
  scores_fn qscores = (scores_fn)(uintptr_t)dlsym(hq, "mnist14k_int8_scores");
  CU_ASSERT_FATAL(fpred && fscores && qpred && qscores);
  // The DSP path (emulated intrinsics) must give the portable path's bits.
  void *hd = load_as(dir, "_int8", true);
  CU_ASSERT_PTR_NOT_NULL_FATAL(hd);
  scores_fn dscores = (scores_fn)(uintptr_t)dlsym(hd, "mnist14k_int8_scores");
  CU_ASSERT_PTR_NOT_NULL_FATAL(dscores);
  double maxdiff = 0;
  int fcorrect = 0, qcorrect = 0, refcorrect = 0, agree = 0, mismatch = 0, dsp_differ = 0;
  for (int i = 0; i < n; i++) {
    const uint8_t *img = test_set.pixels + (size_t)i * 784;
    double ref[10], got[10];
    float s[10], sq[10], sd[10];
    qscores(img, sq);
    dscores(img, sd);
    dsp_differ += memcmp(sq, sd, sizeof sq) != 0;
    fscores(img, s);
    if (i >= nref) { // past the reference sample: float vs int8 and labels only
      int fb = fpred(img), qb = qpred(img);
      fcorrect += fb == test_set.labels[i];
      qcorrect += qb == test_set.labels[i];
      agree += qb == fb;
      continue;
    }
    reference(img, ref);
    log_softmax(s, got, 10);
    int rbest = 0, fbest = fpred(img), qbest = qpred(img);
    for (int c = 0; c < 10; c++) {
      maxdiff = fmax(maxdiff, fabs(ref[c] - got[c]));
      if (ref[c] > ref[rbest])
        rbest = c;
    }
    // Predictions may only differ where two classes tie within rounding.
    double second = -1e300;
    for (int c = 0; c < 10; c++)
      if (c != rbest)
        second = fmax(second, ref[c]);
    if (fbest != rbest && ref[rbest] - second > 1e-4)
      mismatch++;
    qscores(img, sq);
    int sbest = 0;
    for (int c = 1; c < 10; c++)
      if (sq[c] > sq[sbest])
        sbest = c;
    CU_ASSERT_EQUAL(sbest, qbest); // predict is argmax of scores
    fcorrect += fbest == test_set.labels[i];
    refcorrect += rbest == test_set.labels[i];
    qcorrect += qbest == test_set.labels[i];
    agree += qbest == fbest;
  }
  printf("\n  %s weights, %d images: max |logprob diff| %.3g over the first %d, float acc %.2f%% "
         "(reference %d/%d), int8 acc %.2f%%, int8 agrees with float on %.2f%%\n",
         trained ? "trained" : "random", n, maxdiff, nref, 100.0 * fcorrect / n, refcorrect, nref,
         100.0 * qcorrect / n, 100.0 * agree / n);
  printf("  int8 DSP path (emulated intrinsics) = portable path, bit for bit, on %d of %d\n",
         n - dsp_differ, n);
  CU_ASSERT_EQUAL(dsp_differ, 0);
  CU_ASSERT(maxdiff <= 1e-4);
  CU_ASSERT_EQUAL(mismatch, 0);
  if (trained) {
    CU_ASSERT(fabs(100.0 * (fcorrect - qcorrect) / n) <= 0.2);
  } else {
    CU_ASSERT(agree >= n * 9 / 10); // random logits sit close together
  }
  dlclose(hf);
  dlclose(hq);
  dlclose(hd);
}

// Float code equals the unfolded double forward; int8 tracks float.
static void test_random_weights(void) {
  CU_ASSERT_PTR_NOT_NULL_FATAL(test_set.pixels);
  check_accuracy(OUT "/random", 1000, 1000, false);
}

// Loads checkpoint ck and checks it is mnist14k's; 0, or -1 with a message.
static int load_trained(const char *ck, cnn_ckpt *c) {
  char err[512];
  int rc = net_ckpt_load(&net, ck, c, err, sizeof err);
  if (rc != 0)
    fprintf(stderr, "%s\n", err);
  return rc;
}

// With the trained checkpoint: all 10,000 test images.
static void test_trained_weights(void) {
  // CNNC_INFER_CKPT points the suite at another checkpoint of mnist14k.
  const char *ck = getenv("CNNC_INFER_CKPT") ? getenv("CNNC_INFER_CKPT") : "models/mnist14k.ckpt";
  FILE *f = fopen(ck, "rb");
  if (!f) {
    printf("\n  (no %s: skipped)\n", ck);
    return;
  }
  fclose(f);
  cnn_ckpt c;
  CU_ASSERT_EQUAL_FATAL(load_trained(ck, &c), 0);
  float *rp = params, *rs = state;
  params = c.params;
  state = c.state;
  check_accuracy(OUT "/trained", test_set.n, 2000, true);
  params = rp;
  state = rs;
  cnn_ckpt_free(&c);
}

// The generated code is C99 and warning-free for gcc, clang and the Cortex-M4
// compiler; its .bss is exactly the arena cnnc computed; it needs no heap,
// stdio or libm.
static void test_firmware_object(void) {
  const char *dir = OUT "/random";
  CU_ASSERT_EQUAL_FATAL(emit(dir, false), 0);
  CU_ASSERT_EQUAL_FATAL(emit(dir, true), 0);
  const char *suffix[2] = {"", "_int8"};
  for (int q = 0; q < 2; q++) {
    char src[256], obj[256];
    snprintf(src, sizeof src, "%s/mnist14k_infer%s.c", dir, suffix[q]);
    snprintf(obj, sizeof obj, "%s/mnist14k_infer%s.arm.o", dir, suffix[q]);
    CU_ASSERT_EQUAL(sh("clang -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -c %s -o %s.clang", src, obj), 0);
    CU_ASSERT_EQUAL(sh("gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -c %s -o %s.gcc", src, obj), 0);
    CU_ASSERT_EQUAL_FATAL(sh("arm-none-eabi-gcc -std=c99 -O2 " ARM_FLAGS
                             " -Wall -Wextra -Wpedantic -Werror -c %s -o %s",
                             src, obj), 0);
    // .bss of the object == the arena of the plan.
    char cmd[512];
    snprintf(cmd, sizeof cmd, "arm-none-eabi-size %s | awk 'NR==2{print $3}'", obj);
    FILE *p = popen(cmd, "r");
    long bss = -1;
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(fscanf(p, "%ld", &bss), 1);
    pclose(p);
    long flash, ram;
    CU_ASSERT_EQUAL(infer_memory(&net, q == 1, &flash, &ram, NULL, NULL), 0);
    printf("\n  %s: arena %ld bytes, .bss %ld; tables %ld bytes", q ? "int8" : "float", ram, bss,
           flash);
    CU_ASSERT_EQUAL(bss, ram);
    if (q == 1) {
      CU_ASSERT(ram <= 8 * 1024);
      CU_ASSERT(flash <= 24 * 1024);
    }
    // Nothing from the heap, stdio or libm.
    snprintf(cmd, sizeof cmd,
             "arm-none-eabi-nm -u %s | grep -E -w "
             "'malloc|calloc|realloc|free|printf|puts|putchar|fopen|fwrite|"
             "expf?|logf?|sqrtf?|powf?|floorf?|roundf?|lroundf?|fabsf?|tanhf?'",
             obj);
    CU_ASSERT_NOT_EQUAL(system(cmd), 0); // grep finds nothing
    // The header's defines agree with the plan.
    char h[256];
    snprintf(h, sizeof h, "%s/mnist14k_infer%s.h", dir, suffix[q]);
    snprintf(cmd, sizeof cmd, "grep -q 'define MNIST14K_%sARENA_BYTES %ld$' %s", q ? "INT8_" : "",
             ram, h);
    CU_ASSERT_EQUAL(system(cmd), 0);
  }
}

// The memory plan streams: no op keeps more rows than its consumer's kernel.
static void test_plan(void) {
  InferPlan p;
  char msg[256];
  CU_ASSERT_EQUAL_FATAL(infer_plan_build(&net, false, &p, msg, sizeof msg), 0);
  CU_ASSERT_EQUAL(p.n_ops, 9); // 7 convs (BN, dropout, ReLU folded), maxpool, gap
  CU_ASSERT_EQUAL(p.ops[0].rows, 3);      // conv2 reads 3 rows of conv1
  CU_ASSERT_EQUAL(p.ops[2].rows, 2);      // maxpool 2 reads 2 rows of conv3
  CU_ASSERT_EQUAL(p.ops[3].rows, 1);      // the 1x1 conv reads one pooled row
  CU_ASSERT_EQUAL(p.ops[p.n_ops - 2].rows, 1); // gap sums rows as they come
  long sum = 0;
  for (int i = 0; i < p.n_ops; i++)
    sum += p.ops[i].bytes;
  CU_ASSERT_EQUAL(sum, p.arena_bytes);
  // Far below the largest whole map (26x26x16 floats).
  CU_ASSERT(p.arena_bytes < 26 * 26 * 16 * 4 / 2);
  long per_flash[32], per_ram[32], flash, ram;
  CU_ASSERT_EQUAL(infer_memory(&net, false, &flash, &ram, per_flash, per_ram), 0);
  CU_ASSERT_EQUAL(per_flash[0], 4 * (16 * 9 + 16));
  // weights + folded biases; the schedule, a byte per row call, apart
  CU_ASSERT_EQUAL(p.n_sched, 26 + 24 + 22 + 11 + 11 + 9 + 7 + 7 + 7);
  CU_ASSERT_EQUAL(flash, 4 * (13888 + 4 * 16 + 2 * 24 + 10));
  CU_ASSERT_EQUAL(p.sched_bytes, p.n_sched);
  infer_plan_free(&p);
  // BN after a ReLU cannot be folded: refused with a message.
  Layer save = net.layers[2];
  net.layers[2] = net.layers[3];
  net.layers[3] = save; // conv, bn, relu, dropout: still fine
  net.layers[2].src = 2;  // each still reads the layer before it
  net.layers[3].src = 3;
  CU_ASSERT_EQUAL(infer_plan_build(&net, false, &p, msg, sizeof msg), 0);
  infer_plan_free(&p);
  net.layers[1].kind = L_RELU;
  net.layers[2].kind = L_BATCHNORM;
  CU_ASSERT_EQUAL(infer_plan_build(&net, false, &p, msg, sizeof msg), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "batchnorm"));
  build_net();
}

// Fixed-point multipliers represent the real ones to 31 bits.
static void test_multiplier(void) {
  double ms[] = {0.5, 0.001234, 3.7, 1.0, 1e-7};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
    int32_t m;
    int s;
    CU_ASSERT_EQUAL_FATAL(quant_multiplier(ms[i], &m, &s), 0);
    CU_ASSERT(m >= (1 << 30));
    CU_ASSERT(fabs(ldexp(m, -s) / ms[i] - 1) < 1e-9);
  }
  int32_t m;
  int s;
  CU_ASSERT_EQUAL(quant_multiplier(0.0, &m, &s), -1);
  CU_ASSERT_EQUAL(quant_multiplier(1e30, &m, &s), -1);
}

// The checkpoint the suite compares with: CNNC_INFER_CKPT, else the trained
// models/mnist14k.ckpt; NULL when that file does not exist.
static const char *ckpt_path(void) {
  const char *ck = getenv("CNNC_INFER_CKPT") ? getenv("CNNC_INFER_CKPT") : "models/mnist14k.ckpt";
  FILE *f = fopen(ck, "rb");
  if (!f)
    return NULL;
  fclose(f);
  return ck;
}

// Float inference = the training code's eval forward (BatchNorm on running
// statistics, dropout off, log_softmax) on every test image, for the same
// weights: the checkpoint's, or the random ones until one is trained.
static void test_matches_training(void) {
  CU_ASSERT_PTR_NOT_NULL_FATAL(test_set.pixels);
  struct timespec t0, t1, t2;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const char *ck = ckpt_path();
  cnn_ckpt c = {0};
  const float *wp = params, *ws = state;
  if (ck) {
    CU_ASSERT_EQUAL_FATAL(load_trained(ck, &c), 0);
    wp = c.params;
    ws = c.state;
  }
  // Both programs from the same net and weights.
  const char *dir = OUT "/vs_train";
  EmitOptions topt = {0};
  CU_ASSERT_EQUAL_FATAL(emit_train(&net, dir, &topt), 0);
  EmitOptions iopt = {0};
  CU_ASSERT_EQUAL_FATAL(emit_infer_plan(&net, dir, wp, ws, &iopt), 0);
  void *hi = load(dir, "");
  CU_ASSERT_PTR_NOT_NULL_FATAL(hi);
  // The training code needs the PCG32 of the runtime (dropout) and BLAS. One
  // thread (no OpenMP, one BLAS thread): on 2 busy cores, threads that wait
  // for each other made the 10,000 forwards 10x slower.
  if (sh("gcc -std=c11 -O2 -fPIC -shared -Wall -Wextra -Wpedantic -Werror -Iruntime "
         "%s/mnist14k_train.c runtime/rng.c -o %s/mnist14k_train.so -lopenblas -lm",
         dir, dir))
    CU_FAIL_FATAL("cannot build the training code");
  void *ht = dlopen("./" OUT "/vs_train/mnist14k_train.so", RTLD_NOW);
  if (!ht)
    fprintf(stderr, "dlopen: %s\n", dlerror());
  CU_ASSERT_PTR_NOT_NULL_FATAL(ht);
  scores_fn fscores = (scores_fn)(uintptr_t)dlsym(hi, "mnist14k_scores");
  cnn_net *tn = dlsym(ht, "mnist14k_net");
  CU_ASSERT_FATAL(fscores && tn);
  CU_ASSERT_FATAL(tn->n_params == (size_t)net.n_params && tn->n_state == (size_t)net.n_state);
  CU_ASSERT_FATAL(tn->in_c == 1 && tn->in_h == 28 && tn->in_w == 28 && tn->classes == 10);
  // Same layout in checkpoints and the training code's blocks.
  memcpy(tn->params, wp, sizeof(float) * tn->n_params);
  memcpy(tn->state, ws, sizeof(float) * tn->n_state);
  void *self = dlopen(NULL, RTLD_NOW); // the suite and the libraries it links (OpenBLAS)
  void (*blas_threads)(int) =
      self ? (void (*)(int))(uintptr_t)dlsym(self, "openblas_set_num_threads") : NULL;
  int (*blas_get)(void) = self ? (int (*)(void))(uintptr_t)dlsym(self, "openblas_get_num_threads") : NULL;
  int blas_was = blas_get ? blas_get() : 0;
  if (blas_threads)
    blas_threads(1);
  clock_gettime(CLOCK_MONOTONIC, &t1);

  int n = test_set.n, nb = tn->batch;
  float *x = malloc(sizeof *x * (size_t)nb * 784);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  double maxdiff = 0;
  int icorrect = 0, tcorrect = 0, compared = 0, mismatch = 0, near_tie = 0, tie_differ = 0;
  float mean = (float)tn->train->mean, std = (float)tn->train->std;
  for (int b0 = 0; b0 < n; b0 += nb) {
    int m = n - b0 < nb ? n - b0 : nb; // the last batch is short
    const uint8_t *px = test_set.pixels + (size_t)b0 * 784;
    for (size_t j = 0; j < (size_t)m * 784; j++)
      x[j] = ((float)px[j] / 255.0f - mean) / std;
    tn->forward(x, NULL, m, 0, NULL);
    for (int i = 0; i < m; i++) {
      const uint8_t *img = px + (size_t)i * 784; // 1 channel: HWC = CHW
      float s[10];
      double got[10], want[10], mi, mt;
      fscores(img, s);
      log_softmax(s, got, 10);
      for (int c = 0; c < 10; c++) {
        want[c] = tn->logprobs[i * 10 + c];
        maxdiff = fmax(maxdiff, fabs(got[c] - want[c]));
      }
      int pi = top(got, 10, &mi), pt = top(want, 10, &mt);
      int label = test_set.labels[b0 + i];
      icorrect += pi == label;
      tcorrect += pt == label;
      // Where the top two are within rounding, either answer is right.
      if (mt <= 1e-4) {
        near_tie++;
        tie_differ += pi != pt;
        continue;
      }
      compared++;
      mismatch += pi != pt;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t2);
  if (blas_threads && blas_was > 0)
    blas_threads(blas_was);
  if (self)
    dlclose(self);
  printf("\n  %s weights, %d images: max |logprob diff| %.3g, predictions differ on %d of %d "
         "(%d near-ties, %d of them differ), accuracy %.2f%% inference, %.2f%% training code "
         "(build %.1f s, run %.1f s)\n",
         ck ? ck : "random", n, maxdiff, mismatch, compared, near_tie, tie_differ,
         100.0 * icorrect / n, 100.0 * tcorrect / n,
         (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
         (double)(t2.tv_sec - t1.tv_sec) + 1e-9 * (double)(t2.tv_nsec - t1.tv_nsec));
  CU_ASSERT(maxdiff <= 1e-4);
  CU_ASSERT_EQUAL(compared + near_tie, n);
  CU_ASSERT_EQUAL(mismatch, 0);
  // Accuracy is the same up to the near-ties that went either way.
  CU_ASSERT(abs(icorrect - tcorrect) <= tie_differ);
  free(x);
  dlclose(ht);
  dlclose(hi);
  cnn_ckpt_free(&c);
}

// Runs build/cnnc with args; its exit status, its output (stdout and
// stderr) in out.
static int cnnc(const char *args, char *out, size_t n) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "build/cnnc %s 2>&1", args);
  FILE *p = popen(cmd, "r");
  if (!p)
    return -1;
  size_t len = fread(out, 1, n - 1, p);
  out[len] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// `cnnc summary --weights` accepts a checkpoint of its net (and names it)
// and refuses another net's or a missing one, with an error and status 1.
static void test_summary_weights(void) {
  static char out[16384];
  const char *ck = OUT "/summary.ckpt";
  char err[512];
  cnn_ckpt c = {.shape_hash = net.shape_hash, .n_params = (uint64_t)net.n_params,
                .n_state = (uint64_t)net.n_state, .epoch = 3, .step = 2814,
                .params = params, .state = state};
  snprintf(c.name, sizeof c.name, "%s", net.name);
  cnn_tensor *tensors;
  CU_ASSERT_EQUAL_FATAL(torch_tensors(&net, &tensors, &c.n_tensors), 0);
  c.tensors = tensors;
  CU_ASSERT_EQUAL_FATAL(sh("mkdir -p %s%.0s", OUT, ""), 0);
  int rc = cnn_ckpt_save(ck, &c, err, sizeof err);
  torch_tensors_free(tensors, c.n_tensors);
  if (rc != 0)
    fprintf(stderr, "%s\n", err);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(cnnc("summary models/mnist14k.cnn --weights " OUT "/summary.ckpt", out, sizeof out), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nweights " OUT "/summary.ckpt: epoch 3, step 2814\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "  flash (weights)     56,040 B float, 14,986 B int8\n"));
  CU_ASSERT_EQUAL(cnnc("summary models/mnist14k.cnn --format markdown --weights " OUT "/summary.ckpt",
                       out, sizeof out), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "**Weights:** `" OUT "/summary.ckpt`, epoch 3, step 2814."));
  // Another network's checkpoint, and no file at all.
  CU_ASSERT_EQUAL(cnnc("summary models/mnist8ch.cnn --weights " OUT "/summary.ckpt", out, sizeof out), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "cnnc: error: "));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "not 'mnist8ch'"));
  CU_ASSERT_PTR_NULL(strstr(out, "Layer")); // no table for the wrong weights
  CU_ASSERT_EQUAL(cnnc("summary models/mnist14k.cnn --weights " OUT "/missing.ckpt", out, sizeof out), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "cnnc: error: " OUT "/missing.ckpt"));
  // --weights needs its value.
  CU_ASSERT_EQUAL(cnnc("summary models/mnist14k.cnn --weights", out, sizeof out), 2);
}

// A gap whose input is already 1x1 (a conv down to 1x1 first, as LeNet-style
// nets do): its scale is 1, which must be written as a valid float literal.
static void test_gap_on_1x1(void) {
  const char *src = "network gap1x1;\ninput 5x5x1;\nconv(4, 5);\nrelu;\ngap;\nconv(3, 1);\nlog_softmax;\n";
  Net n;
  CU_ASSERT_EQUAL_FATAL(cnnc_load_string("gap1x1.cnn", src, strlen(src), &n), 0);
  float *p = calloc((size_t)n.n_params, sizeof *p);
  for (long j = 0; j < n.n_params; j++)
    p[j] = (float)((j % 7) - 3) / 10.0f;
  EmitOptions opt = {0};
  CU_ASSERT_EQUAL(emit_infer_plan(&n, "build/tests/gap1x1", p, NULL, &opt), 0);
  CU_ASSERT_EQUAL(sh("%s -std=c99 -Wall -Wextra -Wpedantic -Werror -c build/tests/gap1x1/gap1x1_infer.c "
                     "-o build/tests/gap1x1/%s.o", "cc", "gap1x1"), 0);
  free(p);
  net_free(&n);
}

// A residual block streams too: the add reads its input ring while the
// block's convs run two rows ahead, so that ring keeps 3 rows (two 3x3
// 'same' convs), the add gets the ReLU after it, and BatchNorm on an add's
// output is refused at its line.
static void test_plan_residual(void) {
  const char *src = "network res;\ninput 8x8x1;\nconv(4, 3, padding = same);\nrelu;\n"
                    "residual {\n  conv(4, 3, padding = same);\n  relu;\n  conv(4, 3, padding = same);\n}\n"
                    "relu;\nresidual {\n  conv(8, 3, stride = 2, padding = same);\n} shortcut {\n"
                    "  conv(8, 1, stride = 2);\n}\ngap;\ndense(3);\nlog_softmax;\n";
  Net n;
  CU_ASSERT_EQUAL_FATAL(cnnc_load_string("res.cnn", src, strlen(src), &n), 0);
  InferPlan p;
  char msg[256];
  CU_ASSERT_EQUAL_FATAL(infer_plan_build(&n, true, &p, msg, sizeof msg), 0);
  // conv, conv, conv, add, conv (s2), conv (1x1 s2), add, gap, dense
  CU_ASSERT_EQUAL_FATAL(p.n_ops, 9);
  CU_ASSERT_EQUAL(p.ops[3].kind, IOP_ADD);
  CU_ASSERT_EQUAL(p.ops[3].src, 2);  // the block's output
  CU_ASSERT_EQUAL(p.ops[3].src2, 0); // its input
  CU_ASSERT(p.ops[3].relu && p.ops[0].relu && p.ops[1].relu && !p.ops[2].relu);
  CU_ASSERT_EQUAL(p.ops[0].rows, 3);  // the add's row y .. the first conv's y + 2
  CU_ASSERT_EQUAL(p.ops[6].kind, IOP_ADD);
  CU_ASSERT_EQUAL(p.ops[6].src2, 5);  // the projection shortcut
  CU_ASSERT_EQUAL(p.ops[4].pb, 1);    // 'same' at stride 2: the odd row at the bottom
  CU_ASSERT_EQUAL(p.ops[4].pt, 0);
  CU_ASSERT_EQUAL(p.ops[8].kind, IOP_CONV); // dense: a conv over the 1x1 map
  CU_ASSERT(p.ops[8].out_i32);
  // Every op's steps are in the schedule, each once.
  int count[9] = {0};
  for (int t = 0; t < p.n_sched; t++)
    count[p.sched[t]]++;
  for (int i = 0; i < 9; i++)
    CU_ASSERT_EQUAL(count[i], p.ops[i].kind == IOP_GAP ? p.ops[i].in.h : p.ops[i].out.h);
  infer_plan_free(&p);
  net_free(&n);
  const char *bad = "network res2;\ninput 8x8x1;\nconv(4, 3, padding = same);\n"
                    "residual {\n  conv(4, 3, padding = same);\n}\nbatchnorm;\ngap;\nconv(3, 1);\nlog_softmax;\n";
  CU_ASSERT_EQUAL_FATAL(cnnc_load_string("res2.cnn", bad, strlen(bad), &n), 0);
  CU_ASSERT_EQUAL(infer_plan_build(&n, false, &p, msg, sizeof msg), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "res2.cnn:7:1: layer 4: inference code folds batchnorm into the conv before it; "
                                     "this one follows add"));
  net_free(&n);
  // A ReLU may not change a value another layer reads first.
  const char *bad2 = "network res3;\ninput 8x8x1;\nconv(4, 3, padding = same);\n"
                     "residual {\n  relu;\n  conv(4, 3, padding = same);\n}\ngap;\nconv(3, 1);\nlog_softmax;\n";
  CU_ASSERT_EQUAL_FATAL(cnnc_load_string("res3.cnn", bad2, strlen(bad2), &n), 0);
  CU_ASSERT_EQUAL(infer_plan_build(&n, false, &p, msg, sizeof msg), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "inference code folds relu into the op before it, but layer 4 reads"));
  net_free(&n);
}

// Stands in for the suite when its network does not load.
static void test_no_net(void) {
  CU_FAIL("models/mnist14k.cnn does not load");
}

void register_tests(void) {
  build_net();
  if (!net.layers) {
    CU_add_test(CU_add_suite("infer", NULL, NULL), "models/mnist14k.cnn loads", test_no_net);
    return;
  }
  random_weights();
  mnist_dir = getenv("MNIST_DIR");
  if (!mnist_dir)
    mnist_dir = "../shared/data/mnist";
  char err[512];
  if (cnn_idx_load(mnist_dir, "t10k", 10, &test_set, err, sizeof err) < 0)
    fprintf(stderr, "%s\n", err);
  CU_pSuite s = CU_add_suite("infer", NULL, NULL);
  CU_add_test(s, "plan streams rows", test_plan);
  CU_add_test(s, "residual plan: rings, folds, schedule", test_plan_residual);
  CU_add_test(s, "float code of a gap on a 1x1 map compiles", test_gap_on_1x1);
  CU_add_test(s, "fixed-point multipliers", test_multiplier);
  CU_add_test(s, "generated object: C99, arena = .bss, no libc", test_firmware_object);
  CU_add_test(s, "random weights: float = reference, int8 ~ float", test_random_weights);
  CU_add_test(s, "trained weights: 10,000 test images", test_trained_weights);
  CU_add_test(s, "float inference = training code's eval forward, 10,000 images",
              test_matches_training);
  CU_add_test(s, "cnnc summary --weights", test_summary_weights);
}
