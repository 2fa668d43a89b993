// checkpoint.c: the checkpoint format of checkpoint.h. The file is built in
// memory and written in one go; loading reads it whole and verifies it before
// handing anything out.
#include "checkpoint.h"

#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char CKPT_MAGIC[8] = {'C', 'N', 'N', 'C', 'K', 'P', 'T', '\0'};

// Little-endian stores and loads, independent of the host's byte order.
static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
// 64-bit little-endian store.
static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
// 32-bit little-endian load.
static uint32_t get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}
// 64-bit little-endian load.
static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

// A double as its IEEE-754 bits, little-endian.
static void put_f64(unsigned char *p, double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  put64(p, u);
}
// The double stored by put_f64.
static double get_f64(const unsigned char *p) {
  uint64_t u = get64(p);
  double d;
  memcpy(&d, &u, 8);
  return d;
}

// n floats as float32 little-endian.
static unsigned char *put_floats(unsigned char *p, const float *f, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &f[i], 4);
    put32(p, u);
    p += 4;
  }
  return p;
}

// n float32 little-endian into floats.
static const unsigned char *get_floats(const unsigned char *p, float *f, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    uint32_t u = get32(p);
    memcpy(&f[i], &u, 4);
    p += 4;
  }
  return p;
}

// zlib's crc32 takes uInt lengths; feed large buffers in chunks.
static uint32_t crc_of(const unsigned char *p, size_t len) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (len > 0) {
    uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
    crc = crc32(crc, p, chunk);
    p += chunk;
    len -= chunk;
  }
  return (uint32_t)crc;
}

