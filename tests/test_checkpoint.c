// test_checkpoint.c: round trips, refusal of other networks and of damaged
// files (format v3: every lie a header can tell, each named; versions 1 and 2
// still read), and atomicity: a saver killed with SIGKILL at any moment leaves
// a checkpoint that loads, old or new.
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "checkpoint.h"

#define TDIR "build/test_checkpoint"

// The suite's scratch directory.
static int setup(void) {
  mkdir("build", 0755);
  mkdir(TDIR, 0755);
  return 0;
}

// The tensors of sample(): a conv's weight [2][1][1][4] and bias [2] in the
// 10 params, a BatchNorm's running mean [3] in the 3 state values.
static const cnn_tensor TABLE[] = {
    {"layers.0.weight", 0, 0, 8, 4, {2, 1, 1, 4}},
    {"layers.0.bias", 0, 8, 2, 1, {2}},
    {"layers.1.running_mean", 1, 0, 3, 1, {3}},
};
#define NT (sizeof TABLE / sizeof TABLE[0])

// A small checkpoint with distinct values everywhere.
static cnn_ckpt sample(float *p, float *s, float *m, size_t np, size_t ns) {
  cnn_ckpt c;
  memset(&c, 0, sizeof c);
  c.tensors = TABLE;
  c.n_tensors = NT;
  snprintf(c.name, sizeof c.name, "mnist14k");
  c.shape_hash = 0x0123456789abcdefULL;
  c.n_params = np;
  c.n_state = ns;
  c.epoch = 7;
  c.step = 6566;
  c.sgd_steps = 6565;
  c.rng.state = 0xfeedfacecafebeefULL;
  c.rng.inc = 0x1234567ULL | 1;
  c.has_norm = 1;
  c.mean = 0.1307;
  c.std = 0.3081;
  for (size_t i = 0; i < np; i++) {
    p[i] = (float)i * 0.25f - 1.5f;
    if (m)
      m[i] = -(float)i / 3.0f;
  }
  for (size_t i = 0; i < ns; i++)
    s[i] = 100.0f + (float)i;
  c.params = p;
  c.state = s;
  c.momentum = m;
  return c;
}

// Reads a whole file.
static size_t slurp(const char *path, unsigned char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  CU_ASSERT_FATAL(f != NULL);
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

// Writes a whole file.
static void spit(const char *path, const unsigned char *buf, size_t n) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_FATAL(f != NULL);
  CU_ASSERT_FATAL(fwrite(buf, 1, n, f) == n);
  fclose(f);
}

// Loads path and matches it to sample()'s network: 0, or -1 with err set.
static int load_checked(const char *path, cnn_ckpt *c, char *err, size_t n) {
  if (cnn_ckpt_load(path, c, err, n) != 0)
    return -1;
  return cnn_ckpt_check(c, path, "mnist14k", 0x0123456789abcdefULL, 10, 3, 0.1307, 0.3081, TABLE, NT,
                        err, n);
}

// Rewrites the trailing CRC32 of a version 1 or 2 checkpoint image of n bytes.
static void recrc(unsigned char *b, size_t n) {
  uLong crc = crc32(0L, b, (uInt)(n - 4));
  for (int k = 0; k < 4; k++)
    b[n - 4 + k] = (unsigned char)(crc >> (8 * k));
}

