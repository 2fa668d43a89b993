// main.c: the firmware demo. Classifies the MNIST digits of digits.h with
// the generated float and int8 inference code and prints one line per digit.
// Built for the Cortex-M4 (QEMU mps2-an386, semihosting) and for the host;
// `make firmware-test` checks that both print the same predictions.
#include <stdint.h>
#include <stdio.h>

#include "digits.h"
#include "mnist14k_infer.h"
#include "mnist14k_infer_int8.h"

#ifdef __arm__
// SysTick, free running from the core clock. Under qemu -icount shift=0 a
// virtual nanosecond is one instruction and the 25 MHz clock ticks every 40.
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

// Starts the 24-bit down counter with the processor clock, no interrupt.
static void clock_start(void) {
  SYST_RVR = 0xFFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 5u;
}

// Ticks since t0 (one wrap at most: 2^24 ticks is far more than one inference).
static uint32_t ticks_since(uint32_t t0) {
  return (t0 - SYST_CVR) & 0xFFFFFFu;
}

// Instructions per tick, measured rather than assumed: a loop of exactly two
// instructions (subs, bne) per turn.
static uint32_t instructions_per_tick(void) {
  uint32_t turns = 1000000u, t0 = SYST_CVR;
  __asm volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(turns));
  uint32_t t = ticks_since(t0);
  return t ? (2000000u + t / 2) / t : 0;
}
#else
static void clock_start(void) {}
static uint32_t ticks_since(uint32_t t0) {
  (void)t0;
  return 0;
}
#define SYST_CVR 0u
#endif

int main(void) {
  int fok = 0, qok = 0;
  uint32_t fticks = 0, qticks = 0;
  clock_start();
  for (int i = 0; i < DIGITS_N; i++) {
    uint32_t t0 = SYST_CVR;
    int f = mnist14k_predict(digits[i]);
    fticks += ticks_since(t0);
    t0 = SYST_CVR;
    int q = mnist14k_int8_predict(digits[i]);
    qticks += ticks_since(t0);
    fok += f == digit_labels[i];
    qok += q == digit_labels[i];
    printf("digit %d label %d float %d int8 %d\n", i, digit_labels[i], f, q);
  }
  printf("correct: float %d/%d int8 %d/%d\n", fok, DIGITS_N, qok, DIGITS_N);
#ifdef __arm__
  uint32_t ipt = instructions_per_tick();
  printf("instructions per tick: %lu\n", (unsigned long)ipt);
  printf("instructions per inference: float %lu int8 %lu\n",
         (unsigned long)((uint64_t)fticks * ipt / DIGITS_N),
         (unsigned long)((uint64_t)qticks * ipt / DIGITS_N));
#endif
  printf("arena bytes: float %d int8 %d\n", MNIST14K_ARENA_BYTES, MNIST14K_INT8_ARENA_BYTES);
  return 0;
}
