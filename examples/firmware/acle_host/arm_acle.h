/* arm_acle.h for the host: portable C for the ACLE intrinsics that the
   generated int8 code uses. Built with -D__ARM_FEATURE_DSP=1 and
   -Iexamples/firmware/acle_host, the DSP path of that code runs on the host,
   so tests can compare it bit for bit with the portable path (on all 10,000
   test images in tests/test_infer.c, on the firmware's digits in
   make firmware-test). Wrapping 32-bit sums, as on the Cortex-M4. */
#ifndef CNNC_ACLE_HOST_H
#define CNNC_ACLE_HOST_H

#include <stdint.h>

/* Bytes 0 and 2 of x, sign-extended, as the low and high halfword. */
static inline int32_t __sxtb16(int32_t x) {
  uint32_t u = (uint32_t)x;
  uint32_t lo = (uint16_t)(int16_t)(int8_t)(uint8_t)u, hi = (uint16_t)(int16_t)(int8_t)(uint8_t)(u >> 16);
  return (int32_t)(lo | hi << 16);
}

/* Bytes 0 and 2 of x, zero-extended. */
static inline uint32_t __uxtb16(uint32_t x) {
  return x & 0x00FF00FFu;
}

/* c + the products of the low and of the high signed halfwords of a and b. */
static inline int32_t __smlad(int32_t a, int32_t b, int32_t c) {
  int32_t lo = (int32_t)(int16_t)(uint16_t)a * (int16_t)(uint16_t)b;
  int32_t hi = (int32_t)(int16_t)(uint16_t)((uint32_t)a >> 16) * (int16_t)(uint16_t)((uint32_t)b >> 16);
  return (int32_t)((uint32_t)c + (uint32_t)lo + (uint32_t)hi);
}

/* c + the product of the low (bb) or the high (tt) signed halfwords of a and b. */
static inline int32_t __smlabb(int32_t a, int32_t b, int32_t c) {
  return (int32_t)((uint32_t)c + (uint32_t)((int32_t)(int16_t)(uint16_t)a * (int16_t)(uint16_t)b));
}
static inline int32_t __smlatt(int32_t a, int32_t b, int32_t c) {
  return __smlabb((int32_t)((uint32_t)a >> 16), (int32_t)((uint32_t)b >> 16), c);
}

/* x saturated to n bits, unsigned and signed. */
#define __usat(x, n) ((x) < 0 ? 0u : (x) > (1 << (n)) - 1 ? (uint32_t)((1 << (n)) - 1) : (uint32_t)(x))
#define __ssat(x, n) ((x) < -(1 << ((n) - 1)) ? -(1 << ((n) - 1)) : (x) > (1 << ((n) - 1)) - 1 ? (1 << ((n) - 1)) - 1 : (x))

#endif
