// bench.c: cnnc's speed figures for one generated network, as medians of
// repeated runs in one invocation. Prints `key value` lines that
// examples/bench/report.sh puts beside PyTorch's:
//   train_ips_T   training images/s (forward + backward + SGD step), T threads
//   eval_ips      evaluation images/s (eval-mode forward, the trainer's batch)
//   latency_us    one image through the float inference code, 1 thread
//   *_native      the same figures for the same generated code built with
//                 -march=native (when built with -DNET_NATIVE / -DINFER_PREDICT_NATIVE)
//   train_flop    floating-point operations per training image (3 x 2 x MACs)
//   sgemm_gflops_T  a large cblas_sgemm on T threads
// `bench layers` instead prints the machine's multiply-add peak per vector
// width (an FMA loop per thread, 1 and 2 threads) and, for the network
// built with -DCNN_TRAIN_PROFILE (NET_PROF), each layer's forward and backward
// milliseconds per step, GFLOP/s and fraction of that peak, as markdown.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86_PEAK 1
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "rng.h"
#include "sgd.h"

#include NET_HEADER
#ifdef INFER_HEADER
#include INFER_HEADER
#endif
#ifdef NET_NATIVE
extern cnn_net NET_NATIVE;
#endif
#ifdef INFER_PREDICT_NATIVE
int INFER_PREDICT_NATIVE(const uint8_t *image);
#endif
#ifdef NET_PROF
extern cnn_net NET_PROF;
#define PCAT_(a, b) a##b
#define PCAT(a, b) PCAT_(a, b)
#define PROF_NAME PCAT(NET_PREFIX, _layer_name)
#define PROF_PATH PCAT(NET_PREFIX, _layer_path)
#define PROF_MACS PCAT(NET_PREFIX, _layer_macs)
#define PROF_MS PCAT(NET_PREFIX, _layer_ms)
#endif

