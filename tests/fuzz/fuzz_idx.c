// fuzz_idx.c: libFuzzer harness for the IDX reader (cnn_idx_load_images,
// cnn_idx_load_labels) over zlib. Each input is read as it is (raw IDX, or a
// gzip stream the mutator broke) and again gzip-compressed by the harness, so
// the header and length checks are also reached through a valid gzip stream.
// A refused file must be named in the message; a loaded one must be as long
// as its header says.
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char path[64];

// Replaces the in-memory file's contents with buf.
static void put_file(const uint8_t *buf, size_t n) {
  if (ftruncate(memfd, 0) != 0 || (n && pwrite(memfd, buf, n, 0) != (ssize_t)n))
    abort();
}

// Big-endian u32 of the IDX header.
static uint32_t be32(const uint8_t *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

// Loads the current file both ways; plain is the uncompressed content.
static void load_and_check(const uint8_t *plain, size_t n) {
  char err[512] = "";
  int cnt, rows, cols;
  uint8_t *px;
  if (cnn_idx_load_images(path, &cnt, &rows, &cols, &px, err, sizeof err) != 0) {
    if (!strstr(err, path) || px)
      __builtin_trap();
  } else {
    if (n != 16 + (size_t)cnt * rows * cols || be32(plain + 4) != (uint32_t)cnt ||
        memcmp(px, plain + 16, (size_t)cnt * rows * cols) != 0)
      __builtin_trap();
    free(px);
  }
  uint8_t *lb;
  int classes = n > 8 ? plain[n - 1] % 12 : 0; // <= 0 means 10
  if (cnn_idx_load_labels(path, classes, &cnt, &lb, err, sizeof err) != 0) {
    if (!strstr(err, path) || lb)
      __builtin_trap();
  } else {
    if (n != 8 + (size_t)cnt)
      __builtin_trap();
    for (int i = 0; i < cnt; i++)
      if (lb[i] >= (classes > 0 ? classes : 10))
        __builtin_trap();
    free(lb);
  }
}

// gzip-compresses data into a malloc'ed buffer (*outlen bytes).
static uint8_t *gzip(const uint8_t *data, size_t size, size_t *outlen) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    abort();
  size_t cap = deflateBound(&z, (uLong)size);
  uint8_t *out = malloc(cap);
  if (!out)
    abort();
  z.next_in = (Bytef *)(uintptr_t)data;
  z.avail_in = (uInt)size;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END)
    abort();
  *outlen = z.total_out;
  deflateEnd(&z);
  return out;
}

// One input: read raw, then read its gzip-compressed form.
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (memfd < 0) {
    memfd = memfd_create("fuzz_idx", MFD_CLOEXEC);
    if (memfd < 0)
      abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
  }
  // Raw input that happens to be gzip says nothing checkable about its length.
  int is_gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  put_file(data, size);
  if (is_gz) {
    char err[512];
    int cnt, rows, cols;
    uint8_t *px, *lb;
    if (cnn_idx_load_images(path, &cnt, &rows, &cols, &px, err, sizeof err) == 0)
      free(px);
    else if (!strstr(err, path))
      __builtin_trap();
    if (cnn_idx_load_labels(path, 10, &cnt, &lb, err, sizeof err) == 0)
      free(lb);
    else if (!strstr(err, path))
      __builtin_trap();
  } else {
    load_and_check(data, size);
  }
  size_t zn;
  uint8_t *z = gzip(data, size, &zn);
  put_file(z, zn);
  load_and_check(data, size);
  free(z);
  return 0;
}
