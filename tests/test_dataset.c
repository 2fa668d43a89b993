// test_dataset.c: batching, shuffling, normalization and augmentation.
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"

// A synthetic split of n images of h x w; image i's pixels are i-derived.
static cnn_idx synth(int n, int h, int w) {
  cnn_idx d = {.n = n, .rows = h, .cols = w, .channels = 1, .pixels = malloc((size_t)n * h * w),
               .labels = malloc((size_t)n)};
  for (size_t i = 0; i < (size_t)n * h * w; i++)
    d.pixels[i] = (uint8_t)((i * 31 + i / 7) & 255);
  for (int i = 0; i < n; i++)
    d.labels[i] = (uint8_t)(i % 10);
  return d;
}

// 60,000 images at batch 64: 937 full batches and one of 32.
static void test_short_last_batch(void) {
  cnn_idx idx = synth(60000, 1, 1);
  cnn_dataset d;
  char err[256];
  CU_ASSERT_FATAL(cnn_dataset_init(&d, &idx, 0.1307, 0.3081, 0, 0, err, sizeof err) == 0);
  CU_ASSERT_EQUAL(cnn_dataset_batches(&d, 64), 938);
  float x[64];
  uint8_t y[64];
  long total = 0;
  for (int b = 0; b < 938; b++) {
    int k = cnn_dataset_batch(&d, b, 64, x, y, NULL);
    CU_ASSERT_EQUAL(k, b < 937 ? 64 : 32);
    total += k;
  }
  CU_ASSERT_EQUAL(total, 60000);
  CU_ASSERT_EQUAL(cnn_dataset_batch(&d, 938, 64, x, y, NULL), 0);
  CU_ASSERT_EQUAL(cnn_dataset_batches(&d, 60000), 1);
  CU_ASSERT_EQUAL(cnn_dataset_batches(&d, 7), 8572);
  cnn_dataset_free(&d);
  cnn_idx_free(&idx);
}

// A shuffled epoch visits each image exactly once; the same seed gives the
// same order, another seed or the next epoch another one.
static void test_shuffle(void) {
  enum { N = 1000 };
  cnn_idx idx = synth(N, 2, 3);
  cnn_dataset d;
  CU_ASSERT_FATAL(cnn_dataset_init(&d, &idx, 0.5, 0.5, 0, 0, NULL, 0) == 0);
  static uint32_t first[N];
  cnn_rng r1, r2, r3;
  cnn_rng_seed(&r1, 1, 0);
  cnn_rng_seed(&r2, 1, 0);
  cnn_rng_seed(&r3, 2, 0);
  cnn_dataset_shuffle(&d, &r1);
  memcpy(first, d.order, sizeof first);
  int seen[N] = {0}, fixed = 0;
  for (int i = 0; i < N; i++) {
    CU_ASSERT_FATAL(first[i] < N);
    seen[first[i]]++;
    fixed += first[i] == (uint32_t)i;
  }
  for (int i = 0; i < N; i++)
    CU_ASSERT_EQUAL(seen[i], 1);
  CU_ASSERT(fixed < 10);
  cnn_dataset_shuffle(&d, &r2);
  CU_ASSERT(memcmp(first, d.order, sizeof first) == 0);
  cnn_dataset_shuffle(&d, &r3);
  CU_ASSERT(memcmp(first, d.order, sizeof first) != 0);
  cnn_dataset_shuffle(&d, &r1); // next epoch
  CU_ASSERT(memcmp(first, d.order, sizeof first) != 0);
  // batches follow the order: labels of batch 1 are those of order[10..19]
  float x[10 * 6];
  uint8_t y[10];
  CU_ASSERT_EQUAL(cnn_dataset_batch(&d, 1, 10, x, y, NULL), 10);
  for (int i = 0; i < 10; i++) {
    uint32_t src = d.order[10 + i];
    CU_ASSERT_EQUAL(y[i], src % 10);
    CU_ASSERT_EQUAL(x[i * 6 + 4], ((float)idx.pixels[src * 6 + 4] / 255.0f - 0.5f) / 0.5f);
  }
  cnn_dataset_sequential(&d);
  for (int i = 0; i < N; i++)
    CU_ASSERT_EQUAL(d.order[i], (uint32_t)i);
  cnn_dataset_free(&d);
  cnn_idx_free(&idx);
}

