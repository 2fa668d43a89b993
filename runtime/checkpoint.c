// checkpoint.c: the checkpoint formats of checkpoint.h. The file is built in
// memory and written in one go; loading reads it whole and verifies it before
// handing anything out. Version 3's JSON header is read and written by cJSON.
#include "checkpoint.h"

#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cjson/cJSON.h>

static const char CKPT_MAGIC[8] = {'C', 'N', 'N', 'C', 'K', 'P', 'T', '\0'};
// How version 3 headers hold their checksum (compact JSON, as written).
#define CRC_FIELD "\"crc32\":\""

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

// A little-endian IEEE-754 double (version 2 headers).
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
static uint32_t crc_more(uLong crc, const unsigned char *p, size_t len) {
  while (len > 0) {
    uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
    crc = crc32(crc, p, chunk);
    p += chunk;
    len -= chunk;
  }
  return (uint32_t)crc;
}

// The first place of needle[nl] in hay[hl], or NULL (memmem is not POSIX).
static unsigned char *find_bytes(const unsigned char *hay, size_t hl, const char *needle, size_t nl) {
  for (size_t i = 0; nl <= hl && i <= hl - nl; i++)
    if (memcmp(hay + i, needle, nl) == 0)
      return (unsigned char *)hay + i;
  return NULL;
}

// The CRC32 of len bytes.
static uint32_t crc_of(const unsigned char *p, size_t len) {
  return crc_more(crc32(0L, Z_NULL, 0), p, len);
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

// Writes len bytes to PATH.tmp.PID, fsyncs it and renames it over path.
static int write_atomic(const char *path, const unsigned char *buf, size_t len, char *err,
                        size_t errlen) {
  size_t tl = strlen(path) + 32;
  char *tmp = malloc(tl);
  if (!tmp) {
    cnn_seterr(err, errlen, "%s: out of memory", path);
    return -1;
  }
  snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    cnn_seterr(err, errlen, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    free(tmp);
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

// The values a tensor's shape holds (its size must say the same).
static uint64_t shape_count(const cnn_tensor *t) {
  uint64_t n = 1;
  for (int d = 0; d < t->ndim; d++)
    n *= (uint64_t)t->shape[d];
  return n;
}

// Refuses a tensor table that does not describe its blocks: a tensor outside
// its block, a shape that is not its size, a name too long to store.
static int check_table(const char *path, const cnn_ckpt *c, char *err, size_t errlen) {
  uint64_t covered[2] = {0, 0};
  for (size_t i = 0; i < c->n_tensors; i++) {
    const cnn_tensor *t = &c->tensors[i];
    uint64_t block = t->in_state ? c->n_state : c->n_params;
    if (!t->name || !t->name[0] || strlen(t->name) > 200 || t->ndim < 0 || t->ndim > 4 ||
        shape_count(t) != t->size || t->offset > block || t->size > block - t->offset) {
      cnn_seterr(err, errlen, "%s: tensor table entry %zu ('%s') does not fit the network's "
                 "%s block", path, i, t->name ? t->name : "", t->in_state ? "state" : "parameter");
      return -1;
    }
    covered[t->in_state ? 1 : 0] += t->size;
  }
  if (covered[0] != c->n_params || covered[1] != c->n_state) {
    cnn_seterr(err, errlen, "%s: the tensor table covers %llu of %llu params and %llu of %llu "
               "state values", path, (unsigned long long)covered[0],
               (unsigned long long)c->n_params, (unsigned long long)covered[1],
               (unsigned long long)c->n_state);
    return -1;
  }
  return 0;
}

// Adds one tensor's header entry and advances the data offset.
static int add_entry(cJSON *root, const char *name, const cnn_tensor *t, uint64_t *off) {
  cJSON *e = cJSON_AddObjectToObject(root, name);
  if (!e || !cJSON_AddStringToObject(e, "dtype", "F32"))
    return -1;
  cJSON *shape = cJSON_AddArrayToObject(e, "shape"), *offs = cJSON_AddArrayToObject(e, "data_offsets");
  if (!shape || !offs)
    return -1;
  for (int d = 0; d < t->ndim; d++)
    if (!cJSON_AddItemToArray(shape, cJSON_CreateNumber(t->shape[d])))
      return -1;
  if (!cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)*off)) ||
      !cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(*off + 4 * t->size))))
    return -1;
  *off += 4 * t->size;
  return 0;
}

