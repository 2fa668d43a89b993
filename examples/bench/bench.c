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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
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

int main(int argc, char **argv) {
  printf("blas_core %s\n", openblas_get_corename());
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