// n bytes little-endian at p.
static void put_le(unsigned char *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

// c as cnnc's version 2 writer wrote it (checkpoint.h); returns the size.
static size_t v2_image(const cnn_ckpt *c, unsigned char *b) {
  memset(b, 0, CNN_CKPT_V2_HEADER_BYTES);
  memcpy(b, "CNNCKPT", 8);
  put_le(b + 8, 2, 4);
  put_le(b + 12, (c->momentum ? 1u : 0u) | (c->has_norm ? 2u : 0u), 4);
  memcpy(b + 16, c->name, strlen(c->name));
  put_le(b + 80, c->shape_hash, 8);
  put_le(b + 88, c->n_params, 8);
  put_le(b + 96, c->n_state, 8);
  put_le(b + 104, c->epoch, 4);
  put_le(b + 112, c->step, 8);
  put_le(b + 120, c->sgd_steps, 8);
  put_le(b + 128, c->rng.state, 8);
  put_le(b + 136, c->rng.inc, 8);
  memcpy(b + 144, &c->mean, 8); // (a little-endian host)
  memcpy(b + 152, &c->std, 8);
  size_t at = CNN_CKPT_V2_HEADER_BYTES;
  memcpy(b + at, c->params, 4 * c->n_params);
  at += 4 * c->n_params;
  memcpy(b + at, c->state, 4 * c->n_state);
  at += 4 * c->n_state;
  if (c->momentum) {
    memcpy(b + at, c->momentum, 4 * c->n_params);
    at += 4 * c->n_params;
  }
  recrc(b, at + 4);
  return at + 4;
}

// Expects loading path for sample()'s network to fail with a message naming
// path and containing what; a file refused by the loader leaves c empty.
static void refuse(const char *path, const char *what) {
  cnn_ckpt c;
  char err[512] = "";
  if (cnn_ckpt_load(path, &c, err, sizeof err) == 0) {
    CU_ASSERT_EQUAL(cnn_ckpt_check(&c, path, "mnist14k", 0x0123456789abcdefULL, 10, 3, 0.1307, 0.3081,
                                   TABLE, NT, err, sizeof err), -1);
  } else {
    CU_ASSERT_PTR_NULL(c.params);
    CU_ASSERT_PTR_NULL(c.entries);
  }
  cnn_ckpt_free(&c);
  CU_ASSERT(strstr(err, path) == err);
  if (what && !strstr(err, what)) {
    fprintf(stderr, "\n  expected '%s' in: %s\n", what, err);
    CU_FAIL("message does not say what is wrong");
  }
}

// Everything saved comes back; with and without a momentum buffer.
static void test_round_trip(void) {
  float p[10], s[3], m[10];
  for (int with_m = 0; with_m <= 1; with_m++) {
    cnn_ckpt c = sample(p, s, with_m ? m : NULL, 10, 3), d;
    char err[512] = "";
    CU_ASSERT_FATAL(cnn_ckpt_save(TDIR "/rt.ckpt", &c, err, sizeof err) == 0);
    CU_ASSERT_FATAL(load_checked(TDIR "/rt.ckpt", &d, err, sizeof err) == 0);
    CU_ASSERT_EQUAL(d.version, 3);
    CU_ASSERT_STRING_EQUAL(d.name, "mnist14k");
    CU_ASSERT_EQUAL(d.shape_hash, c.shape_hash);
    CU_ASSERT_EQUAL(d.n_params, 10u);
    CU_ASSERT_EQUAL(d.n_state, 3u);
    CU_ASSERT_EQUAL(d.epoch, 7u);
    CU_ASSERT_EQUAL(d.step, 6566u);
    CU_ASSERT_EQUAL(d.sgd_steps, 6565u);
    CU_ASSERT_EQUAL(d.rng.state, c.rng.state);
    CU_ASSERT_EQUAL(d.rng.inc, c.rng.inc);
    CU_ASSERT_EQUAL(d.has_norm, 1);
    CU_ASSERT_EQUAL(d.mean, 0.1307);
    CU_ASSERT_EQUAL(d.std, 0.3081);
    CU_ASSERT(memcmp(d.params, p, sizeof p) == 0);
    CU_ASSERT(memcmp(d.state, s, sizeof s) == 0);
    if (with_m) {
      CU_ASSERT_FATAL(d.momentum != NULL);
      CU_ASSERT(memcmp(d.momentum, m, sizeof m) == 0);
    } else {
      CU_ASSERT_PTR_NULL(d.momentum);
    }
    // a second check of the placed file still passes
    CU_ASSERT(cnn_ckpt_check(&d, TDIR "/rt.ckpt", "mnist14k", c.shape_hash, 10, 3, 0.1307,
                             0.3081, TABLE, NT, err, sizeof err) == 0);
    cnn_ckpt_free(&d);
    CU_ASSERT_PTR_NULL(d.params);
    // the file is the header length, the JSON (ending at a multiple of 8), the data
    static unsigned char buf[8192];
    size_t n = slurp(TDIR "/rt.ckpt", buf, sizeof buf);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
      hl = hl << 8 | buf[i];
    CU_ASSERT_EQUAL(hl % 8, 0);
    CU_ASSERT_EQUAL(n, 8 + hl + 4 * (10 + 3 + (with_m ? 10 : 0)));
    CU_ASSERT(buf[8] == '{');
    buf[8 + hl - 1] = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)buf + 8, "\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,1,1,4],"
                                                  "\"data_offsets\":[0,32]}"));
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)buf + 8, "\"network\":\"mnist14k\""));
    CU_ASSERT((strstr((char *)buf + 8, "momentum_buffer.layers.0.bias") != NULL) == with_m);
  }
  // no temp file is left behind by a successful save
  struct stat st;
  char tmp[256];
  snprintf(tmp, sizeof tmp, TDIR "/rt.ckpt.tmp.%ld", (long)getpid());
  CU_ASSERT(stat(tmp, &st) != 0);
}

