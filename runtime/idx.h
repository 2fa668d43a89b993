// idx.h: MNIST-style IDX files (images magic 2051, labels 2049), gzip or raw.
// Every loader checks the whole file: header, counts, exact data length, and
// that the gzip stream is intact, and names the file in its error message.
#ifndef CNN_IDX_H
#define CNN_IDX_H

#include <stddef.h>
#include <stdint.h>

#define CNN_IDX_IMAGES_MAGIC 0x00000803u
#define CNN_IDX_LABELS_MAGIC 0x00000801u

// One split: n images of rows x cols bytes, image after image, and n labels.
typedef struct cnn_idx {
  int n, rows, cols;
  uint8_t *pixels;             // n * rows * cols bytes
  uint8_t *labels;             // n bytes, each < classes
} cnn_idx;

// Finds "DIR/SPLIT-KIND-idx?-ubyte.gz" or the same name without .gz
// (KIND: "images" or "labels"); writes the path of the one that exists, or
// of the .gz name when neither does. Returns 0 if a file exists, else -1.
int cnn_idx_path(const char *dir, const char *split, const char *kind, char *out, size_t outlen);
// Loads an image file; *pixels is malloc'ed (n*rows*cols bytes).
int cnn_idx_load_images(const char *path, int *n, int *rows, int *cols, uint8_t **pixels,
                        char *err, size_t errlen);
// Loads a label file and checks every label is < classes (<= 0 means 10).
int cnn_idx_load_labels(const char *path, int classes, int *n, uint8_t **labels,
                        char *err, size_t errlen);
// Loads DIR's SPLIT ("train" or "t10k") images and labels and checks that
// their counts agree. On failure *out is left empty (safe to free).
int cnn_idx_load(const char *dir, const char *split, int classes, cnn_idx *out,
                 char *err, size_t errlen);
// Frees what a load allocated; the struct is zeroed.
void cnn_idx_free(cnn_idx *d);

#endif
