// idx.h: MNIST-style IDX files, gzip or raw: images N x H x W (magic 2051,
// one channel) or N x H x W x C (magic 2052, channels last), labels (2049).
// Every loader checks the whole file: header, counts, exact data length, and
// that the gzip stream is intact, and names the file in its error message.
#ifndef CNN_IDX_H
#define CNN_IDX_H

#include <stddef.h>
#include <stdint.h>

#define CNN_IDX_IMAGES_MAGIC 0x00000803u   // ubyte, 3 dimensions: N x H x W
#define CNN_IDX_IMAGES4_MAGIC 0x00000804u  // ubyte, 4 dimensions: N x H x W x C
#define CNN_IDX_LABELS_MAGIC 0x00000801u

// One split: n images of rows x cols x channels bytes (channels last, as the
// file has them), image after image, and n labels.
typedef struct cnn_idx {
  int n, rows, cols, channels;
  uint8_t *pixels;             // n * rows * cols * channels bytes, [n][h][w][c]
  uint8_t *labels;             // n bytes, each < classes
  char *path;                  // the image file loaded (malloc'ed), for messages
} cnn_idx;

// Finds "DIR/SPLIT-KIND-idxD-ubyte" or the same name with .gz (KIND: "images",
// D 3 or 4, or "labels", D 1); writes the path of the one that exists, or of
// the idx3/idx1 .gz name when none does. Returns 0 if a file exists, else -1.
int cnn_idx_path(const char *dir, const char *split, const char *kind, char *out, size_t outlen);
// Loads an image file of 3 or 4 dimensions; *pixels is malloc'ed
// (n*rows*cols*channels bytes, channels last); *channels is 1 for 3 dimensions.
int cnn_idx_load_images_c(const char *path, int *n, int *rows, int *cols, int *channels,
                          uint8_t **pixels, char *err, size_t errlen);
// The same for callers that take one channel only: a file of more is refused.
int cnn_idx_load_images(const char *path, int *n, int *rows, int *cols, uint8_t **pixels,
                        char *err, size_t errlen);
// Loads a label file and checks every label is < classes (<= 0 means 10).
int cnn_idx_load_labels(const char *path, int classes, int *n, uint8_t **labels,
                        char *err, size_t errlen);
// Loads DIR's SPLIT ("train" or "t10k") images and labels and checks that
// their counts agree. On failure *out is left empty (safe to free).
int cnn_idx_load(const char *dir, const char *split, int classes, cnn_idx *out,
                 char *err, size_t errlen);
// Checks a loaded split against a network's input (c x h x w, CHW); the error
// names the image file and both shapes. net is the network's name.
int cnn_idx_check(const cnn_idx *d, const char *net, int c, int h, int w, char *err,
                  size_t errlen);
// Moves the last n_tail images of d (and their labels) into *tail, a split of
// its own (copies; d keeps its buffer and just counts n_tail fewer): a
// validation set carved from the training set. 0 < n_tail < d->n, else an
// error naming d's file and *tail is left empty.
int cnn_idx_split(cnn_idx *d, int n_tail, cnn_idx *tail, char *err, size_t errlen);
// Frees what a load allocated; the struct is zeroed.
void cnn_idx_free(cnn_idx *d);

#endif