// Adds a metadata string made with printf.
static int add_meta(cJSON *meta, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int add_meta(cJSON *meta, const char *key, const char *fmt, ...) {
  char v[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v, sizeof v, fmt, ap);
  va_end(ap);
  return cJSON_AddStringToObject(meta, key, v) ? 0 : -1;
}

// The JSON header of c, its crc32 digits zeros, or NULL out of memory.
static char *header_json(const cnn_ckpt *c) {
  cJSON *root = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(root, "__metadata__");
  int bad = !root || !meta;
  bad = bad || add_meta(meta, "format", "cnnc") || add_meta(meta, "version", "%d", CNN_CKPT_VERSION) ||
        add_meta(meta, "network", "%s", c->name) ||
        add_meta(meta, "shape_hash", "%016llx", (unsigned long long)c->shape_hash);
  if (!bad && c->has_norm)
    bad = add_meta(meta, "mean", "%.17g", c->mean) || add_meta(meta, "std", "%.17g", c->std);
  bad = bad || add_meta(meta, "epoch", "%u", (unsigned)c->epoch) ||
        add_meta(meta, "step", "%llu", (unsigned long long)c->step) ||
        add_meta(meta, "sgd_steps", "%llu", (unsigned long long)c->sgd_steps) ||
        add_meta(meta, "rng_state", "%llu", (unsigned long long)c->rng.state) ||
        add_meta(meta, "rng_inc", "%llu", (unsigned long long)c->rng.inc) ||
        add_meta(meta, "crc32", "00000000");
  uint64_t off = 0;
  for (size_t i = 0; !bad && i < c->n_tensors; i++)
    bad = add_entry(root, c->tensors[i].name, &c->tensors[i], &off);
  char name[256];
  for (size_t i = 0; !bad && c->momentum && i < c->n_tensors; i++)
    if (!c->tensors[i].in_state) {
      snprintf(name, sizeof name, "momentum_buffer.%s", c->tensors[i].name);
      bad = add_entry(root, name, &c->tensors[i], &off);
    }
  char *json = bad ? NULL : cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return json;
}

// Serializes c as version 3 and writes it atomically.
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
  if (c->n_tensors && !c->tensors) {
    cnn_seterr(err, errlen, "%s: checkpoint to save has no tensor table", path);
    return -1;
  }
  if (check_table(path, c, err, errlen))
    return -1;
  if (c->has_norm && (!isfinite(c->mean) || !(c->std > 0) || !isfinite(c->std))) {
    cnn_seterr(err, errlen, "%s: bad normalization to save: mean %g, std %g", path, c->mean,
               c->std);
    return -1;
  }
  // The data: every tensor in table order, then the momentum of the trained ones.
  size_t nm = c->momentum ? c->n_params : 0;
  size_t dlen = 4 * (c->n_params + c->n_state + nm);
  unsigned char *data = malloc(dlen ? dlen : 1);
  if (!data) {
    cnn_seterr(err, errlen, "%s: out of memory for a %zu-byte checkpoint", path, dlen);
    return -1;
  }
  unsigned char *p = data;
  for (size_t i = 0; i < c->n_tensors; i++) {
    const cnn_tensor *t = &c->tensors[i];
    p = put_floats(p, (t->in_state ? c->state : c->params) + t->offset, t->size);
  }
  for (size_t i = 0; c->momentum && i < c->n_tensors; i++)
    if (!c->tensors[i].in_state)
      p = put_floats(p, c->momentum + c->tensors[i].offset, c->tensors[i].size);
  char *json = header_json(c);
  size_t jl = json ? strlen(json) : 0, hl = (jl + 7) / 8 * 8;
  size_t len = 8 + hl + dlen;
  unsigned char *buf = json ? malloc(len) : NULL;
  if (!buf) {
    cnn_seterr(err, errlen, "%s: out of memory for a %zu-byte checkpoint", path, len);
    free(json);
    free(data);
    return -1;
  }
  put64(buf, hl);
  memcpy(buf + 8, json, jl);
  memset(buf + 8 + jl, ' ', hl - jl);
  memcpy(buf + 8 + hl, data, dlen);
  free(json);
  free(data);
  // The CRC covers the whole file with its own digits read as zeros.
  unsigned char *digits = find_bytes(buf + 8, hl, CRC_FIELD "00000000\"", sizeof CRC_FIELD - 1 + 9);
  if (!digits) {
    cnn_seterr(err, errlen, "%s: internal error: no crc32 in the header", path);
    free(buf);
    return -1;
  }
  char hex[9];
  snprintf(hex, sizeof hex, "%08x", (unsigned)crc_of(buf, len));
  memcpy(digits + sizeof CRC_FIELD - 1, hex, 8);
  int rc = write_atomic(path, buf, len, err, errlen);
  free(buf);
  return rc;
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
  // The smallest file is version 3's header length; the format decides the rest.
  if (st.st_size < 8) {
    cnn_seterr(err, errlen, "%s: truncated checkpoint: %lld bytes, not even a header length",
               path, (long long)st.st_size);
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

// A version 1 or 2 file (buf, len, after the magic): verifies version, sizes
// and CRC, then copies the arrays out.
static int load_legacy(const char *path, const unsigned char *buf, size_t len, cnn_ckpt *c,
                       char *err, size_t errlen) {
  int rc = -1;
  if (len < CNN_CKPT_V1_HEADER_BYTES + 4) {
    cnn_seterr(err, errlen, "%s: truncated checkpoint: %zu bytes, the header alone is %d", path,
               len, CNN_CKPT_V1_HEADER_BYTES + 4);
    return -1;
  }
  uint32_t version = get32(buf + 8), flags = get32(buf + 12);
  if (version != 1 && version != 2) {
    cnn_seterr(err, errlen,
               "%s: unknown checkpoint format version %u (this build reads 1 to %d)", path,
               version, CNN_CKPT_VERSION);
    return -1;
  }
  c->version = (int)version;
  size_t hb = version == 1 ? CNN_CKPT_V1_HEADER_BYTES : CNN_CKPT_V2_HEADER_BYTES;
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
  return rc;
}

// A metadata string of a version 3 header, or NULL when absent.
static const char *meta_str(const cJSON *meta, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

// A metadata value as a decimal u64 no larger than max; -1 when absent or not one.
static int meta_u64(const char *path, const cJSON *meta, const char *key, uint64_t max,
                    uint64_t *out, char *err, size_t errlen) {
  const char *s = meta_str(meta, key);
  uint64_t v = 0;
  int ok = s && *s && strlen(s) <= 20;
  for (const char *q = s; ok && *q; q++) {
    ok = *q >= '0' && *q <= '9' && v <= (UINT64_MAX - (uint64_t)(*q - '0')) / 10;
    v = v * 10 + (uint64_t)(*q - '0');
  }
  if (!ok || v > max) {
    cnn_seterr(err, errlen, "%s: metadata '%s' is %s%s%s, not a whole number up to %llu", path, key,
               s ? "'" : "missing", s ? s : "", s ? "'" : "", (unsigned long long)max);
    return -1;
  }
  *out = v;
  return 0;
}

// A metadata value of exactly `digits` hex digits.
static int meta_hex(const char *path, const cJSON *meta, const char *key, int digits,
                    uint64_t *out, char *err, size_t errlen) {
  const char *s = meta_str(meta, key);
  int ok = s && (int)strlen(s) == digits;
  uint64_t v = 0;
  for (int i = 0; ok && i < digits; i++) {
    char ch = s[i];
    int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
    ok = d >= 0;
    v = v << 4 | (uint64_t)(d & 15);
  }
  if (!ok) {
    cnn_seterr(err, errlen, "%s: metadata '%s' is %s%s%s, not %d lowercase hex digits", path, key,
               s ? "'" : "missing", s ? s : "", s ? "'" : "", digits);
    return -1;
  }
  *out = v;
  return 0;
}

// A metadata value as a finite double (mean, std).
static int meta_double(const char *path, const cJSON *meta, const char *key, double *out,
                       char *err, size_t errlen) {
  const char *s = meta_str(meta, key);
  char *end = NULL;
  double v = s ? strtod(s, &end) : 0;
  if (!s || !*s || *end || !isfinite(v)) {
    cnn_seterr(err, errlen, "%s: metadata '%s' is %s%s%s, not a finite number", path, key,
               s ? "'" : "missing", s ? s : "", s ? "'" : "");
    return -1;
  }
  *out = v;
  return 0;
}

// Reads the train state and identity of a version 3 header's metadata into c.
static int read_metadata(const char *path, const cJSON *meta, cnn_ckpt *c, uint32_t *crc,
                         char *err, size_t errlen) {
  if (!cJSON_IsObject(meta)) {
    cnn_seterr(err, errlen, "%s: header has no \"__metadata__\" object: not a cnnc checkpoint", path);
    return -1;
  }
  for (const cJSON *m = meta->child; m; m = m->next) {
    if (!cJSON_IsString(m)) {
      cnn_seterr(err, errlen, "%s: metadata '%s' is not a string", path, m->string);
      return -1;
    }
    for (const cJSON *o = meta->child; o != m; o = o->next)
      if (strcmp(o->string, m->string) == 0) {
        cnn_seterr(err, errlen, "%s: metadata '%s' appears twice", path, m->string);
        return -1;
      }
  }
  const char *format = meta_str(meta, "format"), *version = meta_str(meta, "version");
  if (!format || strcmp(format, "cnnc") != 0) {
    cnn_seterr(err, errlen, "%s: metadata format is %s%s%s, not \"cnnc\": not a cnnc checkpoint",
               path, format ? "\"" : "missing", format ? format : "", format ? "\"" : "");
    return -1;
  }
  if (!version || strcmp(version, "3") != 0) {
    cnn_seterr(err, errlen, "%s: unknown checkpoint format version '%s' (this build reads 1 to %d)",
               path, version ? version : "(missing)", CNN_CKPT_VERSION);
    return -1;
  }
  const char *name = meta_str(meta, "network");
  if (!name || !*name || strlen(name) >= sizeof c->name) {
    cnn_seterr(err, errlen, "%s: metadata 'network' is %s (a name of 1 to %zu characters)", path,
               name ? "too long or empty" : "missing", sizeof c->name - 1);
    return -1;
  }
  snprintf(c->name, sizeof c->name, "%s", name);
  uint64_t epoch, crc64;
  if (meta_hex(path, meta, "shape_hash", 16, &c->shape_hash, err, errlen) ||
      meta_u64(path, meta, "epoch", UINT32_MAX, &epoch, err, errlen) ||
      meta_u64(path, meta, "step", UINT64_MAX, &c->step, err, errlen) ||
      meta_u64(path, meta, "sgd_steps", UINT64_MAX, &c->sgd_steps, err, errlen) ||
      meta_u64(path, meta, "rng_state", UINT64_MAX, &c->rng.state, err, errlen) ||
      meta_u64(path, meta, "rng_inc", UINT64_MAX, &c->rng.inc, err, errlen) ||
      meta_hex(path, meta, "crc32", 8, &crc64, err, errlen))
    return -1;
  c->epoch = (uint32_t)epoch;
  *crc = (uint32_t)crc64;
  int has_mean = meta_str(meta, "mean") != NULL, has_std = meta_str(meta, "std") != NULL;
  if (has_mean != has_std) {
    cnn_seterr(err, errlen, "%s: metadata has '%s' without '%s'", path, has_mean ? "mean" : "std",
               has_mean ? "std" : "mean");
    return -1;
  }
  if (has_mean) {
    c->has_norm = 1;
    if (meta_double(path, meta, "mean", &c->mean, err, errlen) ||
        meta_double(path, meta, "std", &c->std, err, errlen))
      return -1;
    if (!(c->std > 0)) {
      cnn_seterr(err, errlen, "%s: bad normalization in header: mean %g, std %g", path, c->mean,
                 c->std);
      return -1;
    }
  }
  return 0;
}

// Bytes per value of a safetensors dtype, 0 for a name it does not have.
static int dtype_bytes(const char *d) {
  static const struct {
    const char *name;
    int bytes;
  } known[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"U64", 8},
               {"I32", 4}, {"U32", 4}, {"I16", 2}, {"U16", 2}, {"I8", 1},  {"U8", 1}, {"BOOL", 1}};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(d, known[i].name) == 0)
      return known[i].bytes;
  return 0;
}

// A JSON number that is a whole number in [0, max].
static int whole(const cJSON *v, double max, uint64_t *out) {
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > max ||
      v->valuedouble != floor(v->valuedouble))
    return 0;
  *out = (uint64_t)v->valuedouble;
  return 1;
}

