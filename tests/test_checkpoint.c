// test_checkpoint.c: round trips, refusal of other networks and of damaged
// files, and atomicity: a saver killed with SIGKILL at any moment leaves a
// checkpoint that loads, old or new.
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

// A small checkpoint with distinct values everywhere.
static cnn_ckpt sample(float *p, float *s, float *m, size_t np, size_t ns) {
  cnn_ckpt c;
  memset(&c, 0, sizeof c);
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

// Rewrites the trailing CRC32 of a checkpoint image of n bytes.
static void recrc(unsigned char *b, size_t n) {
  uLong crc = crc32(0L, b, (uInt)(n - 4));
  for (int k = 0; k < 4; k++)
    b[n - 4 + k] = (unsigned char)(crc >> (8 * k));
}

// Expects load to fail with a message naming path and containing what.
static void refuse(const char *path, const char *what) {
  cnn_ckpt c;
  char err[512] = "";
  CU_ASSERT_EQUAL(cnn_ckpt_load(path, &c, err, sizeof err), -1);
  CU_ASSERT_PTR_NULL(c.params);
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
    CU_ASSERT_FATAL(cnn_ckpt_load(TDIR "/rt.ckpt", &d, err, sizeof err) == 0);
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
    CU_ASSERT(cnn_ckpt_check(&d, TDIR "/rt.ckpt", "mnist14k", c.shape_hash, 10, 3, 0.1307,
                             0.3081, err, sizeof err) == 0);
    cnn_ckpt_free(&d);
    CU_ASSERT_PTR_NULL(d.params);
    // the file is exactly header + arrays + CRC
    struct stat st;
    stat(TDIR "/rt.ckpt", &st);
    CU_ASSERT_EQUAL((size_t)st.st_size, CNN_CKPT_HEADER_BYTES + 4 * (10 + 3 + (with_m ? 10 : 0)) + 4);
  }
  // no temp file is left behind by a successful save
  struct stat st;
  char tmp[256];
  snprintf(tmp, sizeof tmp, TDIR "/rt.ckpt.tmp.%ld", (long)getpid());
  CU_ASSERT(stat(tmp, &st) != 0);
}

// Another network's name, hash or counts are refused, naming the file.
static void test_other_network(void) {
  float p[10], s[3], m[10];
  cnn_ckpt c = sample(p, s, m, 10, 3), d;
  char err[512] = "";
  CU_ASSERT_FATAL(cnn_ckpt_save(TDIR "/net.ckpt", &c, err, sizeof err) == 0);
  CU_ASSERT_FATAL(cnn_ckpt_load(TDIR "/net.ckpt", &d, err, sizeof err) == 0);
  CU_ASSERT(cnn_ckpt_check(&d, TDIR "/net.ckpt", "mnist8k", c.shape_hash, 10, 3, 0.1307, 0.3081,
                           err, sizeof err) == -1);
  CU_ASSERT(strstr(err, TDIR "/net.ckpt") == err && strstr(err, "mnist8k") != NULL);
  CU_ASSERT(cnn_ckpt_check(&d, TDIR "/net.ckpt", "mnist14k", c.shape_hash ^ 1, 10, 3, 0.1307, 0.3081,
                           err, sizeof err) == -1);
  CU_ASSERT(strstr(err, "shape hash") != NULL);
  CU_ASSERT(cnn_ckpt_check(&d, TDIR "/net.ckpt", "mnist14k", c.shape_hash, 11, 3, 0.1307, 0.3081,
                           err, sizeof err) == -1);
  CU_ASSERT(cnn_ckpt_check(&d, TDIR "/net.ckpt", "mnist14k", c.shape_hash, 10, 4, 0.1307, 0.3081,
                           err, sizeof err) == -1);
  cnn_ckpt_free(&d);
}

