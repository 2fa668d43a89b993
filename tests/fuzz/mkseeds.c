// mkseeds.c: writes the fuzzers' binary seeds with the runtime's own
// checkpoint writer and zlib: a small valid checkpoint, format v3 (with and
// without a momentum buffer) and a few truncations of it, and small IDX image and label
// files, raw and gzipped. Usage: mkseeds CORPUS_DIR (ckpt/ and idx/ must exist).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "checkpoint.h"

static const char *root;

// Writes n bytes of buf to root/sub/name, or dies.
static void put(const char *sub, const char *name, const void *buf, size_t n) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s/%s", root, sub, name);
  FILE *f = fopen(p, "wb");
  if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
    perror(p);
    exit(1);
  }
}

// Reads a whole file into a malloc'ed buffer.
static unsigned char *slurp(const char *p, size_t *n) {
  FILE *f = fopen(p, "rb");
  if (!f) {
    perror(p);
    exit(1);
  }
  unsigned char *b = malloc(1 << 16);
  *n = fread(b, 1, 1 << 16, f);
  fclose(f);
  return b;
}

// Writes an IDX file raw and as gzip.
static void put_idx(const char *name, const unsigned char *buf, size_t n) {
  char p[4096];
  put("idx", name, buf, n);
  snprintf(p, sizeof p, "%s/idx/%s.gz", root, name);
  gzFile g = gzopen(p, "wb9");
  if (!g || gzwrite(g, buf, (unsigned)n) != (int)n || gzclose(g) != Z_OK) {
    fprintf(stderr, "%s: gzip failed\n", p);
    exit(1);
  }
}

// Big-endian u32 for the IDX headers.
static void be32(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

// Writes every seed.
int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: mkseeds CORPUS_DIR\n");
    return 2;
  }
  root = argv[1];
  // A checkpoint of a 12-parameter net with 4 BN state values, via cnn_ckpt_save.
  float params[12], state[4], mom[12];
  for (int i = 0; i < 12; i++) {
    params[i] = (float)i * 0.25f - 1.0f;
    mom[i] = (float)i * 0.01f;
  }
  for (int i = 0; i < 4; i++)
    state[i] = (float)(i + 1);
  static const cnn_tensor table[] = {{"layers.0.weight", 0, 0, 8, 4, {2, 1, 2, 2}},
                                     {"layers.0.bias", 0, 8, 2, 1, {2}},
                                     {"layers.1.weight", 0, 10, 2, 1, {2}},
                                     {"layers.1.running_mean", 1, 0, 2, 1, {2}},
                                     {"layers.1.running_var", 1, 2, 2, 1, {2}}};
  cnn_ckpt c = {.shape_hash = 0x1234abcd5678ef90ull, .n_params = 12, .n_state = 4, .epoch = 2,
                .step = 20, .sgd_steps = 20, .rng = {.state = 7, .inc = 9}, .params = params,
                .state = state, .momentum = mom, .has_norm = 1, .mean = 0.5, .std = 0.25,
                .tensors = table, .n_tensors = 5};
  snprintf(c.name, sizeof c.name, "tiny");
  char p[4096], err[1024];
  const char *names[2] = {"valid_momentum.ckpt", "valid.ckpt"};
  for (int k = 0; k < 2; k++) {
    snprintf(p, sizeof p, "%s/ckpt/%s", root, names[k]);
    if (cnn_ckpt_save(p, &c, err, sizeof err) != 0) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    c.momentum = NULL;
  }
  size_t n;
  unsigned char *b = slurp(p, &n);
  put("ckpt", "v3_trunc_header.ckpt", b, 100);
  put("ckpt", "v3_trunc_data.ckpt", b, n - 10);
  free(b);
  // 3 images of 4x5 and their labels.
  unsigned char img[16 + 60], lab[8 + 3];
  be32(img, 0x803);
  be32(img + 4, 3);
  be32(img + 8, 4);
  be32(img + 12, 5);
  for (int i = 0; i < 60; i++)
    img[16 + i] = (unsigned char)(i * 37);
  be32(lab, 0x801);
  be32(lab + 4, 3);
  lab[8] = 0;
  lab[9] = 9;
  lab[10] = 4;
  put_idx("images-idx3-ubyte", img, sizeof img);
  put_idx("labels-idx1-ubyte", lab, sizeof lab);
  put_idx("images_truncated", img, sizeof img - 7);
  return 0;
}
