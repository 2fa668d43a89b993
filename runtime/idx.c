// idx.c: IDX reader over zlib's gzread, which reads .gz and raw files alike.
#include "idx.h"

#include "error.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

// Opens path for gzread after refusing what is not a non-empty regular file.
static gzFile open_checked(const char *path, char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) != 0) {
    cnn_seterr(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  if (S_ISDIR(st.st_mode)) {
    cnn_seterr(err, errlen, "%s: is a directory, expected an IDX file", path);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    cnn_seterr(err, errlen, "%s: not a regular file", path);
    return NULL;
  }
  if (st.st_size == 0) {
    cnn_seterr(err, errlen, "%s: empty file", path);
    return NULL;
  }
  gzFile f = gzopen(path, "rb");
  if (!f) {
    cnn_seterr(err, errlen, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    return NULL;
  }
  gzbuffer(f, 1u << 17);
  return f;
}

// gzerror's message without the "path: " prefix zlib puts in front.
static const char *gzmsg(gzFile f, const char *path, int *code) {
  const char *m = gzerror(f, code);
  size_t pl = strlen(path);
  if (strncmp(m, path, pl) == 0 && m[pl] == ':' && m[pl + 1] == ' ')
    m += pl + 2;
  return m;
}

// Reads exactly len bytes; a short read is truncation, a gz error corruption.
static int read_exact(gzFile f, const char *path, void *buf, size_t len, const char *what,
                      char *err, size_t errlen) {
  unsigned char *p = buf;
  size_t got = 0;
  while (got < len) {
    size_t want = len - got;
    if (want > (1u << 30))
      want = 1u << 30;
    int r = gzread(f, p + got, (unsigned)want);
    if (r < 0) {
      int code;
      const char *msg = gzmsg(f, path, &code);
      cnn_seterr(err, errlen, "%s: corrupt gzip stream: %s", path, msg);
      return -1;
    }
    if (r == 0) {
      int code;
      const char *msg = gzmsg(f, path, &code);
      if (code != Z_OK && code != Z_BUF_ERROR)
        cnn_seterr(err, errlen, "%s: corrupt gzip stream: %s", path, msg);
      else if (code == Z_BUF_ERROR)
        cnn_seterr(err, errlen, "%s: truncated gzip stream while reading %s (%zu of %zu bytes)",
               path, what, got, len);
      else
        cnn_seterr(err, errlen, "%s: truncated: %s has %zu of %zu bytes", path, what, got, len);
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

// Checks the stream ends right after the data and closes cleanly.
static int expect_end(gzFile f, const char *path, char *err, size_t errlen) {
  unsigned char extra[64];
  int r = gzread(f, extra, sizeof extra);
  int code;
  const char *msg = gzmsg(f, path, &code);
  if (r < 0 || (code != Z_OK && code != Z_BUF_ERROR)) {
    cnn_seterr(err, errlen, "%s: corrupt gzip stream at end of data: %s", path, msg);
    return -1;
  }
  if (r > 0) {
    cnn_seterr(err, errlen, "%s: trailing garbage after the data the header declares", path);
    return -1;
  }
  if (code == Z_BUF_ERROR) {
    cnn_seterr(err, errlen, "%s: truncated gzip stream (no end of stream)", path);
    return -1;
  }
  return 0;
}

// Refuses a header that declares more data than the file can hold (a raw
// file exactly, gzip at deflate's best ratio, 1032:1) before it is allocated.
static int check_room(gzFile f, const char *path, uint64_t header, uint64_t len, const char *what,
                      char *err, size_t errlen) {
  struct stat st;
  if (stat(path, &st) != 0)
    return 0; // read_exact reports what is wrong
  uint64_t size = (uint64_t)st.st_size;
  uint64_t room = gzdirect(f) ? (size > header ? size - header : 0) : size * 1032;
  if (len <= room)
    return 0;
  if (gzdirect(f))
    cnn_seterr(err, errlen, "%s: truncated: %s has %llu of %llu bytes", path, what,
               (unsigned long long)room, (unsigned long long)len);
  else
    cnn_seterr(err, errlen, "%s: truncated: the header declares %llu bytes of %s, more than "
               "%llu compressed bytes can hold", path, (unsigned long long)len, what,
               (unsigned long long)size);
  return -1;
}

// Big-endian u32 of the IDX header.
static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

// Closes f; gzclose reports a bad gzip trailer (CRC/length) of the stream.
static int close_checked(gzFile f, const char *path, int ok, char *err, size_t errlen) {
  int rc = gzclose(f);
  if (ok && rc != Z_OK && rc != Z_BUF_ERROR) {
    cnn_seterr(err, errlen, "%s: error closing gzip stream (code %d)", path, rc);
    return -1;
  }
  return ok ? 0 : -1;
}

// Reads and validates an IDX image file of 3 or 4 dimensions (see idx.h).
int cnn_idx_load_images_c(const char *path, int *n, int *rows, int *cols, int *channels,
                          uint8_t **pixels, char *err, size_t errlen) {
  *pixels = NULL;
  *n = *rows = *cols = *channels = 0;
  gzFile f = open_checked(path, err, errlen);
  if (!f)
    return -1;
  unsigned char h[20];
  if (read_exact(f, path, h, 4, "header", err, errlen) != 0)
    return close_checked(f, path, 0, err, errlen);
  uint32_t magic = be32(h);
  if (magic != CNN_IDX_IMAGES_MAGIC && magic != CNN_IDX_IMAGES4_MAGIC) {
    cnn_seterr(err, errlen,
               "%s: bad magic 0x%08x, expected 0x%08x (images N x H x W) or 0x%08x "
               "(images N x H x W x C)",
               path, magic, CNN_IDX_IMAGES_MAGIC, CNN_IDX_IMAGES4_MAGIC);
    return close_checked(f, path, 0, err, errlen);
  }
  int four = magic == CNN_IDX_IMAGES4_MAGIC;
  if (read_exact(f, path, h + 4, four ? 16 : 12, "header", err, errlen) != 0)
    return close_checked(f, path, 0, err, errlen);
  uint32_t cnt = be32(h + 4), r = be32(h + 8), c = be32(h + 12), ch = four ? be32(h + 16) : 1;
  if (cnt == 0 || r == 0 || c == 0 || ch == 0 || r > 4096 || c > 4096 || ch > 4096 ||
      cnt > (uint32_t)INT_MAX || (uint64_t)cnt * r * c * ch > ((uint64_t)1 << 34)) {
    if (four)
      cnn_seterr(err, errlen, "%s: bad dimensions %u x %u x %u x %u in header", path, cnt, r, c,
                 ch);
    else
      cnn_seterr(err, errlen, "%s: bad dimensions %u x %u x %u in header", path, cnt, r, c);
    return close_checked(f, path, 0, err, errlen);
  }
  size_t len = (size_t)cnt * r * c * ch;
  if (check_room(f, path, four ? 20 : 16, len, "pixels", err, errlen) != 0)
    return close_checked(f, path, 0, err, errlen);
  uint8_t *px = malloc(len);
  if (!px) {
    cnn_seterr(err, errlen, "%s: out of memory for %zu bytes of pixels", path, len);
    return close_checked(f, path, 0, err, errlen);
  }
  if (read_exact(f, path, px, len, "pixels", err, errlen) != 0 ||
      expect_end(f, path, err, errlen) != 0) {
    free(px);
    return close_checked(f, path, 0, err, errlen);
  }
  if (close_checked(f, path, 1, err, errlen) != 0) {
    free(px);
    return -1;
  }
  *pixels = px;
  *n = (int)cnt;
  *rows = (int)r;
  *cols = (int)c;
  *channels = (int)ch;
  return 0;
}

// One-channel loader: callers that index pixels as [n][h][w] must not get more.
int cnn_idx_load_images(const char *path, int *n, int *rows, int *cols, uint8_t **pixels,
                        char *err, size_t errlen) {
  int ch;
  if (cnn_idx_load_images_c(path, n, rows, cols, &ch, pixels, err, errlen) != 0)
    return -1;
  if (ch != 1) {
    cnn_seterr(err, errlen, "%s: images are %dx%dx%d, this reader takes one channel", path,
               *rows, *cols, ch);
    free(*pixels);
    *pixels = NULL;
    *n = *rows = *cols = 0;
    return -1;
  }
  return 0;
}

// Reads and validates an IDX label file (see idx.h).
int cnn_idx_load_labels(const char *path, int classes, int *n, uint8_t **labels, char *err,
                        size_t errlen) {
  *labels = NULL;
  *n = 0;
  if (classes <= 0)
    classes = 10;
  gzFile f = open_checked(path, err, errlen);
  if (!f)
    return -1;
  unsigned char h[8];
  if (read_exact(f, path, h, sizeof h, "header", err, errlen) != 0)
    return close_checked(f, path, 0, err, errlen);
  uint32_t magic = be32(h), cnt = be32(h + 4);
  if (magic != CNN_IDX_LABELS_MAGIC) {
    cnn_seterr(err, errlen, "%s: bad magic 0x%08x, expected 0x%08x (labels)", path, magic,
           CNN_IDX_LABELS_MAGIC);
    return close_checked(f, path, 0, err, errlen);
  }
  if (cnt == 0 || cnt > (uint32_t)INT_MAX) {
    cnn_seterr(err, errlen, "%s: bad label count %u in header", path, cnt);
    return close_checked(f, path, 0, err, errlen);
  }
  if (check_room(f, path, sizeof h, cnt, "labels", err, errlen) != 0)
    return close_checked(f, path, 0, err, errlen);
  uint8_t *lb = malloc(cnt);
  if (!lb) {
    cnn_seterr(err, errlen, "%s: out of memory for %u labels", path, cnt);
    return close_checked(f, path, 0, err, errlen);
  }
  if (read_exact(f, path, lb, cnt, "labels", err, errlen) != 0 ||
      expect_end(f, path, err, errlen) != 0) {
    free(lb);
    return close_checked(f, path, 0, err, errlen);
  }
  if (close_checked(f, path, 1, err, errlen) != 0) {
    free(lb);
    return -1;
  }
  for (uint32_t i = 0; i < cnt; i++) {
    if (lb[i] >= classes) {
      cnn_seterr(err, errlen, "%s: label %u of item %u is out of range (expected < %d)", path,
             lb[i], i, classes);
      free(lb);
      return -1;
    }
  }
  *labels = lb;
  *n = (int)cnt;
  return 0;
}

// Prefers the raw file, which needs no inflating, over the .gz, and the
// usual 3-dimensional name over the 4-dimensional one.
int cnn_idx_path(const char *dir, const char *split, const char *kind, char *out,
                 size_t outlen) {
  static const char *const image_dims[2] = {"idx3", "idx4"}, *const label_dims[1] = {"idx1"};
  int images = strcmp(kind, "images") == 0;
  const char *const *dims = images ? image_dims : label_dims;
  struct stat st;
  for (int d = 0; d < (images ? 2 : 1); d++)
    for (int gz = 0; gz <= 1; gz++) {
      snprintf(out, outlen, "%s/%s-%s-%s-ubyte%s", dir, split, kind, dims[d], gz ? ".gz" : "");
      if (stat(out, &st) == 0)
        return 0;
    }
  snprintf(out, outlen, "%s/%s-%s-%s-ubyte.gz", dir, split, kind, dims[0]);
  return -1;
}

// Loads one split and checks images and labels pair up.
int cnn_idx_load(const char *dir, const char *split, int classes, cnn_idx *out, char *err,
                 size_t errlen) {
  memset(out, 0, sizeof *out);
  char ip[4096], lp[4096];
  if (cnn_idx_path(dir, split, "images", ip, sizeof ip) != 0) {
    cnn_seterr(err, errlen, "%s: no such file (nor without .gz)", ip);
    return -1;
  }
  if (cnn_idx_path(dir, split, "labels", lp, sizeof lp) != 0) {
    cnn_seterr(err, errlen, "%s: no such file (nor without .gz)", lp);
    return -1;
  }
  int ni = 0, nl = 0;
  if (cnn_idx_load_images_c(ip, &ni, &out->rows, &out->cols, &out->channels, &out->pixels, err,
                            errlen) != 0)
    return -1;
  out->path = strdup(ip);
  if (!out->path) {
    cnn_seterr(err, errlen, "%s: out of memory", ip);
    cnn_idx_free(out);
    return -1;
  }
  if (cnn_idx_load_labels(lp, classes, &nl, &out->labels, err, errlen) != 0) {
    cnn_idx_free(out);
    return -1;
  }
  if (ni != nl) {
    cnn_seterr(err, errlen, "%s: %d labels but %s has %d images", lp, nl, ip, ni);
    cnn_idx_free(out);
    return -1;
  }
  out->n = ni;
  return 0;
}

// Shape as the file gives it: HxW for one channel, HxWxC for more.
static void shape_str(char *out, size_t outlen, int h, int w, int c) {
  if (c == 1)
    snprintf(out, outlen, "%dx%d", h, w);
  else
    snprintf(out, outlen, "%dx%dx%d", h, w, c);
}

// Size first (the usual mistake), then channels.
int cnn_idx_check(const cnn_idx *d, const char *net, int c, int h, int w, char *err,
                  size_t errlen) {
  const char *path = d->path ? d->path : "images";
  char have[64];
  shape_str(have, sizeof have, d->rows, d->cols, d->channels);
  if (d->rows != h || d->cols != w) {
    cnn_seterr(err, errlen, "%s: images are %s, the network %s takes %dx%dx%d", path, have, net,
               h, w, c);
    return -1;
  }
  if (d->channels != c) {
    cnn_seterr(err, errlen,
               "%s: images have %d channel%s (%dx%dx%d), the network %s takes %dx%dx%d%s", path,
               d->channels, d->channels == 1 ? "" : "s", d->rows, d->cols, d->channels, net, h,
               w, c,
               d->channels == 1 ? " (an IDX file of N x H x W x C, magic 0x00000804, holds "
                                  "more channels)"
                                : "");
    return -1;
  }
  return 0;
}

// Copies the tail out, then shortens d: d's buffers stay as they were
// allocated, so cnn_idx_free works on both.
int cnn_idx_split(cnn_idx *d, int n_tail, cnn_idx *tail, char *err, size_t errlen) {
  memset(tail, 0, sizeof *tail);
  const char *path = d->path ? d->path : "images";
  if (n_tail <= 0 || n_tail >= d->n) {
    cnn_seterr(err, errlen, "%s: cannot hold out %d of its %d images (1 to %d)", path, n_tail,
               d->n, d->n - 1);
    return -1;
  }
  size_t img = (size_t)d->rows * d->cols * d->channels;
  int keep = d->n - n_tail;
  tail->pixels = malloc(img * (size_t)n_tail);
  tail->labels = malloc((size_t)n_tail);
  tail->path = d->path ? strdup(d->path) : NULL;
  if (!tail->pixels || !tail->labels || (d->path && !tail->path)) {
    cnn_idx_free(tail);
    cnn_seterr(err, errlen, "%s: out of memory holding out %d images", path, n_tail);
    return -1;
  }
  memcpy(tail->pixels, d->pixels + img * (size_t)keep, img * (size_t)n_tail);
  memcpy(tail->labels, d->labels + keep, (size_t)n_tail);
  tail->n = n_tail;
  tail->rows = d->rows;
  tail->cols = d->cols;
  tail->channels = d->channels;
  d->n = keep;
  return 0;
}

// Frees a loaded split.
void cnn_idx_free(cnn_idx *d) {
  free(d->pixels);
  free(d->labels);
  free(d->path);
  memset(d, 0, sizeof *d);
}