// Another network's name, hash, counts or shapes are refused, naming the file.
static void test_other_network(void) {
  float p[10], s[3], m[10];
  cnn_ckpt c = sample(p, s, m, 10, 3), d;
  char err[512] = "";
  const char *path = TDIR "/net.ckpt";
  CU_ASSERT_FATAL(cnn_ckpt_save(path, &c, err, sizeof err) == 0);
  CU_ASSERT_FATAL(cnn_ckpt_load(path, &d, err, sizeof err) == 0);
  CU_ASSERT(cnn_ckpt_check(&d, path, "mnist8k", c.shape_hash, 10, 3, 0.1307, 0.3081, TABLE, NT, err,
                           sizeof err) == -1);
  CU_ASSERT_STRING_EQUAL(err, TDIR "/net.ckpt: checkpoint is of network 'mnist14k', not 'mnist8k'");
  CU_ASSERT(cnn_ckpt_check(&d, path, "mnist14k", c.shape_hash ^ 1, 10, 3, 0.1307, 0.3081, TABLE, NT,
                           err, sizeof err) == -1);
  CU_ASSERT(strstr(err, path) == err && strstr(err, "shape hash") != NULL);
  CU_ASSERT(cnn_ckpt_check(&d, path, "mnist14k", c.shape_hash, 11, 3, 0.1307, 0.3081, TABLE, NT,
                           err, sizeof err) == -1);
  CU_ASSERT(strstr(err, path) == err && strstr(err, "not 11 and 3") != NULL);
  // the same counts in other shapes: the tensor is named
  cnn_tensor other[NT];
  memcpy(other, TABLE, sizeof other);
  other[0].shape[1] = 4, other[0].shape[3] = 1;
  CU_ASSERT(cnn_ckpt_check(&d, path, "mnist14k", c.shape_hash, 10, 3, 0.1307, 0.3081, other, NT, err,
                           sizeof err) == -1);
  CU_ASSERT_STRING_EQUAL(err, TDIR "/net.ckpt: tensor 'layers.0.weight' has shape [2, 1, 1, 4], the "
                              "network's is [2, 4, 1, 1]");
  cnn_ckpt_free(&d);
  // a tensor the network does not have
  float p12[12];
  memcpy(p12, p, sizeof p);
  p12[10] = p12[11] = 0.5f;
  cnn_tensor more[NT + 1];
  memcpy(more, TABLE, sizeof TABLE);
  more[NT] = (cnn_tensor){"layers.2.weight", 0, 10, 2, 1, {2}};
  c.params = p12;
  c.momentum = NULL;
  c.n_params = 12;
  c.tensors = more;
  c.n_tensors = NT + 1;
  CU_ASSERT_FATAL(cnn_ckpt_save(path, &c, err, sizeof err) == 0);
  refuse(path, "tensor 'layers.2.weight' is not one of the network's");
  // a table that does not describe its blocks is not saved
  c.n_params = 11;
  CU_ASSERT(cnn_ckpt_save(path, &c, err, sizeof err) == -1);
  CU_ASSERT(strstr(err, path) == err && strstr(err, "entry 3 ('layers.2.weight') does not fit") != NULL);
}

// The header length of a version 3 image.
static uint64_t header_len(const unsigned char *b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | b[i];
  return v;
}

// Writes a version 3 file from JSON text (its crc32 digits anything) and
// data: padded, with the CRC of the whole file computed as the format says.
static void craft(const char *path, const char *json, const unsigned char *data, size_t dlen) {
  static unsigned char out[16384];
  size_t jl = strlen(json), hl = (jl + 7) / 8 * 8;
  CU_ASSERT_FATAL(8 + hl + dlen <= sizeof out);
  for (int i = 0; i < 8; i++)
    out[i] = (unsigned char)(hl >> (8 * i));
  memcpy(out + 8, json, jl);
  memset(out + 8 + jl, ' ', hl - jl);
  memcpy(out + 8 + hl, data, dlen);
  char *digits = strstr((char *)out + 8, "\"crc32\":\"");
  if (digits && digits + 17 < (char *)out + 8 + jl) {
    digits += 9;
    memset(digits, '0', 8);
    char hex[9];
    snprintf(hex, sizeof hex, "%08lx", (unsigned long)crc32(0L, out, (uInt)(8 + hl + dlen)));
    memcpy(digits, hex, 8);
  }
  spit(path, out, 8 + hl + dlen);
}

