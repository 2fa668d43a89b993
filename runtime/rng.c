// rng.c: PCG32 (pcg32_random_r, XSH RR output) from O'Neill's reference code.
#include "rng.h"

// Seeds as pcg32_srandom_r(initstate = seed, initseq = stream).
void cnn_rng_seed(cnn_rng *r, uint64_t seed, uint64_t stream) {
  r->state = 0u;
  r->inc = (stream << 1u) | 1u;
  cnn_rng_u32(r);
  r->state += seed;
  cnn_rng_u32(r);
}

// pcg32_random_r: LCG step, output from the old state.
uint32_t cnn_rng_u32(cnn_rng *r) {
  uint64_t old = r->state;
  r->state = old * 6364136223846793005ULL + r->inc;
  uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
  uint32_t rot = (uint32_t)(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

// Top 24 bits: every value is exactly representable in a float, so < 1.
float cnn_rng_uniform(cnn_rng *r) {
  return (float)(cnn_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

// Lemire's multiply-and-reject: unbiased, usually one draw.
uint32_t cnn_rng_below(cnn_rng *r, uint32_t n) {
  if (n == 0)
    return 0;
  uint64_t m = (uint64_t)cnn_rng_u32(r) * n;
  uint32_t low = (uint32_t)m;
  if (low < n) {
    uint32_t threshold = (uint32_t)(-n) % n;
    while (low < threshold) {
      m = (uint64_t)cnn_rng_u32(r) * n;
      low = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}
