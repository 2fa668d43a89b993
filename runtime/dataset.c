// dataset.c: batches for training and testing, prepared once.
#include "dataset.h"

#include "error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#define CNN_OMP_FOR _Pragma("omp parallel for schedule(static)")
#else
#define CNN_OMP_FOR
#endif

// Normalizes every image once so an unaugmented batch is a plain copy.
int cnn_dataset_init(cnn_dataset *d, const cnn_idx *idx, double mean, double std,
                     double rotate, double shift, char *err, size_t errlen) {
  memset(d, 0, sizeof *d);
  if (!idx || idx->n <= 0 || !idx->pixels || !idx->labels) {
    cnn_seterr(err, errlen, "dataset: no images loaded");
    return -1;
  }
  if (!(std > 0) || !isfinite(mean)) {
    cnn_seterr(err, errlen, "dataset: bad normalization mean %g std %g (std must be > 0)", mean,
           std);
    return -1;
  }
  if (rotate < 0 || shift < 0 || !isfinite(rotate) || !isfinite(shift)) {
    cnn_seterr(err, errlen, "dataset: bad augmentation rotate %g shift %g (must be >= 0)", rotate,
           shift);
    return -1;
  }
  if (idx->rows <= 0 || idx->cols <= 0 || idx->channels <= 0) {
    cnn_seterr(err, errlen, "%s: bad image shape %dx%dx%d", idx->path ? idx->path : "dataset",
               idx->rows, idx->cols, idx->channels);
    return -1;
  }
  d->n = idx->n;
  d->c = idx->channels;
  d->h = idx->rows;
  d->w = idx->cols;
  d->pixels = idx->pixels;
  d->labels = idx->labels;
  d->mean = (float)mean;
  d->std = (float)std;
  d->rotate = rotate;
  d->shift = shift;
  size_t plane = (size_t)d->h * d->w, img = plane * d->c, total = img * (size_t)d->n;
  d->x = malloc(total * sizeof *d->x);
  d->order = malloc((size_t)d->n * sizeof *d->order);
  if (d->c > 1)
    d->planes = malloc(total);
  if (!d->x || !d->order || (d->c > 1 && !d->planes)) {
    cnn_dataset_free(d);
    cnn_seterr(err, errlen, "dataset: out of memory for %d images", idx->n);
    return -1;
  }
  // The file has channels last; the network and the augmentation take planes.
  if (d->c > 1) {
    for (size_t i = 0; i < (size_t)d->n; i++)
      for (size_t p = 0; p < plane; p++)
        for (size_t ch = 0; ch < (size_t)d->c; ch++)
          d->planes[i * img + ch * plane + p] = idx->pixels[(i * plane + p) * d->c + ch];
    d->pixels = d->planes;
  }
  // Same expression as the batches' so augmented and plain values agree.
  for (size_t i = 0; i < total; i++)
    d->x[i] = ((float)d->pixels[i] / 255.0f - d->mean) / d->std;
  d->background = (0.0f - d->mean) / d->std;
  cnn_dataset_sequential(d);
  return 0;
}

// Frees the normalized copy, the planes and the order.
void cnn_dataset_free(cnn_dataset *d) {
  free(d->x);
  free(d->planes);
  free(d->order);
  memset(d, 0, sizeof *d);
}

// Identity order, for evaluation.
void cnn_dataset_sequential(cnn_dataset *d) {
  for (int i = 0; i < d->n; i++)
    d->order[i] = (uint32_t)i;
}

// Fisher-Yates from the identity, so an epoch's order depends only on rng.
void cnn_dataset_shuffle(cnn_dataset *d, cnn_rng *rng) {
  cnn_dataset_sequential(d);
  for (uint32_t i = (uint32_t)d->n - 1; i > 0; i--) {
    uint32_t j = cnn_rng_below(rng, i + 1);
    uint32_t t = d->order[i];
    d->order[i] = d->order[j];
    d->order[j] = t;
  }
}

// ceil(n / batch).
int cnn_dataset_batches(const cnn_dataset *d, int batch) {
  if (batch <= 0)
    return 0;
  return (d->n + batch - 1) / batch;
}