// Copies the version 3 file src to dst with one edit of its JSON header
// (from replaced by to), the padding and CRC made right again.
static void rewrite(const char *src, const char *dst, const char *from, const char *to) {
  static unsigned char buf[16384];
  static char json[16384];
  size_t n = slurp(src, buf, sizeof buf);
  uint64_t hl = header_len(buf);
  CU_ASSERT_FATAL(8 + hl <= n);
  memcpy(json, buf + 8, hl);
  json[hl] = '\0';
  for (size_t e = hl; e > 0 && json[e - 1] == ' '; e--)
    json[e - 1] = '\0';
  char *at = strstr(json, from);
  if (!at)
    fprintf(stderr, "\n  '%s' not in the header of %s\n", from, src);
  CU_ASSERT_FATAL(at != NULL);
  static char edited[16384];
  snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from));
  craft(dst, edited, buf + 8 + hl, n - 8 - hl);
}

// Every lie a version 3 header can tell is refused, naming the file and the
// tensor: sizes, offsets, dtypes, shapes, duplicates, absences, bad JSON.
static void test_header_lies(void) {
  float p[10], s[3], m[10];
  cnn_ckpt c = sample(p, s, m, 10, 3);
  char err[512] = "";
  const char *good = TDIR "/lies.ckpt", *bad = TDIR "/lie.ckpt";
  CU_ASSERT_FATAL(cnn_ckpt_save(good, &c, err, sizeof err) == 0);
  // the rewriting itself keeps a good file good
  rewrite(good, bad, "\"epoch\":\"7\"", "\"epoch\":\"8\"");
  cnn_ckpt d;
  CU_ASSERT(load_checked(bad, &d, err, sizeof err) == 0 && d.epoch == 8);
  cnn_ckpt_free(&d);
  static const struct {
    const char *from, *to, *what;
  } lies[] = {
      // sizes and offsets
      {"\"shape\":[2,1,1,4]", "\"shape\":[2,1,1,5]",
       "tensor 'layers.0.weight': data_offsets hold 32 bytes, its shape and dtype F32 need 40"},
      {"\"data_offsets\":[0,32]", "\"data_offsets\":[0,3200]",
       "tensor 'layers.0.weight': data_offsets are not [begin, end] within the 92 bytes of data"},
      {"\"data_offsets\":[0,32]", "\"data_offsets\":[32,0]", "tensor 'layers.0.weight': data_offsets are not"},
      {"\"data_offsets\":[32,40]", "\"data_offsets\":[24,32]",
       "tensors 'layers.0.weight' and 'layers.0.bias' overlap in the data (bytes 24 to 32)"},
      {"\"data_offsets\":[0,32]", "\"data_offsets\":[0.5,32]", "tensor 'layers.0.weight': data_offsets are not"},
      {"\"shape\":[2,1,1,4]", "\"shape\":[2,1,1,-4]", "tensor 'layers.0.weight': shape dimension 3 is not a size"},
      // dtype and shape against the network
      {"\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[2]", "\"layers.0.bias\":{\"dtype\":\"F64\",\"shape\":[1]",
       "tensor 'layers.0.bias' is F64; cnnc checkpoints hold F32"},
      {"\"layers.0.bias\":{\"dtype\":\"F32\"", "\"layers.0.bias\":{\"dtype\":\"Q7\"",
       "tensor 'layers.0.bias' has unknown dtype 'Q7'"},
      {"\"shape\":[2,1,1,4]", "\"shape\":[2,4,1,1]",
       "tensor 'layers.0.weight' has shape [2, 4, 1, 1], the network's is [2, 1, 1, 4]"},
      {"\"shape\":[2,1,1,4]", "\"shape\":[8]", "tensor 'layers.0.weight' has shape [8], the network's is"},
      // duplicates and absences
      {"\"layers.0.bias\":", "\"layers.0.weight\":", "tensor 'layers.0.weight' appears twice in the header"},
      {"\"layers.0.bias\":", "\"layers.0.biaz\":", "tensor 'layers.0.bias' [2] is missing"},
      {"\"momentum_buffer.layers.0.bias\":", "\"momentum_buffer.layers.0.biaz\":",
       "tensor 'momentum_buffer.layers.0.bias' [2] is missing"},
      {"\"layers.1.running_mean\":", "\"layers.1.running_var\":", "tensor 'layers.1.running_mean' [3] is missing"},
      {"\"layers.0.bias\":", "\"\":", "tensor name '' is empty"},
      // the header itself
      {"{\"__metadata__\"", "{\"__metadata__\":", "header is not valid JSON"},
      {"{\"__metadata__\"", "[{\"__metadata__\"", "header is not valid JSON"},
      {"\"__metadata__\":", "\"metadata\":", "header has no \"__metadata__\" object: not a cnnc checkpoint"},
      {"\"format\":\"cnnc\"", "\"format\":\"pt\"", "metadata format is \"pt\", not \"cnnc\""},
      {"\"version\":\"3\"", "\"version\":\"4\"", "unknown checkpoint format version '4' (this build reads 1 to 3)"},
      {"\"epoch\":\"7\"", "\"epoch\":7", "metadata 'epoch' is not a string"},
      {"\"epoch\":\"7\"", "\"epoch\":\"-7\"", "metadata 'epoch' is '-7', not a whole number"},
      {"\"epoch\":\"7\"", "\"epoch\":\"4294967296\"", "metadata 'epoch' is '4294967296', not a whole number up to"},
      {"\"step\":\"6566\"", "\"step\":\"18446744073709551616\"", "metadata 'step' is"},
      {"\"network\":\"mnist14k\"", "\"network\":\"mnist14k\",\"network\":\"x\"", "metadata 'network' appears twice"},
      {"\"shape_hash\":\"0123456789abcdef\"", "\"shape_hash\":\"0123\"", "metadata 'shape_hash' is '0123'"},
      {"\"std\":", "\"sd\":", "metadata has 'mean' without 'std'"},
      {"\"mean\":\"0.13070000000000001\"", "\"mean\":\"nan\"", "metadata 'mean' is 'nan', not a finite number"},
      {"\"std\":\"0.30809999999999998\"", "\"std\":\"0\"", "bad normalization in header: mean 0.1307, std 0"},
      {"\"crc32\":", "\"crc\":", "metadata 'crc32' is missing"},
  };
  for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
    rewrite(good, bad, lies[i].from, lies[i].to);
    refuse(bad, lies[i].what);
  }
  // bytes after the JSON object, in its padding
  static unsigned char buf[8192];
  size_t n = slurp(good, buf, sizeof buf);
  uint64_t hl = header_len(buf);
  buf[8 + hl - 1] = 'x';
  spit(bad, buf, n);
  refuse(bad, "header has bytes after its JSON object");
  // data no tensor claims, at the end and in the middle
  craft(bad, "{\"__metadata__\":{\"format\":\"cnnc\",\"version\":\"3\",\"network\":\"mnist14k\",\"shape_hash\":"
             "\"0123456789abcdef\",\"epoch\":\"0\",\"step\":\"0\",\"sgd_steps\":\"0\",\"rng_state\":\"1\","
             "\"rng_inc\":\"1\",\"crc32\":\"00000000\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
             "\"data_offsets\":[0,4]}}",
        (const unsigned char *)"\0\0\0\0\0\0\0\0", 8);
  refuse(bad, "data bytes 4 to 8 belong to no tensor");
  craft(bad, "{\"__metadata__\":{\"format\":\"cnnc\",\"version\":\"3\",\"network\":\"mnist14k\",\"shape_hash\":"
             "\"0123456789abcdef\",\"epoch\":\"0\",\"step\":\"0\",\"sgd_steps\":\"0\",\"rng_state\":\"1\","
             "\"rng_inc\":\"1\",\"crc32\":\"00000000\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
             "\"data_offsets\":[4,8]}}",
        (const unsigned char *)"\0\0\0\0\0\0\0\0", 8);
  refuse(bad, "data bytes 0 to 4 belong to no tensor (before 'a')");
  // no file of this kind at all
  spit(bad, (const unsigned char *)"hello, this is not a checkpoint\n", 32);
  refuse(bad, "bad magic, not a cnnc checkpoint");
}