// Monotonic seconds.
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Sorts a few doubles (insertion sort) and returns the median.
static double median(double *v, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Sets the threads of the generated code; BLAS inside it stays on one.
static void set_threads(int t) {
#ifdef _OPENMP
  omp_set_num_threads(t);
#else
  (void)t;
#endif
  openblas_set_num_threads(1);
}

// Median training images/s over reps runs of `steps` full steps.
static double train_rate(cnn_net *net, const float *x, const uint8_t *y, int steps, int reps, cnn_rng *rng) {
  cnn_sgd opt;
  char err[256];
  if (cnn_sgd_init(&opt, net->n_params, 0.01, 0.9, 0, 0, 0, err, sizeof err)) {
    fprintf(stderr, "bench: %s\n", err);
    exit(1);
  }
  double rates[16];
  for (int r = -1; r < reps; r++) { // r = -1 warms up
    double t0 = now_s();
    for (int s = 0; s < steps; s++) {
      net->forward(x, y, net->batch, 1, rng);
      net->backward();
      cnn_sgd_step(&opt, net->params, net->grads);
    }
    if (r >= 0)
      rates[r] = (double)steps * net->batch / (now_s() - t0);
  }
  cnn_sgd_free(&opt);
  return median(rates, reps);
}

// Median eval-mode images/s over reps passes of `batches` batches.
static double eval_rate(cnn_net *net, const float *x, int batches, int reps) {
  double rates[16];
  for (int r = -1; r < reps; r++) {
    double t0 = now_s();
    for (int b = 0; b < batches; b++)
      net->forward(x, NULL, net->batch, 0, NULL);
    if (r >= 0)
      rates[r] = (double)batches * net->batch / (now_s() - t0);
  }
  return median(rates, reps);
}

// Median GFLOP/s of an n x n x n cblas_sgemm on `threads` threads.
static double sgemm_gflops(int n, int threads, int reps) {
  float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
        *c = malloc(sizeof(float) * n * n);
  if (!a || !b || !c)
    exit(1);
  for (long i = 0; i < (long)n * n; i++)
    a[i] = b[i] = (float)(i % 7) * 0.1f, c[i] = 0;
  openblas_set_num_threads(threads);
  double g[16];
  for (int r = -1; r < reps; r++) {
    double t0 = now_s();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    if (r >= 0)
      g[r] = 2.0 * n * n * n / (now_s() - t0) * 1e-9;
  }
  free(a);
  free(b);
  free(c);
  return median(g, reps);
}

#ifdef INFER_HEADER
// Median microseconds per image of the float inference code.
static double latency_us(int (*predict)(const uint8_t *), const uint8_t *img, int per, int reps) {
  double us[16];
  volatile int sink = 0;
  for (int r = -1; r < reps; r++) {
    double t0 = now_s();
    for (int i = 0; i < per; i++)
      sink += predict(img + (size_t)(i % 64) * NET.in_h * NET.in_w);
    if (r >= 0)
      us[r] = (now_s() - t0) * 1e6 / per;
  }
  (void)sink;
  return median(us, reps);
}
#endif

#ifdef HAVE_X86_PEAK
// Twelve independent multiply-add chains per loop (enough to cover the
// latency on two pipes); x * 1 + 0 keeps the values finite. Each
// returns the flops done, its result folded into *sink.
#define PEAK_BODY(T, set1, fma)                                                                \
  T a0 = set1(1.0f), a1 = set1(1.001f), a2 = set1(1.002f), a3 = set1(1.003f), a4 = set1(1.004f), \
    a5 = set1(1.005f), a6 = set1(1.006f), a7 = set1(1.007f), a8 = set1(1.008f), a9 = set1(1.009f), \
    a10 = set1(1.01f), a11 = set1(1.011f);                                                     \
  const T m = set1(peak_one), z = set1(peak_zero);                                             \
  for (long i = 0; i < iters; i++) {                                                           \
    a0 = fma(a0, m, z), a1 = fma(a1, m, z), a2 = fma(a2, m, z), a3 = fma(a3, m, z);           \
    a4 = fma(a4, m, z), a5 = fma(a5, m, z), a6 = fma(a6, m, z), a7 = fma(a7, m, z);           \
    a8 = fma(a8, m, z), a9 = fma(a9, m, z), a10 = fma(a10, m, z), a11 = fma(a11, m, z);       \
  }                                                                                            \
  a0 = fma(a0, a1, a2), a3 = fma(a3, a4, a5), a6 = fma(a6, a7, a8), a9 = fma(a9, a10, a11);    \
  a0 = fma(a0, a3, a6), a0 = fma(a0, m, a9);                                                   \
  float out[16];                                                                               \
  memcpy(out, &a0, sizeof a0);                                                                 \
  *sink += out[0];                                                                             \
  return 2.0 * 12 * (double)iters * (sizeof(T) / sizeof(float));

// 1 and 0 the compiler cannot see (x * 1 + 0 would fold away).
static volatile float peak_one_v = 1.0f, peak_zero_v = 0.0f;
#define peak_one (+peak_one_v)
#define peak_zero (+peak_zero_v)

// 128-bit FMA (vfmadd ps xmm).
__attribute__((target("fma"))) static double peak_fma128(long iters, float *sink) {
  PEAK_BODY(__m128, _mm_set1_ps, _mm_fmadd_ps)
}
// 256-bit FMA (AVX2 + FMA).
__attribute__((target("avx2,fma"))) static double peak_fma256(long iters, float *sink) {
  PEAK_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps)
}
// 512-bit FMA (AVX-512F).
__attribute__((target("avx512f"))) static double peak_fma512(long iters, float *sink) {
  PEAK_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps)
}
// 256-bit multiply, then add: what an AVX2 clone without FMA runs (clang's,
// or gcc's before 12).
#define MULADD256(a, b, c) _mm256_add_ps(_mm256_mul_ps(a, b), c)
__attribute__((target("avx2"))) static double peak_muladd256(long iters, float *sink) {
  PEAK_BODY(__m256, _mm256_set1_ps, MULADD256)
}

// Median GFLOP/s of one of the loops above on `threads` threads at once.
static double peak_gflops(double (*loop)(long, float *), int threads, int reps) {
  double g[16];
  float sink = 0;
  for (int r = -1; r < reps; r++) {
    double flops = 0, t0 = now_s();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : flops)
#endif
    {
      float s = 0;
      flops += loop(50000000, &s);
      if (s == 12345.0f) // never; keeps the result alive
        flops += 1;
    }
    if (r >= 0)
      g[r] = flops / (now_s() - t0) * 1e-9;
  }
  (void)threads;
  (void)sink;
  return median(g, reps);
}
#endif

