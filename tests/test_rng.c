// test_rng.c: PCG32 against the reference implementation's published output,
// and the properties shuffling and dropout rely on.
#include <CUnit/CUnit.h>
#include <math.h>
#include <string.h>

#include "rng.h"

// pcg32-demo (O'Neill's C reference) seeds with (42, 54) and prints these;
// seed (1, 0) was computed with a Python transcription of pcg32_random_r.
static void test_reference_values(void) {
  static const uint32_t want42[6] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u,
                                     0x83d2f293u, 0xbfa4784bu, 0xcbed606eu};
  static const uint32_t want1[4] = {0xe2393051u, 0x01112f35u, 0xd3509d35u, 0x0b932f4au};
  cnn_rng r;
  cnn_rng_seed(&r, 42, 54);
  for (int i = 0; i < 6; i++)
    CU_ASSERT_EQUAL(cnn_rng_u32(&r), want42[i]);
  cnn_rng_seed(&r, 1, 0);
  for (int i = 0; i < 4; i++)
    CU_ASSERT_EQUAL(cnn_rng_u32(&r), want1[i]);
}

// Same seed and stream: same sequence; another seed or stream: another one.
static void test_reproducible_and_streams(void) {
  cnn_rng a, b, c, d;
  cnn_rng_seed(&a, 7, 3);
  cnn_rng_seed(&b, 7, 3);
  cnn_rng_seed(&c, 7, 4);
  cnn_rng_seed(&d, 8, 3);
  int same_c = 0, same_d = 0;
  for (int i = 0; i < 1000; i++) {
    uint32_t x = cnn_rng_u32(&a);
    CU_ASSERT_EQUAL(x, cnn_rng_u32(&b));
    same_c += x == cnn_rng_u32(&c);
    same_d += x == cnn_rng_u32(&d);
  }
  CU_ASSERT(same_c < 5);
  CU_ASSERT(same_d < 5);
}

// uniform is (u32 >> 8) * 2^-24: check against a copy of the generator.
static void test_uniform(void) {
  cnn_rng r, copy;
  cnn_rng_seed(&r, 123, 1);
  copy = r;
  double sum = 0;
  for (int i = 0; i < 100000; i++) {
    float u = cnn_rng_uniform(&r);
    uint32_t bits = cnn_rng_u32(&copy);
    CU_ASSERT_EQUAL(u, (float)(bits >> 8) * (1.0f / 16777216.0f));
    CU_ASSERT(u >= 0.0f && u < 1.0f);
    sum += u;
  }
  CU_ASSERT(fabs(sum / 100000 - 0.5) < 0.005);
  // the largest 24-bit value still maps below 1
  CU_ASSERT((float)(0xffffffu) * (1.0f / 16777216.0f) < 1.0f);
}

// below(n): in range, uniform (chi-square), and unbiased for an n where
// modulo reduction would be badly biased.
static void test_below(void) {
  cnn_rng r;
  cnn_rng_seed(&r, 99, 5);
  long counts[10] = {0};
  const int N = 200000;
  for (int i = 0; i < N; i++) {
    uint32_t v = cnn_rng_below(&r, 10);
    CU_ASSERT_FATAL(v < 10);
    counts[v]++;
  }
  double chi = 0, e = N / 10.0;
  for (int i = 0; i < 10; i++)
    chi += (counts[i] - e) * (counts[i] - e) / e;
  CU_ASSERT(chi < 30.0); // 9 dof: p < 0.0005 of a false failure
  for (int i = 0; i < 100; i++)
    CU_ASSERT_EQUAL(cnn_rng_below(&r, 1), 0u);
  // n = 3 * 2^30: with u32 % n, values below 2^30 would come twice as often
  // as the others (1/2 of draws instead of 1/3).
  const uint32_t n = 3u << 30;
  long low = 0;
  for (int i = 0; i < N; i++) {
    uint32_t v = cnn_rng_below(&r, n);
    CU_ASSERT_FATAL(v < n);
    low += v < (1u << 30);
  }
  CU_ASSERT(fabs((double)low / N - 1.0 / 3.0) < 0.01);
}

// below is a function of the u32 stream (Lemire): check it draw by draw.
static void test_below_matches_lemire(void) {
  cnn_rng r, copy;
  cnn_rng_seed(&r, 5, 77);
  copy = r;
  for (int i = 0; i < 10000; i++) {
    uint32_t n = 1 + (uint32_t)i * 2654435761u % 1000003u;
    uint32_t got = cnn_rng_below(&r, n);
    uint64_t m;
    uint32_t thr = (uint32_t)(-n) % n;
    do
      m = (uint64_t)cnn_rng_u32(&copy) * n;
    while ((uint32_t)m < thr);
    CU_ASSERT_EQUAL(got, (uint32_t)(m >> 32));
  }
}

// The suite.
void register_tests(void) {
  CU_pSuite s = CU_add_suite("rng", NULL, NULL);
  CU_add_test(s, "reference values", test_reference_values);
  CU_add_test(s, "reproducible, streams differ", test_reproducible_and_streams);
  CU_add_test(s, "uniform", test_uniform);
  CU_add_test(s, "below unbiased", test_below);
  CU_add_test(s, "below = Lemire", test_below_matches_lemire);
}
