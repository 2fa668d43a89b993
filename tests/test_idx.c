// test_idx.c: the real MNIST files load; a corpus of broken files, generated
// here under build/test_idx/, is refused with a message naming the file.
#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "datadir.h"
#include "idx.h"

#define DIR "build/test_idx"

static char mnist[4096];

// Finds MNIST the way the trainer does (MNIST_DIR, ../shared/data/mnist, ...).
static int find_mnist(void) {
  char err[1024];
  if (cnn_datadir_resolve(NULL, mnist, sizeof mnist, err, sizeof err) == 0)
    return 1;
  if (cnn_datadir_ok("/work/shared/data/mnist")) {
    snprintf(mnist, sizeof mnist, "/work/shared/data/mnist");
    return 1;
  }
  fprintf(stderr, "%s\n", err);
  return 0;
}

// Big-endian u32 for hand-made headers.
static void be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

// Writes len bytes to path, gzip-compressed or raw.
static void write_file(const char *path, const void *data, size_t len, int gz) {
  if (gz) {
    gzFile f = gzopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    if (len)
      CU_ASSERT_FATAL(gzwrite(f, data, (unsigned)len) == (int)len);
    CU_ASSERT_FATAL(gzclose(f) == Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    if (len)
      CU_ASSERT_FATAL(fwrite(data, 1, len, f) == len);
    fclose(f);
  }
}

// An image file of n images of r x c; pixels are (i * 7) & 255.
static size_t make_images(unsigned char *buf, uint32_t magic, uint32_t n, uint32_t r,
                          uint32_t c, size_t data_len) {
  be32(buf, magic);
  be32(buf + 4, n);
  be32(buf + 8, r);
  be32(buf + 12, c);
  for (size_t i = 0; i < data_len; i++)
    buf[16 + i] = (unsigned char)((i * 7) & 255);
  return 16 + data_len;
}

// A label file of n labels, label i = i % 10 unless bad_at >= 0.
static size_t make_labels(unsigned char *buf, uint32_t magic, uint32_t n, size_t data_len,
                          long bad_at) {
  be32(buf, magic);
  be32(buf + 4, n);
  for (size_t i = 0; i < data_len; i++)
    buf[8 + i] = (unsigned char)(i % 10);
  if (bad_at >= 0)
    buf[8 + bad_at] = 10;
  return 8 + data_len;
}

// The suite's scratch directory.
static int setup(void) {
  mkdir("build", 0755);
  mkdir(DIR, 0755);
  return 0;
}

// The published MNIST: 60000 + 10000 images of 28x28; first labels 5 and 7.
static void test_real_mnist(void) {
  if (!find_mnist()) {
    CU_FAIL("MNIST not found: run `make data` or set MNIST_DIR");
    return;
  }
  char err[1024] = "";
  cnn_idx tr, te;
  CU_ASSERT_FATAL(cnn_idx_load(mnist, "train", 10, &tr, err, sizeof err) == 0);
  CU_ASSERT_EQUAL(tr.n, 60000);
  CU_ASSERT_EQUAL(tr.rows, 28);
  CU_ASSERT_EQUAL(tr.cols, 28);
  CU_ASSERT_EQUAL(tr.labels[0], 5);
  CU_ASSERT_EQUAL(tr.labels[1], 0);
  CU_ASSERT_EQUAL(tr.labels[2], 4);
  // the images are digits: corners are background, some pixel is full ink
  CU_ASSERT_EQUAL(tr.pixels[0], 0);
  int maxpx = 0;
  for (int i = 0; i < 784; i++)
    maxpx = tr.pixels[i] > maxpx ? tr.pixels[i] : maxpx;
  CU_ASSERT(maxpx >= 250);
  long counts[10] = {0};
  for (int i = 0; i < tr.n; i++)
    counts[tr.labels[i]]++;
  CU_ASSERT_EQUAL(counts[1], 6742); // the published class sizes
  CU_ASSERT_EQUAL(counts[5], 5421);
  cnn_idx_free(&tr);
  CU_ASSERT_PTR_NULL(tr.pixels);
  CU_ASSERT_FATAL(cnn_idx_load(mnist, "t10k", 10, &te, err, sizeof err) == 0);
  CU_ASSERT_EQUAL(te.n, 10000);
  CU_ASSERT_EQUAL(te.labels[0], 7);
  CU_ASSERT_EQUAL(te.labels[1], 2);
  cnn_idx_free(&te);
}

// A good synthetic pair loads, gz or raw.
static void test_good_synthetic(void) {
  unsigned char img[16 + 3 * 4 * 5], lab[8 + 3];
  size_t il = make_images(img, 2051, 3, 4, 5, 60), ll = make_labels(lab, 2049, 3, 3, -1);
  mkdir(DIR "/good", 0755);
  write_file(DIR "/good/train-images-idx3-ubyte.gz", img, il, 1);
  write_file(DIR "/good/train-labels-idx1-ubyte.gz", lab, ll, 1);
  write_file(DIR "/good/t10k-images-idx3-ubyte", img, il, 0); // raw
  write_file(DIR "/good/t10k-labels-idx1-ubyte", lab, ll, 0);
  char err[1024] = "";
  cnn_idx d;
  CU_ASSERT_FATAL(cnn_idx_load(DIR "/good", "train", 10, &d, err, sizeof err) == 0);
  CU_ASSERT_EQUAL(d.n, 3);
  CU_ASSERT_EQUAL(d.rows, 4);
  CU_ASSERT_EQUAL(d.cols, 5);
  CU_ASSERT_EQUAL(d.pixels[59], (59 * 7) & 255);
  CU_ASSERT_EQUAL(d.labels[2], 2);
  cnn_idx_free(&d);
  CU_ASSERT_FATAL(cnn_idx_load(DIR "/good", "t10k", 10, &d, err, sizeof err) == 0);
  CU_ASSERT_EQUAL(d.n, 3);
  CU_ASSERT_EQUAL(d.pixels[10], 70);
  cnn_idx_free(&d);
  CU_ASSERT(cnn_datadir_ok(DIR "/good"));
}

// Loads path as images (or labels) expecting failure, and checks the message
// names the file and says what is wrong.
static void refuse(const char *path, int images, const char *what) {
  char err[1024] = "";
  int n = -1, r, c;
  uint8_t *p = (uint8_t *)"x";
  int rc = images ? cnn_idx_load_images(path, &n, &r, &c, &p, err, sizeof err)
                  : cnn_idx_load_labels(path, 10, &n, &p, err, sizeof err);
  CU_ASSERT_EQUAL(rc, -1);
  CU_ASSERT_PTR_NULL(p);
  CU_ASSERT_EQUAL(n, 0);
  CU_ASSERT(strstr(err, path) == err);
  if (getenv("SHOW_ERRORS"))
    fprintf(stderr, "  %s\n", err);
  if (!strstr(err, what)) {
    fprintf(stderr, "\n  expected '%s' in: %s\n", what, err);
    CU_FAIL("message does not say what is wrong");
  }
}

// Each broken file, gzipped and raw.
static void test_corpus(void) {
  static unsigned char buf[16 + 10 * 28 * 28 + 64];
  char path[512];
  for (int gz = 0; gz <= 1; gz++) {
    const char *ext = gz ? ".gz" : "";
    size_t len;
    // bad magic: a label magic in an image file
    len = make_images(buf, 2049, 2, 28, 28, 2 * 784);
    snprintf(path, sizeof path, DIR "/bad-magic%s", ext);
    write_file(path, buf, len, gz);
    refuse(path, 1, "bad magic 0x00000801, expected 0x00000803 (images N x H x W) or 0x00000804");
    len = make_labels(buf, 2051, 5, 5, -1);
    snprintf(path, sizeof path, DIR "/bad-magic-labels%s", ext);
    write_file(path, buf, len, gz);
    refuse(path, 0, "bad magic 0x00000803, expected 0x00000801 (labels)");
    // truncated header
    make_images(buf, 2051, 2, 28, 28, 0);
    snprintf(path, sizeof path, DIR "/short-header%s", ext);
    write_file(path, buf, 10, gz);
    refuse(path, 1, "header");
    // header says 3 images, data has 2
    len = make_images(buf, 2051, 3, 28, 28, 2 * 784);
    snprintf(path, sizeof path, DIR "/short-pixels%s", ext);
    write_file(path, buf, len, gz);
    refuse(path, 1, "pixels");
    // one byte too many
    len = make_images(buf, 2051, 2, 28, 28, 2 * 784 + 1);
    snprintf(path, sizeof path, DIR "/trailing%s", ext);
    write_file(path, buf, len, gz);
    refuse(path, 1, "trailing");
    // zero rows
    len = make_images(buf, 2051, 2, 0, 28, 0);
    snprintf(path, sizeof path, DIR "/zero-dim%s", ext);
    write_file(path, buf, len, gz);
    refuse(path, 1, "bad dimensions");
    // label 10 of 10 classes
    len = make_labels(buf, 2049, 5, 5, 3);
    snprintf(path, sizeof path, DIR "/label-range%s", ext);
    write_file(path, buf, len, gz);
    refuse(path, 0, "label 10 of item 3 is out of range");
    // labels truncated
    len = make_labels(buf, 2049, 6, 5, -1);
    snprintf(path, sizeof path, DIR "/short-labels%s", ext);
    write_file(path, buf, len, gz);
    refuse(path, 0, "labels");
  }
  // empty file; a directory; a missing file
  write_file(DIR "/empty", "", 0, 0);
  refuse(DIR "/empty", 1, "empty");
  mkdir(DIR "/a-directory", 0755);
  refuse(DIR "/a-directory", 1, "directory");
  refuse(DIR "/no-such-file.gz", 0, "No such file");
  // labels within a larger class count are fine
  int n;
  uint8_t *l;
  CU_ASSERT(cnn_idx_load_labels(DIR "/label-range.gz", 11, &n, &l, NULL, 0) == 0);
  free(l);
}

// A gzip stream with a damaged middle, one cut short, and one whose CRC
// trailer is wrong are all refused.
static void test_corrupt_gzip(void) {
  static unsigned char raw[16 + 10 * 784], gz[2 * sizeof raw];
  size_t len = make_images(raw, 2051, 10, 28, 28, 10 * 784);
  for (size_t i = 16; i < len; i++) // incompressible-ish so damage lands in data
    raw[i] = (unsigned char)((i * 2654435761u) >> 13);
  write_file(DIR "/whole.gz", raw, len, 1);
  FILE *f = fopen(DIR "/whole.gz", "rb");
  CU_ASSERT_FATAL(f != NULL);
  size_t gl = fread(gz, 1, sizeof gz, f);
  fclose(f);
  CU_ASSERT_FATAL(gl > 100);
  int n, r, c;
  uint8_t *p;
  char err[1024];
  CU_ASSERT_FATAL(cnn_idx_load_images(DIR "/whole.gz", &n, &r, &c, &p, err, sizeof err) == 0);
  CU_ASSERT(memcmp(p, raw + 16, 10 * 784) == 0);
  free(p);

  // damage: several different places in the deflate data
  for (int k = 1; k <= 5; k++) {
    unsigned char saved[8];
    size_t at = gl * k / 7;
    memcpy(saved, gz + at, 8);
    for (int j = 0; j < 8; j++)
      gz[at + j] ^= 0x5a;
    f = fopen(DIR "/corrupt.gz", "wb");
    fwrite(gz, 1, gl, f);
    fclose(f);
    refuse(DIR "/corrupt.gz", 1, "gzip");
    memcpy(gz + at, saved, 8);
  }
  // CRC trailer wrong, data intact
  gz[gl - 6] ^= 1;
  f = fopen(DIR "/bad-crc.gz", "wb");
  fwrite(gz, 1, gl, f);
  fclose(f);
  refuse(DIR "/bad-crc.gz", 1, "gzip");
  gz[gl - 6] ^= 1;
  // cut short: mid-stream and just before the trailer
  size_t cuts[2] = {gl / 2, gl - 4};
  for (int k = 0; k < 2; k++) {
    f = fopen(DIR "/cut.gz", "wb");
    fwrite(gz, 1, cuts[k], f);
    fclose(f);
    refuse(DIR "/cut.gz", 1, "truncated");
  }
}

// A 4-dimensional image file of n images of r x c x ch, channels last; pixel
// (i, y, x, k) is i*64 + y*16 + x*4 + k (all below 256 for the sizes used).
static size_t make_images4(unsigned char *buf, uint32_t n, uint32_t r, uint32_t c, uint32_t ch) {
  be32(buf, 0x00000804);
  be32(buf + 4, n);
  be32(buf + 8, r);
  be32(buf + 12, c);
  be32(buf + 16, ch);
  size_t at = 20;
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t y = 0; y < r; y++)
      for (uint32_t x = 0; x < c; x++)
        for (uint32_t k = 0; k < ch; k++)
          buf[at++] = (unsigned char)(i * 64 + y * 16 + x * 4 + k);
  return at;
}