// (p/255 - 0.1307)/0.3081: 0 -> -0.424212917, 255 -> 2.821486530.
static void test_normalize(void) {
  cnn_idx idx = synth(2, 1, 3);
  idx.pixels[0] = 0;
  idx.pixels[1] = 255;
  idx.pixels[2] = 51; // 0.2 -> 0.224927
  cnn_dataset d;
  CU_ASSERT_FATAL(cnn_dataset_init(&d, &idx, 0.1307, 0.3081, 0, 0, NULL, 0) == 0);
  float x[6];
  uint8_t y[2];
  CU_ASSERT_EQUAL(cnn_dataset_batch(&d, 0, 2, x, y, NULL), 2);
  CU_ASSERT(fabs(x[0] - -0.424212917) < 1e-6);
  CU_ASSERT(fabs(x[1] - 2.821486530) < 2e-6); // float rounding
  CU_ASSERT(fabs(x[2] - 0.224927) < 1e-6);
  CU_ASSERT(fabs(d.background - -0.424212917) < 1e-6);
  cnn_dataset_free(&d);
  char err[256] = "";
  CU_ASSERT(cnn_dataset_init(&d, &idx, 0.1, 0, 0, 0, err, sizeof err) == -1);
  CU_ASSERT(strstr(err, "std") != NULL);
  cnn_idx_free(&idx);
}

// Rotation by 90 degrees of a square maps (r, c) to source (c, N-1-r)
// (counter-clockwise); a shift moves pixels and fills with background.
static void test_augment_geometry(void) {
  enum { N = 5 };
  uint8_t img[N * N];
  for (int i = 0; i < N * N; i++)
    img[i] = (uint8_t)(i * 10);
  float out[N * N];
  cnn_augment_image(img, N, N, 90, 0, 0, out);
  for (int r = 0; r < N; r++)
    for (int c = 0; c < N; c++)
      CU_ASSERT(fabs(out[r * N + c] - img[c * N + (N - 1 - r)] / 255.0f) < 1e-5);
  cnn_augment_image(img, N, N, 0, 0, 0, out);
  for (int i = 0; i < N * N; i++)
    CU_ASSERT(fabs(out[i] - img[i] / 255.0f) < 1e-6);
  // dx = 2, dy = -1: out(r, c) = src(r + 1, c - 2), 0 outside
  cnn_augment_image(img, N, N, 0, 2, -1, out);
  for (int r = 0; r < N; r++)
    for (int c = 0; c < N; c++) {
      int sr = r + 1, sc = c - 2;
      float want = sr < N && sc >= 0 ? img[sr * N + sc] / 255.0f : 0.0f;
      CU_ASSERT(fabs(out[r * N + c] - want) < 1e-6);
    }
  // 45 degrees: the centre stays, bilinear values stay within the pixel range
  cnn_augment_image(img, N, N, 45, 0, 0, out);
  CU_ASSERT(fabs(out[2 * N + 2] - img[2 * N + 2] / 255.0f) < 1e-6);
  for (int i = 0; i < N * N; i++)
    CU_ASSERT(out[i] >= 0.0f && out[i] <= 240 / 255.0f + 1e-6);
}

// Augmented batches: deterministic for a seed, different from the plain
// ones, background-filled, and the plain path untouched without an rng.
static void test_augment_batches(void) {
  cnn_idx idx = synth(50, 28, 28);
  for (int i = 0; i < 50; i++) // a blank border, like MNIST
    for (int r = 0; r < 28; r++)
      for (int c = 0; c < 28; c++)
        if (r < 4 || r >= 24 || c < 4 || c >= 24)
          idx.pixels[(i * 28 + r) * 28 + c] = 0;
  cnn_dataset d;
  CU_ASSERT_FATAL(cnn_dataset_init(&d, &idx, 0.1307, 0.3081, 15, 2, NULL, 0) == 0);
  static float a[16 * 784], b[16 * 784], plain[16 * 784];
  uint8_t y[16];
  cnn_rng r1, r2;
  cnn_rng_seed(&r1, 3, 1);
  cnn_rng_seed(&r2, 3, 1);
  CU_ASSERT_EQUAL(cnn_dataset_batch(&d, 0, 16, a, y, &r1), 16);
  CU_ASSERT_EQUAL(cnn_dataset_batch(&d, 0, 16, b, y, &r2), 16);
  CU_ASSERT(memcmp(a, b, sizeof a) == 0);
  CU_ASSERT_EQUAL(cnn_dataset_batch(&d, 0, 16, plain, y, NULL), 16);
  CU_ASSERT(memcmp(a, plain, sizeof a) != 0);
  int changed = 0;
  float lo = 1e9f, hi = -1e9f;
  for (int i = 0; i < 16; i++) {
    changed += memcmp(a + i * 784, plain + i * 784, 784 * sizeof(float)) != 0;
    CU_ASSERT(fabs(a[i * 784] - d.background) < 1e-6); // corner stays background
  }
  for (int i = 0; i < 16 * 784; i++) {
    lo = a[i] < lo ? a[i] : lo;
    hi = a[i] > hi ? a[i] : hi;
  }
  CU_ASSERT(changed >= 14);
  CU_ASSERT(lo >= d.background - 1e-6f);
  CU_ASSERT(hi <= (1 - 0.1307f) / 0.3081f + 1e-5f);
  cnn_dataset_free(&d);
  cnn_idx_free(&idx);
}

