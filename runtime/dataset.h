// dataset.h: a split prepared once for training or testing: inputs
// normalized to float, an epoch's (shuffled) order, batches of B images with
// a short last one, and optional rotation/shift augmentation. No allocation
// after cnn_dataset_init.
#ifndef CNN_DATASET_H
#define CNN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "idx.h"
#include "rng.h"

typedef struct cnn_dataset {
  int n, c, h, w;              // images of c x h x w
  const uint8_t *pixels;       // [n][c][h][w]: the cnn_idx's own when c == 1, else planes
  const uint8_t *labels;       // borrowed from the cnn_idx (must outlive this)
  uint8_t *planes;             // c > 1: the idx's [n][h][w][c] bytes as [n][c][h][w]
  float *x;                    // n * c * h * w normalized: (p/255 - mean)/std
  float mean, std;
  float background;            // normalized value of pixel 0: fill of augmentation
  double rotate, shift;        // augmentation: degrees, pixels (0: none)
  uint32_t *order;             // this epoch's image order
} cnn_dataset;

// Prepares idx for batching (borrows its pixels and labels; a multi-channel
// idx is turned from channels last into channels first). One mean/std serves
// every channel. rotate/shift of 0 turn augmentation off.
int cnn_dataset_init(cnn_dataset *d, const cnn_idx *idx, double mean, double std,
                     double rotate, double shift, char *err, size_t errlen);
// Frees what init allocated.
void cnn_dataset_free(cnn_dataset *d);
// Orders the next epoch 0..n-1 (the test set's order).
void cnn_dataset_sequential(cnn_dataset *d);
// Orders the next epoch by a Fisher-Yates shuffle drawn from rng.
void cnn_dataset_shuffle(cnn_dataset *d, cnn_rng *rng);
// Batches per epoch, counting the short last one: ceil(n / batch).
int cnn_dataset_batches(const cnn_dataset *d, int batch);
// Copies batch number b (of size `batch`, the last one possibly shorter) into
// x [k][c][h][w] and y [k]; returns k. With rng non-NULL and augmentation on,
// each image is rotated/shifted by draws from rng first (one draw per image,
// applied to each of its channels).
int cnn_dataset_batch(cnn_dataset *d, int b, int batch, float *x, uint8_t *y, cnn_rng *rng);
// Writes one channel plane img [h][w] (raw pixels) rotated by deg degrees about its centre
// (bilinear) and shifted by (dx, dy) pixels, in pixel/255 units, into out
// [h][w]; outside the image is 0 (background).
void cnn_augment_image(const uint8_t *img, int h, int w, double deg, int dx, int dy, float *out);

#endif