// N x H x W x C files (magic 0x804) load, gz or raw, with their channels, by
// name (train-images-idx4-ubyte) in a directory; the one-channel loader and
// broken 4-dimensional headers are refused.
static void test_four_dims(void) {
  static unsigned char img[20 + 3 * 2 * 3 * 3], lab[8 + 3];
  size_t il = make_images4(img, 3, 2, 3, 3), ll = make_labels(lab, 2049, 3, 3, -1);
  mkdir(DIR "/rgb", 0755);
  write_file(DIR "/rgb/train-images-idx4-ubyte.gz", img, il, 1);
  write_file(DIR "/rgb/train-labels-idx1-ubyte.gz", lab, ll, 1);
  write_file(DIR "/rgb/t10k-images-idx4-ubyte", img, il, 0);
  write_file(DIR "/rgb/t10k-labels-idx1-ubyte", lab, ll, 0);
  CU_ASSERT(cnn_datadir_ok(DIR "/rgb"));
  const char *split[2] = {"train", "t10k"};
  for (int s = 0; s < 2; s++) {
    char err[1024] = "";
    cnn_idx d;
    CU_ASSERT_FATAL(cnn_idx_load(DIR "/rgb", split[s], 10, &d, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(d.n, 3);
    CU_ASSERT_EQUAL(d.rows, 2);
    CU_ASSERT_EQUAL(d.cols, 3);
    CU_ASSERT_EQUAL(d.channels, 3);
    CU_ASSERT_FATAL(d.path != NULL);
    CU_ASSERT(strstr(d.path, s ? "t10k-images-idx4-ubyte" : "train-images-idx4-ubyte.gz") != NULL);
    int ok = 1;
    for (int i = 0; i < 3; i++)
      for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
          for (int k = 0; k < 3; k++)
            ok &= d.pixels[((i * 2 + y) * 3 + x) * 3 + k] == i * 64 + y * 16 + x * 4 + k;
    CU_ASSERT(ok);
    CU_ASSERT(cnn_idx_check(&d, "rgbnet", 3, 2, 3, err, sizeof err) == 0);
    cnn_idx_free(&d);
    CU_ASSERT_PTR_NULL(d.path);
  }
  // a 4-dimensional file of one channel is the same as a 3-dimensional one
  il = make_images4(img, 3, 2, 3, 1);
  write_file(DIR "/one4.gz", img, il, 1);
  int n, r, c;
  uint8_t *p;
  char err[1024] = "";
  CU_ASSERT_FATAL(cnn_idx_load_images(DIR "/one4.gz", &n, &r, &c, &p, err, sizeof err) == 0);
  CU_ASSERT(n == 3 && r == 2 && c == 3 && p[7] == 64 + 4);
  free(p);
  // the one-channel loader refuses three channels
  refuse(DIR "/rgb/t10k-images-idx4-ubyte", 1, "images are 2x3x3, this reader takes one channel");
  // broken 4-dimensional headers and data
  char path[512];
  for (int gz = 0; gz <= 1; gz++) {
    const char *ext = gz ? ".gz" : "";
    il = make_images4(img, 3, 2, 3, 0);
    snprintf(path, sizeof path, DIR "/zero-ch%s", ext);
    write_file(path, img, il, gz);
    refuse(path, 1, "bad dimensions 3 x 2 x 3 x 0");
    il = make_images4(img, 3, 2, 3, 3);
    snprintf(path, sizeof path, DIR "/short4-header%s", ext);
    write_file(path, img, 18, gz);
    refuse(path, 1, "header");
    snprintf(path, sizeof path, DIR "/short4-pixels%s", ext);
    write_file(path, img, il - 1, gz);
    refuse(path, 1, "pixels");
    // a 3-dimensional header over 4-dimensional data: the extra bytes are caught
    memcpy(path, DIR "/mislabelled", sizeof DIR "/mislabelled");
    strcat(path, ext);
    img[3] = 0x03;
    write_file(path, img, il, gz);
    refuse(path, 1, "trailing");
  }
}

// A split is checked against the network's input: size first, then channels,
// naming the file and both shapes.
static void test_check_against_net(void) {
  unsigned char img[16 + 2 * 32 * 32], lab[8 + 2];
  size_t il = make_images(img, 2051, 2, 32, 32, 2 * 32 * 32), ll = make_labels(lab, 2049, 2, 2, -1);
  mkdir(DIR "/big", 0755);
  write_file(DIR "/big/train-images-idx3-ubyte.gz", img, il, 1);
  write_file(DIR "/big/train-labels-idx1-ubyte.gz", lab, ll, 1);
  char err[1024] = "";
  cnn_idx d;
  CU_ASSERT_FATAL(cnn_idx_load(DIR "/big", "train", 10, &d, err, sizeof err) == 0);
  CU_ASSERT(cnn_idx_check(&d, "mnist14k", 1, 28, 28, err, sizeof err) == -1);
  CU_ASSERT_STRING_EQUAL(err, DIR "/big/train-images-idx3-ubyte.gz: images are 32x32, the "
                              "network mnist14k takes 28x28x1");
  CU_ASSERT(cnn_idx_check(&d, "mnist14k", 1, 32, 20, err, sizeof err) == -1);
  CU_ASSERT(strstr(err, "takes 32x20x1") != NULL);
  CU_ASSERT(cnn_idx_check(&d, "rgb32", 3, 32, 32, err, sizeof err) == -1);
  CU_ASSERT(strstr(err, DIR "/big/train-images-idx3-ubyte.gz: images have 1 channel (32x32x1), "
                        "the network rgb32 takes 32x32x3") == err);
  CU_ASSERT(cnn_idx_check(&d, "big", 1, 32, 32, err, sizeof err) == 0);
  cnn_idx_free(&d);
  // three channels where the network takes one
  static unsigned char img4[20 + 3 * 2 * 3 * 3];
  il = make_images4(img4, 3, 2, 3, 3);
  write_file(DIR "/rgb3.gz", img4, il, 1);
  d = (cnn_idx){0};
  CU_ASSERT_FATAL(cnn_idx_load_images_c(DIR "/rgb3.gz", &d.n, &d.rows, &d.cols, &d.channels,
                                        &d.pixels, err, sizeof err) == 0);
  d.path = strdup(DIR "/rgb3.gz");
  CU_ASSERT(cnn_idx_check(&d, "gray", 1, 2, 3, err, sizeof err) == -1);
  CU_ASSERT(strstr(err, DIR "/rgb3.gz: images have 3 channels (2x3x3), the network gray takes "
                        "2x3x1") == err);
  cnn_idx_free(&d);
}

// A header declaring far more data than the file holds (fuzz_idx found one
// asking for 3 GB) is refused before the buffer is allocated, raw and gzipped
// (tests/fuzz/crashes/idx/ replays it under libFuzzer's 2 GB malloc limit).
static void test_header_larger_than_file(void) {
  unsigned char img[16 + 64], lab[8 + 64];
  size_t il = make_images(img, 2051, 0x0f000000u, 3, 4, 64);
  size_t ll = make_labels(lab, 2049, 0x7fffffffu, 64, -1);
  for (int gz = 0; gz <= 1; gz++) {
    write_file(DIR "/huge-images", img, il, gz);
    refuse(DIR "/huge-images", 1, gz ? "more than" : "truncated");
    write_file(DIR "/huge-labels", lab, ll, gz);
    refuse(DIR "/huge-labels", 0, gz ? "more than" : "truncated");
  }
}

// Image and label counts that disagree, and a missing half, in a directory.
static void test_split_mismatch(void) {
  unsigned char img[16 + 3 * 4], lab[8 + 2];
  size_t il = make_images(img, 2051, 3, 2, 2, 12), ll = make_labels(lab, 2049, 2, 2, -1);
  mkdir(DIR "/mismatch", 0755);
  write_file(DIR "/mismatch/train-images-idx3-ubyte.gz", img, il, 1);
  write_file(DIR "/mismatch/train-labels-idx1-ubyte.gz", lab, ll, 1);
  char err[1024] = "";
  cnn_idx d;
  CU_ASSERT(cnn_idx_load(DIR "/mismatch", "train", 10, &d, err, sizeof err) == -1);
  CU_ASSERT(strstr(err, DIR "/mismatch/train-labels-idx1-ubyte.gz") == err);
  CU_ASSERT(strstr(err, "2 labels but") != NULL);
  CU_ASSERT(strstr(err, "has 3 images") != NULL);
  CU_ASSERT_PTR_NULL(d.pixels);
  CU_ASSERT_PTR_NULL(d.labels);
  err[0] = 0;
  CU_ASSERT(cnn_idx_load(DIR "/mismatch", "t10k", 10, &d, err, sizeof err) == -1);
  CU_ASSERT(strstr(err, DIR "/mismatch/t10k-images-idx3-ubyte.gz") == err);
  CU_ASSERT(!cnn_datadir_ok(DIR "/mismatch"));
}

// The data directory error says how to get MNIST.
static void test_datadir_errors(void) {
  char out[256], err[1024] = "";
  CU_ASSERT(cnn_datadir_resolve(DIR "/mismatch", out, sizeof out, err, sizeof err) == -1);
  CU_ASSERT(strstr(err, DIR "/mismatch") == err);
  CU_ASSERT(strstr(err, "make data") != NULL);
  CU_ASSERT(strstr(err, "MNIST_DIR") != NULL);
  // good/ has train and t10k, gz and raw mixed: an explicit --data wins
  CU_ASSERT(cnn_datadir_resolve(DIR "/good", out, sizeof out, err, sizeof err) == 0);
  CU_ASSERT_STRING_EQUAL(out, DIR "/good");
}

// A held-out tail: the last images and labels move, in order, channels and
// all; the head keeps the rest; counts outside 1..n-1 are refused.
static void test_split(void) {
  enum { N = 5, R = 2, C = 3, CH = 2, IMG = R * C * CH };
  cnn_idx d = {.n = N, .rows = R, .cols = C, .channels = CH, .pixels = malloc(N * IMG),
               .labels = malloc(N), .path = strdup("train-images")};
  CU_ASSERT_FATAL(d.pixels && d.labels && d.path);
  for (int i = 0; i < N * IMG; i++)
    d.pixels[i] = (uint8_t)(i * 7);
  for (int i = 0; i < N; i++)
    d.labels[i] = (uint8_t)(9 - i);
  char err[256] = "";
  cnn_idx t;
  CU_ASSERT(cnn_idx_split(&d, 0, &t, err, sizeof err) == -1);
  CU_ASSERT_STRING_EQUAL(err, "train-images: cannot hold out 0 of its 5 images (1 to 4)");
  CU_ASSERT(cnn_idx_split(&d, N, &t, err, sizeof err) == -1);
  CU_ASSERT_PTR_NULL(t.pixels);
  CU_ASSERT(d.n == N);
  CU_ASSERT_FATAL(cnn_idx_split(&d, 2, &t, err, sizeof err) == 0);
  CU_ASSERT(d.n == 3 && t.n == 2);
  CU_ASSERT(t.rows == R && t.cols == C && t.channels == CH);
  CU_ASSERT_STRING_EQUAL(t.path, "train-images");
  for (int i = 0; i < 2 * IMG; i++)
    CU_ASSERT(t.pixels[i] == (uint8_t)((3 * IMG + i) * 7));
  CU_ASSERT(t.labels[0] == 6 && t.labels[1] == 5);
  CU_ASSERT(d.pixels[3 * IMG - 1] == (uint8_t)((3 * IMG - 1) * 7) && d.labels[2] == 7);
  cnn_idx_free(&t);
  cnn_idx_free(&d);
}

// The suite.
void register_tests(void) {
  CU_pSuite s = CU_add_suite("idx", setup, NULL);
  CU_add_test(s, "real MNIST", test_real_mnist);
  CU_add_test(s, "good synthetic, gz and raw", test_good_synthetic);
  CU_add_test(s, "broken-file corpus", test_corpus);
  CU_add_test(s, "corrupt gzip", test_corrupt_gzip);
  CU_add_test(s, "header larger than the file", test_header_larger_than_file);
  CU_add_test(s, "image/label mismatch", test_split_mismatch);
  CU_add_test(s, "N x H x W x C images", test_four_dims);
  CU_add_test(s, "checked against the network", test_check_against_net);
  CU_add_test(s, "datadir errors", test_datadir_errors);
  CU_add_test(s, "a held-out tail", test_split);
}
