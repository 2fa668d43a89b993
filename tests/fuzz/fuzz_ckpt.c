// fuzz_ckpt.c: libFuzzer harness for the checkpoint loader (cnn_ckpt_load,
// cnn_ckpt_check): format v3's JSON header (cJSON) and versions 1 and 2.
// Each input is loaded as it is, and again with its CRC fixed up, so the
// mutations get past the checksum to the header and size checks. A loaded
// checkpoint must agree with the bytes it came from and with its own
// description; a refused one must name the file in its message.
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

// A version 1 or 2 file: exactly header + arrays + CRC, the values its bytes.
static void check_legacy(const uint8_t *buf, size_t n, cnn_ckpt *c) {
  char err[512] = "";
  uint64_t nm = c->momentum ? c->n_params : 0;
  uint64_t hdr = buf[8] == 1 ? CNN_CKPT_V1_HEADER_BYTES : CNN_CKPT_V2_HEADER_BYTES;
  if (n != hdr + 4 * (c->n_params + c->n_state + nm) + 4 || c->n_params != le64(buf + 88) ||
      c->n_state != le64(buf + 96) || memchr(c->name, 0, sizeof c->name) == NULL ||
      (c->n_params && memcmp(c->params, buf + hdr, 4) != 0))
    __builtin_trap();
  double mean = c->has_norm ? c->mean : 0, std = c->has_norm ? c->std : 1;
  if (cnn_ckpt_check(c, path, c->name, c->shape_hash, c->n_params, c->n_state, mean, std, NULL, 0, err,
                     sizeof err) != 0)
    __builtin_trap(); // its own description must match
  if (cnn_ckpt_check(c, path, c->name, c->shape_hash ^ 1, c->n_params, c->n_state, mean, std, NULL, 0, err,
                     sizeof err) == 0)
    __builtin_trap(); // another shape must not
}

// A version 3 file: placed by a table made of its own F32 tensors (running
// statistics in the state block), it must check, its values its bytes.
static void check_v3(const uint8_t *buf, cnn_ckpt *c) {
  static cnn_tensor t[64];
  char err[512] = "";
  size_t nt = 0, np = 0, ns = 0;
  int own = c->n_entries <= 64;
  for (size_t i = 0; own && i < c->n_entries; i++) {
    const cnn_ckpt_entry *e = &c->entries[i];
    own = e->dtype_f32 && e->ndim <= 4 && strncmp(e->name, "momentum_buffer.", 16) != 0;
    size_t size = 1;
    for (int d = 0; own && d < e->ndim; d++) {
      own = e->shape[d] <= 1000000;
      size *= (size_t)e->shape[d];
      t[nt].shape[d] = (int)e->shape[d];
    }
    own = own && size <= 1000000;
    if (!own)
      break;
    t[nt].name = e->name;
    t[nt].in_state = strstr(e->name, "running_") != NULL;
    t[nt].offset = t[nt].in_state ? ns : np;
    t[nt].size = size;
    t[nt].ndim = e->ndim;
    *(t[nt].in_state ? &ns : &np) += size;
    nt++;
  }
  double mean = c->has_norm ? c->mean : 0, std = c->has_norm ? c->std : 1;
  if (cnn_ckpt_check(c, path, c->name, c->shape_hash ^ 1, np, ns, mean, std, t, nt, err, sizeof err) == 0)
    __builtin_trap(); // another shape must not
  int rc = cnn_ckpt_check(c, path, c->name, c->shape_hash, np, ns, mean, std, t, nt, err, sizeof err);
  if (rc != 0 && (own || !strstr(err, path)))
    __builtin_trap(); // its own description must match; a refusal names the file
  if (rc == 0 && nt && !t[0].in_state && t[0].size &&
      memcmp(c->params, buf + 8 + le64(buf) + c->entries[0].begin, 4) != 0)
    __builtin_trap();
}

// Loads the current file and checks what the loader promises.
static void load_and_check(const uint8_t *buf, size_t n) {
  cnn_ckpt c;
  char err[512] = "";
  if (cnn_ckpt_load(path, &c, err, sizeof err) != 0) {
    if (!strstr(err, path))
      __builtin_trap(); // the message must name the file
    if (c.params || c.state || c.momentum || c.entries || c.data)
      __builtin_trap(); // "on failure c is left empty"
    return;
  }
  if (c.version < 3)
    check_legacy(buf, n, &c);
  else
    check_v3(buf, &c);
  cnn_ckpt_free(&c);
}

// A copy of the input with its checksum made right: the trailing CRC of a
// version 1 or 2 file, the "crc32" digits of a version 3 header (the CRC of
// the file with them as zeros). NULL when there is none to fix.
static uint8_t *fix_crc(const uint8_t *data, size_t size) {
  uint8_t *fixed = malloc(size ? size : 1);
  if (!fixed)
    return NULL;
  memcpy(fixed, data, size);
  if (size >= CNN_CKPT_V1_HEADER_BYTES + 4 && memcmp(data, "CNNCKPT", 8) == 0) {
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), fixed, (uInt)(size - 4));
    for (int i = 0; i < 4; i++)
      fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    return fixed;
  }
  static const char field[] = "\"crc32\":\"";
  size_t hl = size >= 8 ? (size_t)(le64(data) < size - 8 ? le64(data) : size - 8) : 0;
  for (size_t i = 8; i + sizeof field - 1 + 8 <= 8 + hl; i++)
    if (memcmp(fixed + i, field, sizeof field - 1) == 0) {
      uint8_t *digits = fixed + i + sizeof field - 1;
      memset(digits, '0', 8);
      char hex[9];
      snprintf(hex, sizeof hex, "%08x", (unsigned)crc32(crc32(0L, Z_NULL, 0), fixed, (uInt)size));
      memcpy(digits, hex, 8);
      return fixed;
    }
  free(fixed);
  return NULL;
}

// One input: load it raw, then with its checksum fixed up.
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (memfd < 0) {
    memfd = memfd_create("fuzz_ckpt", MFD_CLOEXEC);
    if (memfd < 0)
      abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
  }
  put_file(data, size);
  load_and_check(data, size);
  uint8_t *fixed = fix_crc(data, size);
  if (fixed) {
    put_file(fixed, size);
    load_and_check(fixed, size);
    free(fixed);
  }
  return 0;
}
