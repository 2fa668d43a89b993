// rng.h: PCG32 (O'Neill, pcg32_random_r), the one random source of training:
// init, shuffling, dropout masks and augmentation all draw from it, so one
// seed fixes a whole run.
#ifndef CNN_RNG_H
#define CNN_RNG_H

#include <stdint.h>

typedef struct cnn_rng {
  uint64_t state, inc;
} cnn_rng;

// Seeds a generator; different streams give independent sequences.
void cnn_rng_seed(cnn_rng *r, uint64_t seed, uint64_t stream);
// Next 32 random bits.
uint32_t cnn_rng_u32(cnn_rng *r);
// Uniform float in [0, 1), 24 random bits.
float cnn_rng_uniform(cnn_rng *r);
// Uniform integer in [0, n), without modulo bias.
uint32_t cnn_rng_below(cnn_rng *r, uint32_t n);

#endif
