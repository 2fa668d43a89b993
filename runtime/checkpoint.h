// checkpoint.h: a network's weights and training state on disk. Written
// atomically (temp file, fsync, rename), CRC32-checked, and tied to a
// network's name, shape hash and tensor names, so another net's file is refused.
// Used by the trainer to resume and by the compiler to bake in weights.
//
// Format v3 (what cnn_ckpt_save writes) is the safetensors layout:
//   u64 N (little-endian)  the length of the JSON header
//   N bytes of JSON        padded with spaces so the data starts at a multiple of 8
//   the data               raw little-endian tensors, offsets relative to here
// The header is one object. "__metadata__" maps names to strings:
//   "format": "cnnc", "version": "3", "network": NAME, "shape_hash": 16 hex
//   digits, "mean" and "std" (the normalize() trained with, %.17g; both absent
//   if unknown), "epoch", "step", "sgd_steps", "rng_state", "rng_inc" (decimal
//   u64: the state an exact resume needs), "crc32": 8 hex digits, the CRC32
//   of the data bytes.
// Every other key is a tensor: {"dtype": "F32", "shape": [..], "data_offsets":
// [begin, end]} in bytes, end - begin = 4 x the product of the shape. The
// names are the state_dict keys of the PyTorch module `cnnc export` writes
// ("layers.0.weight", "layers.1.running_mean", ...); SGD's momentum buffer of
// tensor T, when there is one, is "momentum_buffer.T". Tensors must not
// overlap nor leave the data. cnn_net.tensors (from the generated code) is the
// table of names, shapes and places in the flat params and state blocks.
//
// Versions 1 and 2 (still read; the committed models/*.ckpt are version 1)
// were a fixed binary header and the flat arrays, all little-endian:
//   "CNNCKPT\0"  u32 version  u32 flags (bit 0: momentum buffer present,
//                                      bit 1: normalization recorded, v2)
//   char name[64] (NUL-padded)  u64 shape_hash  u64 n_params  u64 n_state
//   u32 epoch  u32 reserved(0)  u64 step  u64 sgd_steps  u64 rng.state  u64 rng.inc
//   f64 mean  f64 std     (version 2 only)
//   f32 params[n_params]  f32 state[n_state]  [f32 momentum[n_params]]
//   u32 crc32 of every byte before it
// Every value read must be finite.
#ifndef CNN_CHECKPOINT_H
#define CNN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "cnn_net.h"
#include "rng.h"

#define CNN_CKPT_VERSION 3
#define CNN_CKPT_V2_HEADER_BYTES 160
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
  int version;                 // of the file loaded
  // The network's tensor table: given to save (required), and set by
  // cnn_ckpt_check when it places a version 3 file's tensors.
  const cnn_tensor *tensors;
  size_t n_tensors;
  // A version 3 file between load and check: its tensors as the header
  // describes them, and its data (params, state and momentum are NULL).
  struct cnn_ckpt_entry *entries;
  size_t n_entries;
  unsigned char *data;
  size_t data_len;
} cnn_ckpt;

// One tensor of a version 3 file's header.
typedef struct cnn_ckpt_entry {
  char *name;
  int ndim;
  uint64_t shape[8];
  uint64_t begin, end;         // byte offsets in the data
  int dtype_f32;               // its dtype is "F32" (cnnc reads no other)
  char dtype[16];
  int used;                    // placed by cnn_ckpt_check
} cnn_ckpt_entry;

// Writes c to path atomically: a crash leaves the old file or the new one.
int cnn_ckpt_save(const char *path, const cnn_ckpt *c, char *err, size_t errlen);
// Reads and verifies path into c (arrays malloc'ed; free with cnn_ckpt_free):
// the whole layout of a version 3 file (JSON, offsets, sizes, CRC, values).
// On failure c is left empty.
int cnn_ckpt_load(const char *path, cnn_ckpt *c, char *err, size_t errlen);
// Checks a loaded checkpoint belongs to the network name/hash with these counts
// and, when it records one, was trained with the normalization mean/std the
// network has now (a version 1 checkpoint passes that part: unknown). A
// version 3 file must hold exactly the tensors of the table, by name, dtype
// and shape; they are then placed into c->params, state and momentum.
int cnn_ckpt_check(cnn_ckpt *c, const char *path, const char *name, uint64_t hash,
                   size_t n_params, size_t n_state, double mean, double std,
                   const cnn_tensor *tensors, size_t n_tensors, char *err, size_t errlen);
// Frees the arrays of a loaded checkpoint; the struct is zeroed.
void cnn_ckpt_free(cnn_ckpt *c);

#endif