// Writes all of buf to fd, retrying short writes and EINTR.
static int write_all(int fd, const unsigned char *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

// fsyncs the directory holding path so the rename itself is durable.
static void sync_dir(const char *path) {
  char *copy = strdup(path);
  if (!copy)
    return;
  int fd = open(dirname(copy), O_RDONLY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(copy);
}

// Serializes, writes PATH.tmp.PID, fsyncs it and renames it over path.
int cnn_ckpt_save(const char *path, const cnn_ckpt *c, char *err, size_t errlen) {
  if (c->n_params > ((uint64_t)1 << 32) || c->n_state > ((uint64_t)1 << 32)) {
    cnn_seterr(err, errlen, "%s: too many values to save (%llu params, %llu state)", path,
           (unsigned long long)c->n_params, (unsigned long long)c->n_state);
    return -1;
  }
  if ((c->n_params && !c->params) || (c->n_state && !c->state)) {
    cnn_seterr(err, errlen, "%s: checkpoint to save has no parameter or state data", path);
    return -1;
  }
  if (c->has_norm && (!isfinite(c->mean) || !(c->std > 0) || !isfinite(c->std))) {
    cnn_seterr(err, errlen, "%s: bad normalization to save: mean %g, std %g", path, c->mean,
               c->std);
    return -1;
  }
  size_t nm = c->momentum ? c->n_params : 0;
  size_t len = CNN_CKPT_HEADER_BYTES + 4 * (c->n_params + c->n_state + nm) + 4;
  unsigned char *buf = calloc(len, 1);
  if (!buf) {
    cnn_seterr(err, errlen, "%s: out of memory for a %zu-byte checkpoint", path, len);
    return -1;
  }
  unsigned char *p = buf;
  memcpy(p, CKPT_MAGIC, 8);
  put32(p + 8, CNN_CKPT_VERSION);
  put32(p + 12, (c->momentum ? 1u : 0u) | (c->has_norm ? 2u : 0u));
  size_t nl = strnlen(c->name, sizeof c->name - 1);
  memcpy(p + 16, c->name, nl);   // rest stays 0: NUL-padded
  put64(p + 80, c->shape_hash);
  put64(p + 88, c->n_params);
  put64(p + 96, c->n_state);
  put32(p + 104, c->epoch);
  put32(p + 108, 0);
  put64(p + 112, c->step);
  put64(p + 120, c->sgd_steps);
  put64(p + 128, c->rng.state);
  put64(p + 136, c->rng.inc);
  put_f64(p + 144, c->has_norm ? c->mean : 0.0);
  put_f64(p + 152, c->has_norm ? c->std : 0.0);
  p += CNN_CKPT_HEADER_BYTES;
  p = put_floats(p, c->params, c->n_params);
  p = put_floats(p, c->state, c->n_state);
  if (c->momentum)
    p = put_floats(p, c->momentum, c->n_params);
  put32(p, crc_of(buf, (size_t)(p - buf)));

  size_t tl = strlen(path) + 32;
  char *tmp = malloc(tl);
  if (!tmp) {
    free(buf);
    cnn_seterr(err, errlen, "%s: out of memory", path);
    return -1;
  }
  snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    cnn_seterr(err, errlen, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    free(tmp);
    free(buf);
    return -1;
  }
  // The bytes must be on disk before the rename makes them the checkpoint.
  const char *fail = NULL;
  if (write_all(fd, buf, len) != 0)
    fail = "write";
  else if (fsync(fd) != 0)
    fail = "fsync";
  int saved = errno;
  if (close(fd) != 0 && !fail) {
    fail = "close";
    saved = errno;
  }
  if (!fail && rename(tmp, path) != 0) {
    fail = "rename";
    saved = errno;
  }
  free(buf);
  if (fail) {
    cnn_seterr(err, errlen, "%s: %s of %s failed: %s", path, fail, tmp, strerror(saved));
    unlink(tmp);
    free(tmp);
    return -1;
  }
  free(tmp);
  sync_dir(path);
  return 0;
}

// Reads the whole file after refusing what cannot be a checkpoint.
static unsigned char *slurp(const char *path, size_t *len, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    cnn_seterr(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    cnn_seterr(err, errlen, "%s: not a regular file", path);
    close(fd);
    return NULL;
  }
  // The smallest file is a version 1 header and its CRC; the version decides the rest.
  if ((uint64_t)st.st_size < CNN_CKPT_V1_HEADER_BYTES + 4) {
    cnn_seterr(err, errlen, "%s: truncated checkpoint: %lld bytes, the header alone is %d", path,
           (long long)st.st_size, CNN_CKPT_V1_HEADER_BYTES + 4);
    close(fd);
    return NULL;
  }
  size_t n = (size_t)st.st_size;
  unsigned char *buf = malloc(n);
  if (!buf) {
    cnn_seterr(err, errlen, "%s: out of memory for %zu bytes", path, n);
    close(fd);
    return NULL;
  }
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      cnn_seterr(err, errlen, "%s: read failed after %zu of %zu bytes%s%s", path, got, n,
             r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
      free(buf);
      close(fd);
      return NULL;
    }
    got += (size_t)r;
  }
  close(fd);
  *len = n;
  return buf;
}

// Reports the first value of f[n] that is NaN or infinite; 0 if there is none.
static int first_nonfinite(const char *path, const char *what, const float *f, uint64_t n,
                           char *err, size_t errlen) {
  for (uint64_t i = 0; i < n; i++)
    if (!isfinite(f[i])) {
      cnn_seterr(err, errlen,
                 "%s: %s %llu of %llu is %s; the weights are unusable (did the training "
                 "diverge?)",
                 path, what, (unsigned long long)i, (unsigned long long)n,
                 isnan(f[i]) ? "NaN" : f[i] > 0 ? "+Inf" : "-Inf");
      return -1;
    }
  return 0;
}

// Verifies magic, version, sizes and CRC, then copies the arrays out.
int cnn_ckpt_load(const char *path, cnn_ckpt *c, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  size_t len = 0;
  unsigned char *buf = slurp(path, &len, err, errlen);
  if (!buf)
    return -1;
  int rc = -1;
  if (memcmp(buf, CKPT_MAGIC, 8) != 0) {
    cnn_seterr(err, errlen, "%s: bad magic, not a cnnc checkpoint", path);
    goto out;
  }
  uint32_t version = get32(buf + 8), flags = get32(buf + 12);
  if (version != 1 && version != CNN_CKPT_VERSION) {
    cnn_seterr(err, errlen,
               "%s: unknown checkpoint format version %u (this build reads 1 to %d)", path,
               version, CNN_CKPT_VERSION);
    goto out;
  }
  size_t hb = version == 1 ? CNN_CKPT_V1_HEADER_BYTES : CNN_CKPT_HEADER_BYTES;
  if (flags & ~(version == 1 ? 1u : 3u)) {
    cnn_seterr(err, errlen, "%s: unknown flags 0x%x in header", path, flags);
    goto out;
  }
  uint64_t np = get64(buf + 88), ns = get64(buf + 96);
  if (np > ((uint64_t)1 << 32) || ns > ((uint64_t)1 << 32)) {
    cnn_seterr(err, errlen, "%s: implausible counts %llu params, %llu state", path,
           (unsigned long long)np, (unsigned long long)ns);
    goto out;
  }
  uint64_t nm = (flags & 1u) ? np : 0;
  uint64_t want = hb + 4 * (np + ns + nm) + 4;
  if (want != len) {
    cnn_seterr(err, errlen,
           "%s: %s: header declares %llu params, %llu state%s (%llu bytes) but the file has "
           "%zu bytes",
           path, len < want ? "truncated" : "size mismatch", (unsigned long long)np,
           (unsigned long long)ns, nm ? " and momentum" : "", (unsigned long long)want, len);
    goto out;
  }
  uint32_t stored = get32(buf + len - 4), actual = crc_of(buf, len - 4);
  if (stored != actual) {
    cnn_seterr(err, errlen, "%s: CRC mismatch (stored 0x%08x, computed 0x%08x): file is corrupt",
           path, stored, actual);
    goto out;
  }
  if (buf[16 + 63] != 0) {
    cnn_seterr(err, errlen, "%s: network name in header is not NUL-terminated", path);
    goto out;
  }
  memcpy(c->name, buf + 16, 64);
  c->shape_hash = get64(buf + 80);
  c->n_params = np;
  c->n_state = ns;
  c->epoch = get32(buf + 104);
  c->step = get64(buf + 112);
  c->sgd_steps = get64(buf + 120);
  c->rng.state = get64(buf + 128);
  c->rng.inc = get64(buf + 136);
  if (flags & 2u) {
    c->has_norm = 1;
    c->mean = get_f64(buf + 144);
    c->std = get_f64(buf + 152);
    if (!isfinite(c->mean) || !isfinite(c->std) || !(c->std > 0)) {
      cnn_seterr(err, errlen, "%s: bad normalization in header: mean %g, std %g", path, c->mean,
                 c->std);
      memset(c, 0, sizeof *c);
      goto out;
    }
  }
  c->params = malloc((np ? np : 1) * sizeof(float));
  c->state = malloc((ns ? ns : 1) * sizeof(float));
  c->momentum = nm ? malloc(nm * sizeof(float)) : NULL;
  if (!c->params || !c->state || (nm && !c->momentum)) {
    cnn_seterr(err, errlen, "%s: out of memory", path);
    cnn_ckpt_free(c);
    goto out;
  }
  const unsigned char *p = buf + hb;
  p = get_floats(p, c->params, np);
  p = get_floats(p, c->state, ns);
  if (nm)
    get_floats(p, c->momentum, nm);
  // A diverged run saves NaN; nothing built from it can work, so say where.
  if (first_nonfinite(path, "parameter", c->params, np, err, errlen) ||
      first_nonfinite(path, "state value (BatchNorm running statistic)", c->state, ns, err,
                      errlen) ||
      first_nonfinite(path, "momentum value", c->momentum, nm, err, errlen)) {
    cnn_ckpt_free(c);
    goto out;
  }
  rc = 0;
out:
  free(buf);
  return rc;
}

// A checkpoint of another network (or another shape of it) is refused.
int cnn_ckpt_check(const cnn_ckpt *c, const char *path, const char *name, uint64_t hash,
                   size_t n_params, size_t n_state, double mean, double std, char *err,
                   size_t errlen) {
  if (strcmp(c->name, name) != 0) {
    cnn_seterr(err, errlen, "%s: checkpoint is of network '%s', not '%s'", path, c->name, name);
    return -1;
  }
  if (c->shape_hash != hash) {
    cnn_seterr(err, errlen,
           "%s: checkpoint of '%s' has shape hash %016llx, the network has %016llx "
           "(its layers changed)",
           path, name, (unsigned long long)c->shape_hash, (unsigned long long)hash);
    return -1;
  }
  if (c->n_params != n_params || c->n_state != n_state) {
    cnn_seterr(err, errlen, "%s: checkpoint has %llu params and %llu state, the network %zu and %zu",
           path, (unsigned long long)c->n_params, (unsigned long long)c->n_state, n_params,
           n_state);
    return -1;
  }
  // The .cnn's values go through "%.17g" into the trainer, so equal means equal;
  // the tolerance only forgives a last-digit difference of another writer.
  if (c->has_norm && (fabs(c->mean - mean) > 1e-9 * fmax(fabs(c->mean), fabs(mean)) ||
                      fabs(c->std - std) > 1e-9 * fmax(fabs(c->std), fabs(std)))) {
    cnn_seterr(err, errlen,
               "%s: checkpoint was trained with normalize(mean = %.10g, std = %.10g), but "
               "'%s' now says normalize(mean = %.10g, std = %.10g)",
               path, c->mean, c->std, name, mean, std);
    return -1;
  }
  return 0;
}

// Frees a loaded checkpoint's arrays.
void cnn_ckpt_free(cnn_ckpt *c) {
  free(c->params);
  free(c->state);
  free(c->momentum);
  memset(c, 0, sizeof *c);
}