// Every truncation, every single flipped bit of one byte, a flipped data
// byte, extra bytes, a directory, no file.
static void test_damaged(void) {
  float p[10], s[3], m[10];
  cnn_ckpt c = sample(p, s, m, 10, 3);
  char err[512] = "";
  CU_ASSERT_FATAL(cnn_ckpt_save(TDIR "/good.ckpt", &c, err, sizeof err) == 0);
  static unsigned char buf[8192], bad[8192];
  size_t n = slurp(TDIR "/good.ckpt", buf, sizeof buf);
  uint64_t hl = header_len(buf);
  CU_ASSERT_FATAL(n == 8 + hl + 4 * 23);
  for (size_t cut = 0; cut < n; cut += (cut < 8 + hl ? 13 : 1)) {
    spit(TDIR "/cut.ckpt", buf, cut);
    refuse(TDIR "/cut.ckpt", "truncated");
  }
  // the CRC covers the header's metadata as well as the data
  for (size_t i = 0; i < n; i++) {
    memcpy(bad, buf, n);
    bad[i] ^= (unsigned char)(1u << (i % 8));
    spit(TDIR "/flip.ckpt", bad, n);
    refuse(TDIR "/flip.ckpt", NULL);
  }
  memcpy(bad, buf, n);
  bad[8 + hl + 5] ^= 0x10;
  spit(TDIR "/flip.ckpt", bad, n);
  refuse(TDIR "/flip.ckpt", "CRC mismatch");
  memcpy(bad, buf, n);
  bad[n] = '\0';
  char *epoch = strstr((char *)bad + 8, "\"epoch\":\"7\"");
  CU_ASSERT_FATAL(epoch != NULL);
  epoch[9] = '6';
  spit(TDIR "/flip.ckpt", bad, n);
  refuse(TDIR "/flip.ckpt", "CRC mismatch");
  memcpy(bad, buf, n);
  memset(bad + n, 0, 8);
  spit(TDIR "/long.ckpt", bad, n + 8);
  refuse(TDIR "/long.ckpt", "data bytes 92 to 100 belong to no tensor");
  mkdir(TDIR "/dir.ckpt", 0755);
  refuse(TDIR "/dir.ckpt", "not a regular file");
  refuse(TDIR "/missing.ckpt", "No such file");
  // the good one still loads
  cnn_ckpt d;
  CU_ASSERT(load_checked(TDIR "/good.ckpt", &d, err, sizeof err) == 0);
  cnn_ckpt_free(&d);
}