#ifdef NET_PROF
// The per-layer table: median milliseconds per step over reps runs of
// `steps` forward + backward steps on `threads` threads, with GFLOP/s and
// the fraction of peak (the FMA peak of the width the generated code runs,
// on as many threads).
static void layer_table(const float *x, const uint8_t *y, int threads, int steps, int reps, double peak,
                        cnn_rng *rng) {
  enum { NL = sizeof PROF_MS / sizeof PROF_MS[0] };
  static double ms[16][NL][2];
  set_threads(threads);
  NET_PROF.init(rng);
  for (int r = -1; r < reps; r++) {
    memset(PROF_MS, 0, sizeof PROF_MS);
    for (int s = 0; s < steps; s++) {
      NET_PROF.forward(x, y, NET_PROF.batch, 1, rng);
      NET_PROF.backward();
    }
    for (int k = 0; r >= 0 && k < NL; k++)
      for (int d = 0; d < 2; d++)
        ms[r][k][d] = PROF_MS[k][d] / steps;
  }
  printf("| # | layer | path | fwd ms | fwd GFLOP/s | fwd %% peak | bwd ms | bwd GFLOP/s | bwd %% peak |\n"
         "|---:|---|---|---:|---:|---:|---:|---:|---:|\n");
  double total = 0, flops = 0;
  for (int k = 0; k < NL; k++) {
    double m[2];
    for (int d = 0; d < 2; d++) {
      double v[16];
      for (int r = 0; r < reps; r++)
        v[r] = ms[r][k][d];
      m[d] = median(v, reps);
      total += m[d];
      flops += 2.0 * PROF_MACS[k][d] * NET_PROF.batch;
    }
    if (m[0] + m[1] < 0.005)
      continue;
    printf("| %d | %s | %s |", k, PROF_NAME[k], PROF_PATH[k][0] ? PROF_PATH[k] : "its own loops");
    for (int d = 0; d < 2; d++) {
      double g = 2.0 * PROF_MACS[k][d] * NET_PROF.batch / (m[d] * 1e-3) * 1e-9;
      if (PROF_MACS[k][d])
        printf(" %.3f | %.1f | %.0f%% |", m[d], g, 100 * g / peak);
      else
        printf(" %.3f | - | - |", m[d]);
    }
    printf("\n");
  }
  double g = flops / (total * 1e-3) * 1e-9;
  printf("| | **step** (batch %d, %d thread%s) | | | | | **%.2f** | **%.1f** | **%.0f%%** |\n", NET_PROF.batch,
         threads, threads > 1 ? "s" : "", total, g, 100 * g / peak);
  printf("\nlayers_step_ms_%d %.3f\nlayers_step_gflops_%d %.1f\nlayers_step_peak_%d %.3f\n\n", threads, total,
         threads, g, threads, g / peak);
}
#endif

// What the generated training code runs on this CPU (its own answer), one
// word for the key-value lines.
static const char *train_kernels(void) {
  static char buf[96];
  snprintf(buf, sizeof buf, "%s", NET.kernels());
  for (char *p = buf; *p; p++)
    if (*p == ' ')
      *p = '_';
  return buf;
}

// Whether the generated training code runs its 16-wide (AVX-512) kernels here.
static int train_wide(void) {
  return strncmp(NET.kernels(), "16-wide AVX-512", 15) == 0;
}

// `bench layers`: the peak per vector width, then the per-layer table.
static int layers_main(void) {
  int bits = 256; // the vector width whose peak the fractions are of
#ifdef HAVE_X86_PEAK
  __builtin_cpu_init();
  int avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2") &&
                                                          __builtin_cpu_supports("fma");
  int wide = train_wide();
  bits = wide ? 512 : 256;
  printf("The generated training code runs %s kernels here.\n\n", NET.kernels());
  printf("Multiply-add peak of this CPU, GFLOP/s (12 independent chains per thread, median of 5):\n\n"
         "| loop | 1 thread | 2 threads |\n|---|---:|---:|\n");
  double peak[3] = {1, 1, 1};
  int low2 = 0;
  struct {
    const char *name;
    double (*loop)(long, float *);
    int ok;
  } loops[] = {{"FMA, 128-bit", peak_fma128, avx2},
               {"FMA, 256-bit (AVX2)", peak_fma256, avx2},
               {"FMA, 512-bit (AVX-512)", peak_fma512, avx512},
               {"multiply + add, 256-bit (AVX2 without FMA)", peak_muladd256, avx2}};
  for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
    if (!loops[i].ok)
      continue;
    double g1 = peak_gflops(loops[i].loop, 1, 5), g2 = peak_gflops(loops[i].loop, 2, 5);
    // A VM may give the second core to another guest for seconds: a
    // 2-thread figure below 1.5x one thread's is taken again (the best of
    // up to 4), and said when it stays low.
    for (int t = 0; t < 3 && g2 < 1.5 * g1; t++) {
      double again = peak_gflops(loops[i].loop, 2, 5);
      g2 = again > g2 ? again : g2;
    }
    if (g2 < 1.5 * g1)
      low2 = 1;
    printf("| %s | %.1f | %.1f |\n", loops[i].name, g1, g2);
    // The fraction of peak below is of the width the training code runs.
    if (i == (wide ? 2u : 1u)) {
      peak[1] = g1;
      peak[2] = g2;
    }
  }
  if (low2)
    printf("\n(A 2-thread figure stayed below 1.5x one thread's in four tries: the second core was\n"
           "busy with something else, so the 2-thread %% of peak below is too high.)\n");
  printf("\npeak_fma_1 %.1f\npeak_fma_2 %.1f\npeak_fma_bits %d\n\n", peak[1], peak[2], wide ? 512 : 256);
