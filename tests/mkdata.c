// mkdata.c: writes a small learnable data set in MNIST's IDX format, for
// networks whose real data (CIFAR-10, Speech Commands) cannot be had here.
// Class k is a bright block at a place of its own on uniform noise, so a
// network that trains must bring the loss down within an epoch or two.
//   mkdata DIR H W C CLASSES N_TRAIN N_TEST
// writes DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte (C > 1: images
// are N x H x W x C, an IDX file with four dimensions).
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// A small xorshift generator: the data is the same on every machine.
static uint32_t next(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

// Writes a big-endian 32-bit value.
static void be32(FILE *f, uint32_t v) {
  unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                        (unsigned char)v};
  fwrite(b, 1, 4, f);
}

// Writes one split; 0 or -1 after a message.
static int split(const char *dir, const char *name, int n, int h, int w, int c, int classes, uint32_t seed) {
  char ip[4096], lp[4096];
  snprintf(ip, sizeof ip, "%s/%s-images-idx%d-ubyte", dir, name, c > 1 ? 4 : 3);
  snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte", dir, name);
  FILE *fi = fopen(ip, "wb"), *fl = fopen(lp, "wb");
  if (!fi || !fl) {
    fprintf(stderr, "mkdata: cannot write %s: %s\n", fi ? lp : ip, strerror(errno));
    return -1;
  }
  be32(fi, c > 1 ? 0x804u : 0x803u);
  be32(fi, (uint32_t)n);
  be32(fi, (uint32_t)h);
  be32(fi, (uint32_t)w);
  if (c > 1)
    be32(fi, (uint32_t)c);
  be32(fl, 0x801u);
  be32(fl, (uint32_t)n);
  unsigned char *img = malloc((size_t)h * w * c);
  if (!img)
    return -1;
  // The block of class k: a quarter of the image, its corner on a grid.
  int bh = h / 4 > 0 ? h / 4 : 1, bw = w / 4 > 0 ? w / 4 : 1;
  for (int i = 0; i < n; i++) {
    int k = (int)(next(&seed) % (uint32_t)classes);
    int cell = k % 9, y0 = (cell / 3) * (h - bh) / 2, x0 = (cell % 3) * (w - bw) / 2;
    int ch = k / 9 % c; // more than nine classes: another channel too
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        for (int q = 0; q < c; q++) {
          int v = (int)(next(&seed) % 96);
          if (y >= y0 && y < y0 + bh && x >= x0 && x < x0 + bw && (c == 1 || q == ch || k < 9))
            v += 140 + 10 * (k / 9);
          img[((size_t)y * w + x) * c + q] = (unsigned char)(v > 255 ? 255 : v);
        }
    fwrite(img, 1, (size_t)h * w * c, fi);
    fputc(k, fl);
  }
  free(img);
  int bad = ferror(fi) || ferror(fl);
  bad |= fclose(fi) != 0;
  bad |= fclose(fl) != 0;
  if (bad)
    fprintf(stderr, "mkdata: write error in %s\n", dir);
  return bad ? -1 : 0;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: mkdata DIR H W C CLASSES N_TRAIN N_TEST\n");
    return 2;
  }
  int v[6];
  for (int i = 0; i < 6; i++) {
    v[i] = atoi(argv[i + 2]);
    if (v[i] < 1 || v[i] > 1000000) {
      fprintf(stderr, "mkdata: '%s' is not a count from 1 to 1000000\n", argv[i + 2]);
      return 2;
    }
  }
  if (v[3] > 256) {
    fprintf(stderr, "mkdata: at most 256 classes\n");
    return 2;
  }
  if (split(argv[1], "train", v[4], v[0], v[1], v[2], v[3], 12345u) < 0 ||
      split(argv[1], "t10k", v[5], v[0], v[1], v[2], v[3], 67890u) < 0)
    return 1;
  return 0;
}