enum { BIG = 1 << 20 }; // 1M params + momentum: an 8 MB file, slow to write
// Its tensors: all the params, one state value.
static const cnn_tensor BIG_TABLE[] = {{"big.weight", 0, 0, BIG, 1, {BIG}}, {"big.running_mean", 1, 0, 1, 1, {1}}};

// The killed child: saves generation g = 2, 3, ... with every value = g.
static void saver(const char *path, float *p, float *m) {
  for (uint32_t g = 2; g < 100000; g++) {
    for (size_t i = 0; i < BIG; i++)
      p[i] = m[i] = (float)g;
    cnn_ckpt c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "big");
    c.n_params = BIG;
    c.n_state = 1;
    c.state = p;
    c.params = p;
    c.momentum = m;
    c.tensors = BIG_TABLE;
    c.n_tensors = 2;
    c.step = g;
    if (cnn_ckpt_save(path, &c, NULL, 0) != 0)
      _exit(3);
  }
  _exit(0);
}

// Loads path and checks it is one consistent generation >= previous one.
static uint64_t check_consistent(const char *path, uint64_t prev) {
  cnn_ckpt c;
  char err[512] = "";
  int rc = cnn_ckpt_load(path, &c, err, sizeof err);
  if (rc == 0)
    rc = cnn_ckpt_check(&c, path, "big", 0, BIG, 1, 0, 1, BIG_TABLE, 2, err, sizeof err);
  if (rc != 0)
    fprintf(stderr, "\n  %s\n", err);
  CU_ASSERT_FATAL(rc == 0);
  CU_ASSERT(c.step >= prev);
  CU_ASSERT_EQUAL_FATAL(c.n_params, (uint64_t)BIG);
  int ok = 1;
  for (size_t i = 0; i < BIG; i++)
    ok &= c.params[i] == (float)c.step && c.momentum[i] == (float)c.step;
  CU_ASSERT(ok);
  uint64_t g = c.step;
  cnn_ckpt_free(&c);
  return g;
}

// Kills savers at different moments; the checkpoint always loads whole.
static void test_sigkill_atomic(void) {
  const char *path = TDIR "/killed.ckpt";
  float *p = malloc(BIG * sizeof *p), *m = malloc(BIG * sizeof *m);
  CU_ASSERT_FATAL(p && m);
  // generation 1: the previous checkpoint
  for (size_t i = 0; i < BIG; i++)
    p[i] = m[i] = 1.0f;
  cnn_ckpt c;
  memset(&c, 0, sizeof c);
  snprintf(c.name, sizeof c.name, "big");
  c.n_params = BIG;
  c.n_state = 1;
  c.params = c.state = p;
  c.momentum = m;
  c.tensors = BIG_TABLE;
  c.n_tensors = 2;
  c.step = 1;
  char err[512] = "";
  // time one save, to spread the kills over several saves' phases
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CU_ASSERT_FATAL(cnn_ckpt_save(path, &c, err, sizeof err) == 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long save_us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
  // the child also fills 2M floats per generation
  save_us = save_us * 3 / 2 + 1000;
  uint64_t gen = 1, newer = 0;
  for (int it = 0; it < 12; it++) {
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
      saver(path, p, m);
    // from right away to about three saves in, at different fractions of one
    long us = it == 0 ? 0 : save_us * ((it * 7) % 12) / 4 + (it % 3) * save_us / 7;
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    uint64_t g = check_consistent(path, 1);
    newer += g > 1;
    gen = g;
  }
  (void)gen;
  // the kills landed at different moments: some saves completed in between
  CU_ASSERT(newer > 0);
  // stale temp files of killed savers do not stop a later save and load
  c.step = 999;
  for (size_t i = 0; i < BIG; i++)
    p[i] = m[i] = 999.0f;
  CU_ASSERT(cnn_ckpt_save(path, &c, err, sizeof err) == 0);
  CU_ASSERT_EQUAL(check_consistent(path, 999), 999u);
  // clean up the temp files the killed children left
  DIR *d = opendir(TDIR);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "killed.ckpt.tmp.", 16) == 0) {
      char t[512];
      snprintf(t, sizeof t, TDIR "/%s", e->d_name);
      unlink(t);
    }
  }
  if (d)
    closedir(d);
  free(p);
  free(m);
}