// Pixel (r, c) in pixel/255 units, 0 outside the image.
static float px(const uint8_t *img, int h, int w, int r, int c) {
  if (r < 0 || r >= h || c < 0 || c >= w)
    return 0.0f;
  return (float)img[r * w + c] / 255.0f;
}

// Inverse mapping: each output pixel samples the source at the point that
// rotation + shift moved onto it, so there are no holes.
void cnn_augment_image(const uint8_t *img, int h, int w, double deg, int dx, int dy,
                       float *out) {
  const double pi = 3.14159265358979323846;
  double a = deg * pi / 180.0, ca = cos(a), sa = sin(a);
  double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0;
  for (int r = 0; r < h; r++) {
    for (int c = 0; c < w; c++) {
      // undo the shift, then the rotation (counter-clockwise for deg > 0)
      double y = r - dy - cy, x = c - dx - cx;
      double sx = ca * x - sa * y + cx, sy = sa * x + ca * y + cy;
      double fy = floor(sy), fx = floor(sx);
      int r0 = (int)fy, c0 = (int)fx;
      float ty = (float)(sy - fy), tx = (float)(sx - fx);
      if (r0 < -1 || r0 >= h || c0 < -1 || c0 >= w) {
        out[r * w + c] = 0.0f;
        continue;
      }
      float v00 = px(img, h, w, r0, c0), v01 = px(img, h, w, r0, c0 + 1);
      float v10 = px(img, h, w, r0 + 1, c0), v11 = px(img, h, w, r0 + 1, c0 + 1);
      out[r * w + c] = (1 - ty) * ((1 - tx) * v00 + tx * v01) + ty * ((1 - tx) * v10 + tx * v11);
    }
  }
}

// Copies (and, when asked, augments) batch b into x and y. The random draws
// are made in image order on the calling thread, so the batch is the same
// bits whatever the thread count; the warps then run in parallel (OpenMP).
int cnn_dataset_batch(cnn_dataset *d, int b, int batch, float *x, uint8_t *y, cnn_rng *rng) {
  if (batch <= 0 || b < 0)
    return 0;
  long start = (long)b * batch;
  if (start >= d->n)
    return 0;
  int k = d->n - start < batch ? (int)(d->n - start) : batch;
  size_t plane = (size_t)d->h * d->w, img = plane * d->c;
  int augment = rng && (d->rotate > 0 || d->shift > 0);
  int ishift = (int)floor(d->shift);
  if (y)
    for (int i = 0; i < k; i++)
      y[i] = d->labels[d->order[start + i]];
  if (!augment) {
    for (int i = 0; i < k; i++)
      memcpy(x + (size_t)i * img, d->x + (size_t)d->order[start + i] * img, img * sizeof *x);
    return k;
  }
  enum { CHUNK = 64 }; // draws held at once, so no allocation per batch
  for (int i0 = 0; i0 < k; i0 += CHUNK) {
    int n = k - i0 < CHUNK ? k - i0 : CHUNK;
    double deg[CHUNK];
    int sx[CHUNK], sy[CHUNK];
    for (int i = 0; i < n; i++) {
      deg[i] = d->rotate > 0 ? (2.0 * cnn_rng_uniform(rng) - 1.0) * d->rotate : 0.0;
      sx[i] = ishift > 0 ? (int)cnn_rng_below(rng, 2u * ishift + 1) - ishift : 0;
      sy[i] = ishift > 0 ? (int)cnn_rng_below(rng, 2u * ishift + 1) - ishift : 0;
    }
    CNN_OMP_FOR
    for (int i = 0; i < n; i++) {
      float *dst = x + (size_t)(i0 + i) * img;
      const uint8_t *src = d->pixels + (size_t)d->order[start + i0 + i] * img;
      for (int ch = 0; ch < d->c; ch++)
        cnn_augment_image(src + ch * plane, d->h, d->w, deg[i], sx[i], sy[i], dst + ch * plane);
      for (size_t j = 0; j < img; j++)
        dst[j] = (dst[j] - d->mean) / d->std;
    }
  }
  return k;
}