#else
  double peak[3] = {1, 1, 1};
#endif
#ifdef NET_PROF
  size_t in = (size_t)NET.in_c * NET.in_h * NET.in_w;
  float *x = malloc(sizeof(float) * NET.batch * in);
  uint8_t *y = malloc((size_t)NET.batch);
  if (!x || !y)
    return 1;
  cnn_rng rng;
  cnn_rng_seed(&rng, 1, 0);
  for (size_t i = 0; i < NET.batch * in; i++)
    x[i] = (float)(cnn_rng_uniform(&rng) * 3 - 0.5);
  for (int i = 0; i < NET.batch; i++)
    y[i] = (uint8_t)cnn_rng_below(&rng, (uint32_t)NET.classes);
  for (int t = 1; t <= 2; t++) {
    printf("Where a training step goes, %d thread%s (default build, median of 5 runs of 30 steps;\n"
           "%% peak: of the %d-bit FMA peak above on as many threads):\n\n", t, t > 1 ? "s" : "", bits);
    layer_table(x, y, t, 30, 5, peak[t], &rng);
  }
  printf("(The backward of a conv is its weight gradient and, when its input has one, its input\n"
         "gradient: twice the forward's multiply-adds. A BatchNorm's row includes the dropout and\n"
         "ReLU fused into it, but where a direct conv or a max-pool runs its passes image by image\n"
         "they count in that layer's row: a conv's forward includes the normalizing sweep of the\n"
         "BatchNorm before it and the statistics of the one after it; its backward the input\n"
         "gradient of the BatchNorm after it and the first backward pass of the one before it; a\n"
         "max-pool's the sweep and the first backward pass of the BatchNorm before it.)\n");
  free(x);
  free(y);
#else
  (void)peak, (void)bits;
#endif
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "layers") == 0)
    return layers_main();
  printf("blas_core %s\ntrain_kernels %s\n", openblas_get_corename(), train_kernels());
  int reps = argc > 1 ? atoi(argv[1]) : 5;
  if (reps < 1 || reps > 16)
    reps = 5;
  size_t in = (size_t)NET.in_c * NET.in_h * NET.in_w;
  float *x = malloc(sizeof(float) * NET.batch * in);
  uint8_t *y = malloc((size_t)NET.batch), *img = malloc(64 * in);
  if (!x || !y || !img)
    return 1;
  cnn_rng rng;
  cnn_rng_seed(&rng, 1, 0);
  for (size_t i = 0; i < 64 * in; i++)
    img[i] = (uint8_t)cnn_rng_below(&rng, 256);
  for (size_t i = 0; i < NET.batch * in; i++)
    x[i] = (float)(img[i % (64 * in)] / 255.0 - 0.1307) / 0.3081f;
  for (int i = 0; i < NET.batch; i++)
    y[i] = (uint8_t)cnn_rng_below(&rng, (uint32_t)NET.classes);
  NET.init(&rng);

  printf("train_flop %.0f\n", 6.0 * NET_MACS); // forward 2*MACs, backward twice that
  for (int t = 1; t <= 2; t++) {
    set_threads(t);
    printf("train_ips_%d %.1f\n", t, train_rate(&NET, x, y, 60, reps, &rng));
  }
  set_threads(2);
  printf("eval_ips %.1f\n", eval_rate(&NET, x, 100, reps));
#ifdef NET_NATIVE
  NET_NATIVE.init(&rng);
  printf("train_ips_2_native %.1f\n", train_rate(&NET_NATIVE, x, y, 60, reps, &rng));
  printf("eval_ips_native %.1f\n", eval_rate(&NET_NATIVE, x, 100, reps));
#endif
  set_threads(1);
#ifdef INFER_HEADER
  printf("latency_us %.2f\n", latency_us(INFER_PREDICT, img, 2000, reps));
#endif
#ifdef INFER_PREDICT_NATIVE
  printf("latency_us_native %.2f\n", latency_us(INFER_PREDICT_NATIVE, img, 2000, reps));
#endif
  for (int t = 1; t <= 2; t++)
    printf("sgemm_gflops_%d %.1f\n", t, sgemm_gflops(2048, t, reps));
  free(x);
  free(y);
  free(img);
  return 0;
}