// One tensor entry of the header into e: dtype, shape and offsets within a
// data of dlen bytes, the byte count agreeing with the shape.
static int read_entry(const char *path, const cJSON *t, size_t dlen, cnn_ckpt_entry *e,
                      char *err, size_t errlen) {
  const char *name = t->string;
  const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype"),
              *shape = cJSON_GetObjectItemCaseSensitive(t, "shape"),
              *offs = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
  if (!cJSON_IsObject(t) || !cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs)) {
    cnn_seterr(err, errlen, "%s: tensor '%s': header entry needs \"dtype\", \"shape\" and "
               "\"data_offsets\"", path, name);
    return -1;
  }
  int bytes = dtype_bytes(dtype->valuestring);
  if (!bytes) {
    cnn_seterr(err, errlen, "%s: tensor '%s' has unknown dtype '%.16s'", path, name,
               dtype->valuestring);
    return -1;
  }
  snprintf(e->dtype, sizeof e->dtype, "%s", dtype->valuestring);
  e->dtype_f32 = strcmp(e->dtype, "F32") == 0;
  int nd = cJSON_GetArraySize(shape);
  if (nd > 8) {
    cnn_seterr(err, errlen, "%s: tensor '%s' has %d dimensions (at most 8)", path, name, nd);
    return -1;
  }
  e->ndim = nd;
  uint64_t count = 1;
  int i = 0;
  for (const cJSON *d = shape->child; d; d = d->next, i++)
    if (!whole(d, 4294967296.0, &e->shape[i]) ||
        (e->shape[i] && count > UINT64_MAX / 16 / e->shape[i])) {
      cnn_seterr(err, errlen, "%s: tensor '%s': shape dimension %d is not a size", path, name, i);
      return -1;
    } else {
      count *= e->shape[i];
    }
  if (cJSON_GetArraySize(offs) != 2 || !whole(offs->child, 9007199254740992.0, &e->begin) ||
      !whole(offs->child->next, 9007199254740992.0, &e->end) || e->begin > e->end ||
      e->end > dlen) {
    cnn_seterr(err, errlen, "%s: tensor '%s': data_offsets are not [begin, end] within the %zu "
               "bytes of data (truncated, or the header lies)", path, name, dlen);
    return -1;
  }
  if (e->end - e->begin != count * (uint64_t)bytes) {
    cnn_seterr(err, errlen, "%s: tensor '%s': data_offsets hold %llu bytes, its shape and dtype "
               "%s need %llu", path, name, (unsigned long long)(e->end - e->begin), e->dtype,
               (unsigned long long)(count * (uint64_t)bytes));
    return -1;
  }
  e->name = strdup(name);
  if (!e->name) {
    cnn_seterr(err, errlen, "%s: out of memory", path);
    return -1;
  }
  return 0;
}

