// checkpoint.h: a network's weights and training state on disk. Versioned,
// little-endian, CRC32-checked, written atomically (temp file, fsync, rename),
// and tied to a network's name and shape hash so another net's file is refused.
// Used by the trainer to resume and by the compiler to bake in weights.
//
// Format v2, all integers little-endian:
//   "CNNCKPT\0"  u32 version  u32 flags (bit 0: momentum buffer present,
//                                      bit 1: normalization recorded)
//   char name[64] (NUL-padded)  u64 shape_hash  u64 n_params  u64 n_state
//   u32 epoch  u32 reserved(0)  u64 step  u64 sgd_steps  u64 rng.state  u64 rng.inc
//   f64 mean  f64 std     (the normalize(mean, std) the weights were trained with)
//   f32 params[n_params]  f32 state[n_state]  [f32 momentum[n_params]]
//   u32 crc32 of every byte before it
// Version 1 (still read) is the same without mean and std: a 144-byte header,
// normalization unknown. Every value read must be finite.
#ifndef CNN_CHECKPOINT_H
#define CNN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

#define CNN_CKPT_VERSION 2
#define CNN_CKPT_HEADER_BYTES 160      // version 2
#define CNN_CKPT_V1_HEADER_BYTES 144

typedef struct cnn_ckpt {
  char name[64];
  uint64_t shape_hash;
  uint64_t n_params, n_state;
  uint32_t epoch;              // epochs completed
  uint64_t step;               // global optimizer steps completed
  uint64_t sgd_steps;          // cnn_sgd.steps
  cnn_rng rng;                 // the generator to resume with
  int has_norm;                // mean/std known (0 for a version 1 file)
  double mean, std;            // x = (pixel / 255 - mean) / std in training
  float *params, *state;
  float *momentum;             // NULL: no momentum buffer
} cnn_ckpt;

// Writes c to path atomically: a crash leaves the old file or the new one.
int cnn_ckpt_save(const char *path, const cnn_ckpt *c, char *err, size_t errlen);
// Reads and verifies path into c (arrays malloc'ed; free with cnn_ckpt_free).
// On failure c is left empty.
int cnn_ckpt_load(const char *path, cnn_ckpt *c, char *err, size_t errlen);
// Checks a loaded checkpoint belongs to the network name/hash with these counts
// and, when it records one, was trained with the normalization mean/std the
// network has now (a version 1 checkpoint passes that part: unknown).
int cnn_ckpt_check(const cnn_ckpt *c, const char *path, const char *name, uint64_t hash,
                   size_t n_params, size_t n_state, double mean, double std, char *err,
                   size_t errlen);
// Frees the arrays of a loaded checkpoint; the struct is zeroed.
void cnn_ckpt_free(cnn_ckpt *c);

#endif
