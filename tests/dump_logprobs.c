// dump_logprobs.c: the eval-mode log-probabilities of a generated network
// (NET_HEADER, descriptor NET) for inputs another program wrote, so
// tests/torch_export.py can hold cnnc's numbers against PyTorch's.
// Usage: dump_logprobs CKPT INPUTS N OUT — INPUTS holds N images as float32
// [N][C][H][W] (already normalized), OUT gets float32 [N][classes].
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"

#include NET_HEADER

// Prints a message and exits 1.
static void die(const char *msg) {
  fprintf(stderr, "dump_logprobs: %s\n", msg);
  exit(1);
}

int main(int argc, char **argv) {
  if (argc != 5)
    die("usage: dump_logprobs CKPT INPUTS N OUT");
  char err[1024];
  cnn_ckpt c;
  if (cnn_ckpt_load(argv[1], &c, err, sizeof err) ||
      cnn_ckpt_check(&c, argv[1], NET.name, NET.shape_hash, NET.n_params, NET.n_state,
                     NET.train->mean, NET.train->std, NET.tensors, NET.n_tensors, err, sizeof err))
    die(err);
  for (size_t i = 0; i < NET.n_params; i++)
    NET.params[i] = c.params[i];
  for (size_t i = 0; i < NET.n_state; i++)
    NET.state[i] = c.state[i];
  cnn_ckpt_free(&c);
  long n = atol(argv[3]);
  size_t per = (size_t)NET.in_c * NET.in_h * NET.in_w;
  float *x = malloc(sizeof *x * per * (size_t)(n > 0 ? n : 1));
  float *out = malloc(sizeof *out * (size_t)NET.classes * (size_t)(n > 0 ? n : 1));
  cnn_real *batch = malloc(sizeof *batch * per * (size_t)NET.batch);
  FILE *f = fopen(argv[2], "rb");
  if (n <= 0 || !x || !out || !batch || !f || fread(x, sizeof *x * per, (size_t)n, f) != (size_t)n)
    die("cannot read the inputs");
  fclose(f);
  for (long at = 0; at < n; at += NET.batch) {
    int k = (int)(n - at < NET.batch ? n - at : NET.batch);
    for (size_t j = 0; j < per * (size_t)k; j++)
      batch[j] = x[(size_t)at * per + j];
    NET.forward(batch, NULL, k, 0, NULL);
    for (size_t j = 0; j < (size_t)k * (size_t)NET.classes; j++)
      out[(size_t)at * (size_t)NET.classes + j] = (float)NET.logprobs[j];
  }
  f = fopen(argv[4], "wb");
  if (!f || fwrite(out, sizeof *out * (size_t)NET.classes, (size_t)n, f) != (size_t)n || fclose(f))
    die("cannot write the log-probabilities");
  free(x);
  free(out);
  free(batch);
  return 0;
}