// qsort order of entries by their first byte.
static int by_begin(const void *a, const void *b) {
  const cnn_ckpt_entry *x = *(cnn_ckpt_entry *const *)a, *y = *(cnn_ckpt_entry *const *)b;
  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

// Tensors must tile the data: no overlap, no byte that no tensor claims.
static int check_tiling(const char *path, cnn_ckpt *c, char *err, size_t errlen) {
  cnn_ckpt_entry **order = malloc((c->n_entries ? c->n_entries : 1) * sizeof *order);
  if (!order) {
    cnn_seterr(err, errlen, "%s: out of memory", path);
    return -1;
  }
  for (size_t i = 0; i < c->n_entries; i++)
    order[i] = &c->entries[i];
  qsort(order, c->n_entries, sizeof *order, by_begin);
  uint64_t at = 0;
  int rc = 0;
  for (size_t i = 0; i < c->n_entries && rc == 0; i++) {
    const cnn_ckpt_entry *e = order[i];
    if (e->begin < at) {
      cnn_seterr(err, errlen, "%s: tensors '%s' and '%s' overlap in the data (bytes %llu to %llu)",
                 path, order[i - 1]->name, e->name, (unsigned long long)e->begin,
                 (unsigned long long)at);
      rc = -1;
    } else if (e->begin > at) {
      cnn_seterr(err, errlen, "%s: data bytes %llu to %llu belong to no tensor (before '%s')", path,
                 (unsigned long long)at, (unsigned long long)e->begin, e->name);
      rc = -1;
    }
    if (e->end > at)
      at = e->end;
  }
  if (rc == 0 && at != c->data_len) {
    cnn_seterr(err, errlen, "%s: data bytes %llu to %zu belong to no tensor", path,
               (unsigned long long)at, c->data_len);
    rc = -1;
  }
  free(order);
  return rc;
}

// The entries of the header root (all keys but "__metadata__") into c.
static int read_entries(const char *path, const cJSON *root, cnn_ckpt *c, char *err,
                        size_t errlen) {
  size_t n = 0;
  for (const cJSON *t = root->child; t; t = t->next)
    n += strcmp(t->string, "__metadata__") != 0;
  c->entries = calloc(n ? n : 1, sizeof *c->entries);
  if (!c->entries) {
    cnn_seterr(err, errlen, "%s: out of memory", path);
    return -1;
  }
  for (const cJSON *t = root->child; t; t = t->next) {
    if (strcmp(t->string, "__metadata__") == 0)
      continue;
    if (!t->string[0] || strlen(t->string) > 240) {
      cnn_seterr(err, errlen, "%s: tensor name '%.40s' is empty or longer than 240 bytes", path,
                 t->string);
      return -1;
    }
    for (size_t j = 0; j < c->n_entries; j++)
      if (strcmp(c->entries[j].name, t->string) == 0) {
        cnn_seterr(err, errlen, "%s: tensor '%s' appears twice in the header", path, t->string);
        return -1;
      }
    if (read_entry(path, t, c->data_len, &c->entries[c->n_entries], err, errlen))
      return -1;
    c->n_entries++;
  }
  return check_tiling(path, c, err, errlen);
}

// The float32 value at byte p of the data.
static float data_f32(const unsigned char *p) {
  uint32_t u = get32(p);
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// A version 3 file: the JSON header, its metadata and tensor entries, the
// tiling of the data, the CRC and the values. Fills c; the caller frees on error.
static int load_v3(const char *path, const unsigned char *buf, size_t len, cnn_ckpt *c, char *err,
                   size_t errlen) {
  uint64_t hl = get64(buf);
  if (hl > len - 8 && hl >= ((uint64_t)1 << 40)) {
    cnn_seterr(err, errlen, "%s: bad magic, not a cnnc checkpoint (its first 8 bytes are no "
               "header length)", path);
    return -1;
  }
  if (hl > len - 8) {
    cnn_seterr(err, errlen, "%s: truncated checkpoint: the header length says %llu bytes of JSON, "
               "the file has %zu after it%s", path, (unsigned long long)hl, len - 8,
               buf[0] == 'C' ? " (or this is not a cnnc checkpoint: bad magic)" : "");
    return -1;
  }
  if (hl < 2) {
    cnn_seterr(err, errlen, "%s: bad magic, not a cnnc checkpoint (no JSON header)", path);
    return -1;
  }
  const char *json = (const char *)buf + 8, *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)hl, &end, 0);
  if (!root) {
    cnn_seterr(err, errlen, "%s: header is not valid JSON (%zu bytes in)", path,
               end ? (size_t)(end - json) : (size_t)0);
    return -1;
  }
  int rc = -1;
  for (const char *q = end; q < json + hl; q++)
    if (*q != ' ') {
      cnn_seterr(err, errlen, "%s: header has bytes after its JSON object (%zu bytes in)", path,
                 (size_t)(q - json));
      goto out;
    }
  if (!cJSON_IsObject(root)) {
    cnn_seterr(err, errlen, "%s: header is not a JSON object", path);
    goto out;
  }
  uint32_t crc = 0;
  c->version = 3;
  c->data_len = len - 8 - (size_t)hl;
  if (read_metadata(path, cJSON_GetObjectItemCaseSensitive(root, "__metadata__"), c, &crc, err,
                    errlen) ||
      read_entries(path, root, c, err, errlen))
    goto out;
  const unsigned char *data = buf + 8 + hl;
  char field[32];
  snprintf(field, sizeof field, CRC_FIELD "%08x\"", (unsigned)crc);
  const unsigned char *digits = find_bytes(buf + 8, (size_t)hl, field, strlen(field));
  if (!digits) {
    cnn_seterr(err, errlen, "%s: metadata crc32 is not written as %s in the header", path, field);
    goto out;
  }
  // The CRC of the file with the digits as zeros, in three pieces.
  digits += sizeof CRC_FIELD - 1;
  uLong acc = crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(digits - buf));
  acc = crc32(acc, (const unsigned char *)"00000000", 8);
  uint32_t actual = crc_more(acc, digits + 8, len - (size_t)(digits + 8 - buf));
  if (actual != crc) {
    cnn_seterr(err, errlen, "%s: CRC mismatch (stored 0x%08x, computed 0x%08x): file is corrupt",
               path, crc, actual);
    goto out;
  }
  // A diverged run saves NaN; nothing built from it can work, so say where.
  for (size_t i = 0; i < c->n_entries; i++) {
    const cnn_ckpt_entry *e = &c->entries[i];
    for (uint64_t j = 0; e->dtype_f32 && j < (e->end - e->begin) / 4; j++) {
      float f = data_f32(data + e->begin + 4 * j);
      if (!isfinite(f)) {
        cnn_seterr(err, errlen, "%s: tensor '%s': value %llu of %llu is %s; the weights are "
                   "unusable (did the training diverge?)", path, e->name, (unsigned long long)j,
                   (unsigned long long)((e->end - e->begin) / 4),
                   isnan(f) ? "NaN" : f > 0 ? "+Inf" : "-Inf");
        goto out;
      }
    }
  }
  c->data = malloc(c->data_len ? c->data_len : 1);
  if (!c->data) {
    cnn_seterr(err, errlen, "%s: out of memory", path);
    goto out;
  }
  memcpy(c->data, data, c->data_len);
  rc = 0;