// The normalization recorded in the checkpoint must be the network's now;
// a checkpoint saved without one (has_norm 0) passes any.
static void test_normalization(void) {
  float p[10], s[3], m[10];
  cnn_ckpt c = sample(p, s, m, 10, 3), d;
  char err[512] = "";
  const char *path = TDIR "/norm.ckpt";
  CU_ASSERT_FATAL(cnn_ckpt_save(path, &c, err, sizeof err) == 0);
  CU_ASSERT_FATAL(cnn_ckpt_load(path, &d, err, sizeof err) == 0);
  CU_ASSERT(cnn_ckpt_check(&d, path, "mnist14k", c.shape_hash, 10, 3, 0.5, 0.3081, TABLE, NT, err,
                           sizeof err) == -1);
  CU_ASSERT_STRING_EQUAL(err, TDIR "/norm.ckpt: checkpoint was trained with normalize(mean = "
                              "0.1307, std = 0.3081), but 'mnist14k' now says normalize(mean = "
                              "0.5, std = 0.3081)");
  CU_ASSERT(cnn_ckpt_check(&d, path, "mnist14k", c.shape_hash, 10, 3, 0.1307, 0.25, TABLE, NT, err,
                           sizeof err) == -1);
  CU_ASSERT(strstr(err, "std = 0.3081), but") && strstr(err, "std = 0.25)"));
  CU_ASSERT(cnn_ckpt_check(&d, path, "mnist14k", c.shape_hash, 10, 3, 0, 1, TABLE, NT, err,
                           sizeof err) == -1);
  cnn_ckpt_free(&d);
  // unknown: saved without a normalization
  c.has_norm = 0;
  CU_ASSERT_FATAL(cnn_ckpt_save(path, &c, err, sizeof err) == 0);
  CU_ASSERT_FATAL(cnn_ckpt_load(path, &d, err, sizeof err) == 0);
  CU_ASSERT_EQUAL(d.has_norm, 0);
  CU_ASSERT(cnn_ckpt_check(&d, path, "mnist14k", c.shape_hash, 10, 3, 0.5, 0.5, TABLE, NT, err,
                           sizeof err) == 0);
  CU_ASSERT(d.params && memcmp(d.params, p, sizeof p) == 0);
  cnn_ckpt_free(&d);
  // a normalization that cannot be is not saved
  c.has_norm = 1;
  c.std = 0;
  CU_ASSERT(cnn_ckpt_save(path, &c, err, sizeof err) == -1);
  CU_ASSERT(strstr(err, path) == err && strstr(err, "std 0") != NULL);
  // ... nor loaded from a version 2 file (test_header_lies has version 3's)
  c.std = 0;
  static unsigned char buf[4096];
  size_t n = v2_image(&c, buf);
  spit(TDIR "/norm0.ckpt", buf, n);
  refuse(TDIR "/norm0.ckpt", "bad normalization in header: mean 0.1307, std 0");
}

