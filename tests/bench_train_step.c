// bench_train_step.c: times one training step's forward + backward of a
// generated network on random data, full batches, and prints the median.
//   build/bench_train_step [STEPS]    (default 60; OMP_NUM_THREADS as usual)
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include NET_HEADER

// Wall-clock seconds.
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// CPU seconds of the whole process (all threads): on a loaded machine the
// wall clock mostly measures the other processes.
static double cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Orders doubles for qsort.
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 60;
  if (steps < 1)
    steps = 1;
  cnn_net *net = &NET;
  cnn_rng r;
  cnn_rng_seed(&r, 1, 0);
  net->init(&r);
  size_t nx = (size_t)net->batch * net->in_c * net->in_h * net->in_w;
  cnn_real *x = malloc(nx * sizeof *x);
  uint8_t *y = malloc((size_t)net->batch);
  double *t = malloc((size_t)steps * sizeof *t), *tc = malloc((size_t)steps * sizeof *tc);
  for (size_t j = 0; j < nx; j++)
    x[j] = (cnn_real)(cnn_rng_uniform(&r) * 3 - 0.5);
  for (int i = 0; i < net->batch; i++)
    y[i] = (uint8_t)cnn_rng_below(&r, (uint32_t)net->classes);
  double loss = 0;
  for (int s = -5; s < steps; s++) {  // 5 warm-up steps
    double t0 = now(), c0 = cpu();
    loss += net->forward(x, y, net->batch, 1, &r);
    net->backward();
    if (s >= 0) {
      t[s] = now() - t0;
      tc[s] = cpu() - c0;
    }
  }
  qsort(t, (size_t)steps, sizeof *t, cmp);
  qsort(tc, (size_t)steps, sizeof *tc, cmp);
  double med = t[steps / 2];
  printf("%s: forward+backward, batch %d: median %.3f ms (min %.3f) over %d steps; %.0f images/s, "
         "%.2f s per 60,000 images (loss %.3f)\n",
         net->name, net->batch, med * 1e3, t[0] * 1e3, steps, net->batch / med, 60000.0 / net->batch * med,
         loss / (steps + 5));
  printf("%s: CPU time per step (all threads): median %.3f ms (min %.3f)\n", net->name, tc[steps / 2] * 1e3,
         tc[0] * 1e3);
  free(x);
  free(y);
  free(t);
  free(tc);
  return 0;
}