out:
  cJSON_Delete(root);
  return rc;
}

// Reads path whole and hands it to the reader of its format.
int cnn_ckpt_load(const char *path, cnn_ckpt *c, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  size_t len = 0;
  unsigned char *buf = slurp(path, &len, err, errlen);
  if (!buf)
    return -1;
  int rc = len >= 8 && memcmp(buf, CKPT_MAGIC, 8) == 0 ? load_legacy(path, buf, len, c, err, errlen)
                                                       : load_v3(path, buf, len, c, err, errlen);
  free(buf);
  if (rc)
    cnn_ckpt_free(c);
  return rc;
}

// The file's entry called name, or NULL.
static cnn_ckpt_entry *find_entry(cnn_ckpt *c, const char *name) {
  for (size_t i = 0; i < c->n_entries; i++)
    if (strcmp(c->entries[i].name, name) == 0)
      return &c->entries[i];
  return NULL;
}

// Shape text "[16, 1, 3, 3]" of a table tensor (t) or a file entry (e).
static void shape_text(char *buf, size_t n, const cnn_tensor *t, const cnn_ckpt_entry *e) {
  int nd = t ? t->ndim : e->ndim;
  size_t at = (size_t)snprintf(buf, n, "[");
  for (int d = 0; d < nd && at < n; d++)
    at += (size_t)snprintf(buf + at, n - at, "%s%llu", d ? ", " : "",
                           t ? (unsigned long long)t->shape[d] : (unsigned long long)e->shape[d]);
  if (at < n)
    snprintf(buf + at, n - at, "]");
}