// Format version 1 (no normalization in its 144-byte header) still loads,
// with the normalization unknown; the committed mnist14k checkpoint is one.
static void test_version1(void) {
  float p[10], s[3], m[10];
  cnn_ckpt c = sample(p, s, m, 10, 3), d;
  char err[512] = "";
  static unsigned char v2[4096], v1[4096];
  size_t n = v2_image(&c, v2);
  spit(TDIR "/v2.ckpt", v2, n);
  CU_ASSERT_FATAL(n == CNN_CKPT_V2_HEADER_BYTES + 4 * 23 + 4);
  CU_ASSERT_FATAL(load_checked(TDIR "/v2.ckpt", &d, err, sizeof err) == 0);
  CU_ASSERT(d.version == 2 && d.has_norm && d.mean == 0.1307 && d.step == 6566);
  CU_ASSERT(memcmp(d.params, p, sizeof p) == 0 && memcmp(d.momentum, m, sizeof m) == 0);
  cnn_ckpt_free(&d);
  CU_ASSERT_EQUAL(v2[8], 2);
  CU_ASSERT_EQUAL(v2[12], 3); // momentum and normalization
  // the same checkpoint as version 1 would have written it
  memcpy(v1, v2, CNN_CKPT_V1_HEADER_BYTES);
  memcpy(v1 + CNN_CKPT_V1_HEADER_BYTES, v2 + CNN_CKPT_V2_HEADER_BYTES, n - CNN_CKPT_V2_HEADER_BYTES);
  size_t n1 = n - (CNN_CKPT_V2_HEADER_BYTES - CNN_CKPT_V1_HEADER_BYTES);
  v1[8] = 1;
  v1[12] = 1;
  recrc(v1, n1);
  spit(TDIR "/v1.ckpt", v1, n1);
  CU_ASSERT_FATAL(cnn_ckpt_load(TDIR "/v1.ckpt", &d, err, sizeof err) == 0);
  CU_ASSERT_EQUAL(d.has_norm, 0);
  CU_ASSERT_EQUAL(d.epoch, 7u);
  CU_ASSERT_EQUAL(d.rng.inc, c.rng.inc);
  CU_ASSERT(memcmp(d.params, p, sizeof p) == 0);
  CU_ASSERT(memcmp(d.state, s, sizeof s) == 0);
  CU_ASSERT(d.momentum && memcmp(d.momentum, m, sizeof m) == 0);
  CU_ASSERT(cnn_ckpt_check(&d, TDIR "/v1.ckpt", "mnist14k", c.shape_hash, 10, 3, 0.5, 0.5, TABLE, NT,
                           err, sizeof err) == 0);
  cnn_ckpt_free(&d);
  // version 1 has no normalization flag
  v1[12] = 3;
  recrc(v1, n1);
  spit(TDIR "/v1flag.ckpt", v1, n1);
  refuse(TDIR "/v1flag.ckpt", "unknown flags 0x3");
  // a version 1 file cut to the v1 header, and a v2 file cut to it, are truncated
  v1[12] = 1;
  spit(TDIR "/v1cut.ckpt", v1, CNN_CKPT_V1_HEADER_BYTES + 8);
  refuse(TDIR "/v1cut.ckpt", "truncated");
  spit(TDIR "/v2cut.ckpt", v2, CNN_CKPT_V2_HEADER_BYTES + 2);
  refuse(TDIR "/v2cut.ckpt", "truncated");
  // the committed checkpoint
  CU_ASSERT_FATAL(cnn_ckpt_load("models/mnist14k.ckpt", &d, err, sizeof err) == 0);
  CU_ASSERT_STRING_EQUAL(d.name, "mnist14k");
  CU_ASSERT_EQUAL(d.has_norm, 0);
  CU_ASSERT_EQUAL(d.n_params, 14112u);
  CU_ASSERT_EQUAL(d.epoch, 20u);
  cnn_ckpt_free(&d);
}

// NaN or infinity anywhere is refused, naming the file, the array and the index.
static void test_nonfinite(void) {
  float p[10], s[3], m[10];
  struct {
    float *at;
    float v;
    const char *what;
  } cases[] = {
      {&p[4], NAN, "tensor 'layers.0.weight': value 4 of 8 is NaN"},
      {&p[9], INFINITY, "tensor 'layers.0.bias': value 1 of 2 is +Inf"},
      {&s[2], -INFINITY, "tensor 'layers.1.running_mean': value 2 of 3 is -Inf"},
      {&m[0], NAN, "tensor 'momentum_buffer.layers.0.weight': value 0 of 8 is NaN"},
  };
  char err[512] = "";
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    cnn_ckpt c = sample(p, s, m, 10, 3);
    *cases[k].at = cases[k].v;
    CU_ASSERT_FATAL(cnn_ckpt_save(TDIR "/nan.ckpt", &c, err, sizeof err) == 0);
    refuse(TDIR "/nan.ckpt", cases[k].what);
  }
  // a version 2 file says where in its flat arrays
  cnn_ckpt c = sample(p, s, m, 10, 3);
  p[4] = NAN;
  static unsigned char buf[4096];
  spit(TDIR "/nan.ckpt", buf, v2_image(&c, buf));
  refuse(TDIR "/nan.ckpt", "parameter 4 of 10 is NaN");
}

// The suite.
void register_tests(void) {
  CU_pSuite s = CU_add_suite("checkpoint", setup, NULL);
  CU_add_test(s, "round trip", test_round_trip);
  CU_add_test(s, "other network refused", test_other_network);
  CU_add_test(s, "damaged files refused", test_damaged);
  CU_add_test(s, "header lies refused, naming the tensor", test_header_lies);
  CU_add_test(s, "normalization recorded and checked", test_normalization);
  CU_add_test(s, "version 1 files still load", test_version1);
  CU_add_test(s, "NaN and Inf refused, naming the file", test_nonfinite);
  CU_add_test(s, "SIGKILL while saving", test_sigkill_atomic);
}