// Three-channel images, channels last in the idx, land in x as [n][c][h][w],
// each value normalized with the one mean/std.
static void test_channels_chw(void) {
  enum { N = 5, C = 3, H = 4, W = 6 };
  cnn_idx idx = synth(N, H, W * C); // the same bytes, read as H x W x C
  idx.cols = W;
  idx.channels = C;
  cnn_dataset d;
  char err[256] = "";
  CU_ASSERT_FATAL(cnn_dataset_init(&d, &idx, 0.25, 0.5, 0, 0, err, sizeof err) == 0);
  CU_ASSERT_EQUAL(d.c, C);
  static float x[N * C * H * W];
  uint8_t y[N];
  CU_ASSERT_EQUAL(cnn_dataset_batch(&d, 0, N, x, y, NULL), N);
  int ok = 1;
  for (int i = 0; i < N; i++)
    for (int c = 0; c < C; c++)
      for (int r = 0; r < H; r++)
        for (int q = 0; q < W; q++) {
          uint8_t p = idx.pixels[((i * H + r) * W + q) * C + c];
          ok &= x[((i * C + c) * H + r) * W + q] == ((float)p / 255.0f - 0.25f) / 0.5f;
        }
  CU_ASSERT(ok);
  // the short last batch of a shuffled order: image order[4] lands at slot 0
  cnn_rng rng;
  cnn_rng_seed(&rng, 5, 0);
  cnn_dataset_shuffle(&d, &rng);
  CU_ASSERT_EQUAL(cnn_dataset_batch(&d, 1, 4, x, y, NULL), 1);
  uint32_t src = d.order[4];
  CU_ASSERT_EQUAL(y[0], src % 10);
  CU_ASSERT(x[(2 * H + 1) * W + 3] ==
            ((float)idx.pixels[((src * H + 1) * W + 3) * C + 2] / 255.0f - 0.25f) / 0.5f);
  cnn_dataset_free(&d);
  CU_ASSERT_PTR_NULL(d.planes);
  // no channels is refused
  idx.channels = 0;
  CU_ASSERT(cnn_dataset_init(&d, &idx, 0.25, 0.5, 0, 0, err, sizeof err) == -1);
  CU_ASSERT(strstr(err, "shape") != NULL);
  cnn_idx_free(&idx);
}

// Augmentation of a three-channel image moves every channel the same way:
// each plane equals what a one-channel dataset of that plane gives for the
// same seed, and the planes still differ from one another.
static void test_channels_augment(void) {
  enum { N = 8, C = 3, H = 12, W = 10 };
  cnn_idx rgb = synth(N, H, W * C);
  rgb.cols = W;
  rgb.channels = C;
  cnn_dataset d;
  CU_ASSERT_FATAL(cnn_dataset_init(&d, &rgb, 0.1307, 0.3081, 20, 2, NULL, 0) == 0);
  static float x[N * C * H * W], one[N * H * W], plain[N * C * H * W];
  uint8_t y[N];
  cnn_rng r;
  cnn_rng_seed(&r, 9, 2);
  CU_ASSERT_EQUAL(cnn_dataset_batch(&d, 0, N, x, y, &r), N);
  CU_ASSERT_EQUAL(cnn_dataset_batch(&d, 0, N, plain, y, NULL), N);
  CU_ASSERT(memcmp(x, plain, sizeof x) != 0);
  for (int c = 0; c < C; c++) {
    cnn_idx g = synth(N, H, W);
    for (int i = 0; i < N; i++)
      for (int p = 0; p < H * W; p++)
        g.pixels[i * H * W + p] = rgb.pixels[(i * H * W + p) * C + c];
    cnn_dataset gd;
    CU_ASSERT_FATAL(cnn_dataset_init(&gd, &g, 0.1307, 0.3081, 20, 2, NULL, 0) == 0);
    cnn_rng_seed(&r, 9, 2);
    CU_ASSERT_EQUAL(cnn_dataset_batch(&gd, 0, N, one, y, &r), N);
    int same = 1;
    for (int i = 0; i < N; i++)
      same &= memcmp(one + i * H * W, x + (i * C + c) * H * W, H * W * sizeof(float)) == 0;
    CU_ASSERT(same);
    cnn_dataset_free(&gd);
    cnn_idx_free(&g);
  }
  CU_ASSERT(memcmp(x, x + H * W, H * W * sizeof(float)) != 0);
  cnn_dataset_free(&d);
  cnn_idx_free(&rgb);
}

// The suite.
void register_tests(void) {
  CU_pSuite s = CU_add_suite("dataset", NULL, NULL);
  CU_add_test(s, "short last batch", test_short_last_batch);
  CU_add_test(s, "shuffle", test_shuffle);
  CU_add_test(s, "normalize", test_normalize);
  CU_add_test(s, "augment geometry", test_augment_geometry);
  CU_add_test(s, "augmented batches", test_augment_batches);
  CU_add_test(s, "channels: HWC file, CHW batches", test_channels_chw);
  CU_add_test(s, "channels: augmented alike", test_channels_augment);
}