// Every truncation, every single flipped bit of one byte, a wrong magic, an
// unknown version (with a valid CRC), extra bytes, a directory, no file.
static void test_damaged(void) {
  float p[10], s[3], m[10];
  cnn_ckpt c = sample(p, s, m, 10, 3);
  char err[512] = "";
  CU_ASSERT_FATAL(cnn_ckpt_save(TDIR "/good.ckpt", &c, err, sizeof err) == 0);
  static unsigned char buf[4096], bad[4096];
  size_t n = slurp(TDIR "/good.ckpt", buf, sizeof buf);
  CU_ASSERT_FATAL(n == CNN_CKPT_HEADER_BYTES + 4 * 23 + 4);
  for (size_t cut = 0; cut < n; cut += (cut < CNN_CKPT_HEADER_BYTES ? 37 : 1)) {
    spit(TDIR "/cut.ckpt", buf, cut);
    refuse(TDIR "/cut.ckpt", "truncated");
  }
  for (size_t i = 0; i < n; i++) {
    memcpy(bad, buf, n);
    bad[i] ^= (unsigned char)(1u << (i % 8));
    spit(TDIR "/flip.ckpt", bad, n);
    refuse(TDIR "/flip.ckpt", NULL);
  }
  // a flipped data byte is caught by the CRC
  memcpy(bad, buf, n);
  bad[CNN_CKPT_HEADER_BYTES + 5] ^= 0x10;
  spit(TDIR "/flip.ckpt", bad, n);
  refuse(TDIR "/flip.ckpt", "CRC mismatch");
  memcpy(bad, buf, n);
  bad[0] = 'X';
  spit(TDIR "/magic.ckpt", bad, n);
  refuse(TDIR "/magic.ckpt", "bad magic");
  // version 3 with a recomputed CRC: refused for the version, not the CRC
  memcpy(bad, buf, n);
  bad[8] = 3;
  recrc(bad, n);
  spit(TDIR "/version.ckpt", bad, n);
  refuse(TDIR "/version.ckpt", "unknown checkpoint format version 3 (this build reads 1 to 2)");
  memcpy(bad, buf, n);
  memset(bad + n, 0, 8);
  spit(TDIR "/long.ckpt", bad, n + 8);
  refuse(TDIR "/long.ckpt", "size mismatch");
  mkdir(TDIR "/dir.ckpt", 0755);
  refuse(TDIR "/dir.ckpt", "not a regular file");
  refuse(TDIR "/missing.ckpt", "No such file");
  // the good one still loads
  cnn_ckpt d;
  CU_ASSERT(cnn_ckpt_load(TDIR "/good.ckpt", &d, err, sizeof err) == 0);
  cnn_ckpt_free(&d);
}

enum { BIG = 1 << 20 }; // 1M params + momentum: an 8 MB file, slow to write

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
  CU_ASSERT(cnn_ckpt_check(&d, path, "mnist14k", c.shape_hash, 10, 3, 0.5, 0.3081, err,
                           sizeof err) == -1);
  CU_ASSERT_STRING_EQUAL(err, TDIR "/norm.ckpt: checkpoint was trained with normalize(mean = "
                              "0.1307, std = 0.3081), but 'mnist14k' now says normalize(mean = "
                              "0.5, std = 0.3081)");
  CU_ASSERT(cnn_ckpt_check(&d, path, "mnist14k", c.shape_hash, 10, 3, 0.1307, 0.25, err,
                           sizeof err) == -1);
  CU_ASSERT(strstr(err, "std = 0.3081), but") && strstr(err, "std = 0.25)"));
  CU_ASSERT(cnn_ckpt_check(&d, path, "mnist14k", c.shape_hash, 10, 3, 0, 1, err, sizeof err) ==
            -1);
  cnn_ckpt_free(&d);
  // unknown: saved without a normalization
  c.has_norm = 0;
  CU_ASSERT_FATAL(cnn_ckpt_save(path, &c, err, sizeof err) == 0);
  CU_ASSERT_FATAL(cnn_ckpt_load(path, &d, err, sizeof err) == 0);
  CU_ASSERT_EQUAL(d.has_norm, 0);
  CU_ASSERT(cnn_ckpt_check(&d, path, "mnist14k", c.shape_hash, 10, 3, 0.5, 0.5, err,
                           sizeof err) == 0);
  cnn_ckpt_free(&d);
  // a normalization that cannot be is not saved
  c.has_norm = 1;
  c.std = 0;
  CU_ASSERT(cnn_ckpt_save(path, &c, err, sizeof err) == -1);
  CU_ASSERT(strstr(err, path) == err && strstr(err, "std 0") != NULL);
  // ... nor loaded (std 0 written into a good file, CRC redone)
  c.std = 0.3081;
  CU_ASSERT_FATAL(cnn_ckpt_save(path, &c, err, sizeof err) == 0);
  static unsigned char buf[4096];
  size_t n = slurp(path, buf, sizeof buf);
  memset(buf + 152, 0, 8);
  recrc(buf, n);
  spit(TDIR "/norm0.ckpt", buf, n);
  refuse(TDIR "/norm0.ckpt", "bad normalization in header: mean 0.1307, std 0");
}

