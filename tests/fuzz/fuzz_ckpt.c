// fuzz_ckpt.c: libFuzzer harness for the checkpoint loader (cnn_ckpt_load).
// Each input is loaded as it is, and again with its CRC fixed up, so the
// mutations get past the checksum to the header and size checks. A loaded
// checkpoint must agree with the bytes it came from; a refused one must name
// the file in its message.
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char path[64];

// Replaces the in-memory file's contents with buf.
static void put_file(const uint8_t *buf, size_t n) {
  if (ftruncate(memfd, 0) != 0 || (n && pwrite(memfd, buf, n, 0) != (ssize_t)n))
    abort();
}

// Little-endian u64 at p, as the format stores it.
static uint64_t le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

// Loads the current file and checks what the loader promises.
static void load_and_check(const uint8_t *buf, size_t n) {
  cnn_ckpt c;
  char err[512] = "";
  if (cnn_ckpt_load(path, &c, err, sizeof err) != 0) {
    if (!strstr(err, path))
      __builtin_trap(); // the message must name the file
    if (c.params || c.state || c.momentum)
      __builtin_trap(); // "on failure c is left empty"
    return;
  }
  // A loaded file is exactly header + arrays + CRC, and the values are its bytes.
  uint64_t nm = c.momentum ? c.n_params : 0;
  // Version 1 files have the 144-byte header, version 2 adds mean and std.
  uint64_t hdr = buf[8] == 1 ? CNN_CKPT_V1_HEADER_BYTES : CNN_CKPT_HEADER_BYTES;
  if (n != hdr + 4 * (c.n_params + c.n_state + nm) + 4 || c.n_params != le64(buf + 88) ||
      c.n_state != le64(buf + 96) || memchr(c.name, 0, sizeof c.name) == NULL ||
      (c.n_params && memcmp(c.params, buf + hdr, 4) != 0))
    __builtin_trap();
  double mean = c.has_norm ? c.mean : 0, std = c.has_norm ? c.std : 1;
  if (cnn_ckpt_check(&c, path, c.name, c.shape_hash, c.n_params, c.n_state, mean, std, err, sizeof err) != 0)
    __builtin_trap(); // its own description must match
  if (cnn_ckpt_check(&c, path, c.name, c.shape_hash ^ 1, c.n_params, c.n_state, mean, std, err, sizeof err) == 0)
    __builtin_trap(); // another shape must not
  cnn_ckpt_free(&c);
}

// One input: load it raw, then with a correct CRC in its last four bytes.
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (memfd < 0) {
    memfd = memfd_create("fuzz_ckpt", MFD_CLOEXEC);
    if (memfd < 0)
      abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
  }
  put_file(data, size);
  load_and_check(data, size);
  if (size >= CNN_CKPT_HEADER_BYTES + 4) {
    uint8_t *fixed = malloc(size);
    if (!fixed)
      return 0;
    memcpy(fixed, data, size);
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), fixed, (uInt)(size - 4));
    for (int i = 0; i < 4; i++)
      fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    put_file(fixed, size);
    load_and_check(fixed, size);
    free(fixed);
  }
  return 0;
}