// Copies the file's tensor called name (the table's t, or its momentum buffer)
// into dst; refuses a missing one, another dtype or another shape.
static int place(const char *path, cnn_ckpt *c, const char *name, const cnn_tensor *t, float *dst,
                 char *err, size_t errlen) {
  cnn_ckpt_entry *e = find_entry(c, name);
  char want[96], got[96];
  shape_text(want, sizeof want, t, NULL);
  if (!e) {
    cnn_seterr(err, errlen, "%s: tensor '%s' %s is missing", path, name, want);
    return -1;
  }
  if (!e->dtype_f32) {
    cnn_seterr(err, errlen, "%s: tensor '%s' is %s; cnnc checkpoints hold F32 (float32)", path,
               name, e->dtype);
    return -1;
  }
  int same = e->ndim == t->ndim;
  for (int d = 0; same && d < t->ndim; d++)
    same = e->shape[d] == (uint64_t)t->shape[d];
  if (!same) {
    shape_text(got, sizeof got, NULL, e);
    cnn_seterr(err, errlen, "%s: tensor '%s' has shape %s, the network's is %s", path, name, got,
               want);
    return -1;
  }
  get_floats(c->data + e->begin, dst, t->size);
  e->used = 1;
  return 0;
}

// Fills params, state (and momentum, when the file has it) from a version 3
// file's tensors by the network's table; every file tensor must be used.
static int place_all(const char *path, cnn_ckpt *c, size_t n_params, size_t n_state,
                     const cnn_tensor *tensors, size_t n_tensors, char *err, size_t errlen) {
  int has_m = 0;
  for (size_t i = 0; i < c->n_entries; i++)
    has_m |= strncmp(c->entries[i].name, "momentum_buffer.", 16) == 0;
  size_t covered[2] = {0, 0};
  for (size_t i = 0; i < n_tensors; i++)
    covered[tensors[i].in_state ? 1 : 0] += tensors[i].size;
  if (covered[0] != n_params || covered[1] != n_state) {
    cnn_seterr(err, errlen, "%s: the network's tensors hold %zu params and %zu state values, "
               "not %zu and %zu", path, covered[0], covered[1], n_params, n_state);
    return -1;
  }
  for (size_t i = 0; i < c->n_entries; i++)
    c->entries[i].used = 0;
  c->params = malloc((n_params ? n_params : 1) * sizeof(float));
  c->state = malloc((n_state ? n_state : 1) * sizeof(float));
  c->momentum = has_m ? malloc((n_params ? n_params : 1) * sizeof(float)) : NULL;
  if (!c->params || !c->state || (has_m && !c->momentum)) {
    cnn_seterr(err, errlen, "%s: out of memory", path);
    goto fail;
  }
  char name[256];
  for (size_t i = 0; i < n_tensors; i++) {
    const cnn_tensor *t = &tensors[i];
    size_t block = t->in_state ? n_state : n_params;
    if (t->offset > block || t->size > block - t->offset || shape_count(t) != t->size) {
      cnn_seterr(err, errlen, "%s: the network's tensor '%s' does not fit its block", path, t->name);
      goto fail;
    }
    if (place(path, c, t->name, t, (t->in_state ? c->state : c->params) + t->offset, err, errlen))
      goto fail;
    snprintf(name, sizeof name, "momentum_buffer.%s", t->name);
    if (has_m && !t->in_state && place(path, c, name, t, c->momentum + t->offset, err, errlen))
      goto fail;
  }
  for (size_t i = 0; i < c->n_entries; i++)
    if (!c->entries[i].used) {
      cnn_seterr(err, errlen, "%s: tensor '%s' is not one of the network's", path,
                 c->entries[i].name);
      goto fail;
    }
  c->n_params = n_params;
  c->n_state = n_state;
  c->tensors = tensors;
  c->n_tensors = n_tensors;
  return 0;
fail:
  // Still loaded, not placed: another table may be tried.
  free(c->params);
  free(c->state);
  free(c->momentum);
  c->params = c->state = c->momentum = NULL;
  return -1;
}

// A checkpoint of another network (or another shape of it) is refused.
int cnn_ckpt_check(cnn_ckpt *c, const char *path, const char *name, uint64_t hash,
                   size_t n_params, size_t n_state, double mean, double std,
                   const cnn_tensor *tensors, size_t n_tensors, char *err, size_t errlen) {
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
  if (c->version != 3 && (c->n_params != n_params || c->n_state != n_state)) {
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
  if (c->version == 3 && !c->params &&
      place_all(path, c, n_params, n_state, tensors, n_tensors, err, errlen))
    return -1;
  return 0;
}

// Frees a loaded checkpoint's arrays.
void cnn_ckpt_free(cnn_ckpt *c) {
  for (size_t i = 0; c->entries && i < c->n_entries; i++)
    free(c->entries[i].name);
  free(c->entries);
  free(c->data);
  free(c->params);
  free(c->state);
  free(c->momentum);
  memset(c, 0, sizeof *c);
}