// Format version 1 (no normalization in its 144-byte header) still loads,
// with the normalization unknown; the committed mnist14k checkpoint is one.
static void test_version1(void) {
  float p[10], s[3], m[10];
  cnn_ckpt c = sample(p, s, m, 10, 3), d;
  char err[512] = "";
  CU_ASSERT_FATAL(cnn_ckpt_save(TDIR "/v2.ckpt", &c, err, sizeof err) == 0);
  static unsigned char v2[4096], v1[4096];
  size_t n = slurp(TDIR "/v2.ckpt", v2, sizeof v2);
  CU_ASSERT_FATAL(n == CNN_CKPT_HEADER_BYTES + 4 * 23 + 4);
  CU_ASSERT_EQUAL(v2[8], 2);
  CU_ASSERT_EQUAL(v2[12], 3); // momentum and normalization
  // the same checkpoint as version 1 would have written it
  memcpy(v1, v2, CNN_CKPT_V1_HEADER_BYTES);
  memcpy(v1 + CNN_CKPT_V1_HEADER_BYTES, v2 + CNN_CKPT_HEADER_BYTES, n - CNN_CKPT_HEADER_BYTES);
  size_t n1 = n - (CNN_CKPT_HEADER_BYTES - CNN_CKPT_V1_HEADER_BYTES);
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
  CU_ASSERT(cnn_ckpt_check(&d, TDIR "/v1.ckpt", "mnist14k", c.shape_hash, 10, 3, 0.5, 0.5, err,
                           sizeof err) == 0);
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
  spit(TDIR "/v2cut.ckpt", v2, CNN_CKPT_HEADER_BYTES + 2);
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
      {&p[4], NAN, "parameter 4 of 10 is NaN"},
      {&p[9], INFINITY, "parameter 9 of 10 is +Inf"},
      {&s[2], -INFINITY, "state value (BatchNorm running statistic) 2 of 3 is -Inf"},
      {&m[0], NAN, "momentum value 0 of 10 is NaN"},
  };
  char err[512] = "";
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    cnn_ckpt c = sample(p, s, m, 10, 3);
    *cases[k].at = cases[k].v;
    CU_ASSERT_FATAL(cnn_ckpt_save(TDIR "/nan.ckpt", &c, err, sizeof err) == 0);
    refuse(TDIR "/nan.ckpt", cases[k].what);
  }
}

// The suite.
void register_tests(void) {
  CU_pSuite s = CU_add_suite("checkpoint", setup, NULL);
  CU_add_test(s, "round trip", test_round_trip);
  CU_add_test(s, "other network refused", test_other_network);
  CU_add_test(s, "damaged files refused", test_damaged);
  CU_add_test(s, "normalization recorded and checked", test_normalization);
  CU_add_test(s, "version 1 files still load", test_version1);
  CU_add_test(s, "NaN and Inf refused, naming the file", test_nonfinite);
  CU_add_test(s, "SIGKILL while saving", test_sigkill_atomic);
}
