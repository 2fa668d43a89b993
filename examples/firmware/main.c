// main.c: the firmware demo. Classifies the images of digits.h (MNIST test
// digits, or generated inputs for the networks whose data is not here) with
// the generated float and int8 inference code and prints one line per image.
// fw_model.h (written by firmware.mk) includes the network's two headers and
// names its functions and sizes FW_*.
// Built for the Cortex-M4 (QEMU mps2-an386, semihosting) and for the host;
// `make firmware-test` checks that both print the same predictions.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "digits.h"
#include "fw_model.h"

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
#ifdef CNN_PROFILE
// The per-op profile (a build with -DCNN_PROFILE): the inference calls the
// hooks below around each op's work; ticks and calls add up per op, and the
// hooks' own cost, measured on empty pairs, is taken off afterwards.
typedef struct op_info {
  const char *what;
  long macs, ram, tables;
} op_info;
static const op_info finfo[FW_OPS] = FW_OP_INFO;
static const op_info qinfo[FW_INT8_OPS] = FW_INT8_OP_INFO;
static uint32_t prof_t0, fticks_op[FW_OPS + 1], qticks_op[FW_INT8_OPS + 1];
static uint32_t fcalls[FW_OPS + 1], qcalls[FW_INT8_OPS + 1];
static int prof_on; // only the timed predictions count

// Float hook: start (end 0) or stop (end 1) op's clock.
__attribute__((noinline)) void FW_PROFILE(int op, int end) {
  if (!prof_on)
    return;
  if (!end) {
    prof_t0 = SYST_CVR;
    return;
  }
  fticks_op[op] += (prof_t0 - SYST_CVR) & 0xFFFFFFu;
  fcalls[op]++;
}

// int8 hook: the same.
__attribute__((noinline)) void FW_INT8_PROFILE(int op, int end) {
  if (!prof_on)
    return;
  if (!end) {
    prof_t0 = SYST_CVR;
    return;
  }
  qticks_op[op] += (prof_t0 - SYST_CVR) & 0xFFFFFFu;
  qcalls[op]++;
}

// One line per op: kind, MACs, instructions per inference (hook cost taken
// off), RAM and table bytes; examples/firmware/profile.awk makes the table.
static void profile_print(const char *variant, const op_info *info, int n, const uint32_t *ticks,
                          const uint32_t *calls, uint32_t ipt, uint32_t hook_x1000) {
  for (int i = 1; i <= n; i++) {
    uint64_t ins = (uint64_t)ticks[i] * ipt * 1000u, off = (uint64_t)calls[i] * hook_x1000;
    ins = ins > off ? ins - off : 0;
    printf("profile %s %d %s|%ld|%lu|%ld|%ld\n", variant, i, info[i - 1].what, info[i - 1].macs,
           (unsigned long)(ins / 1000u / DIGITS_N), info[i - 1].ram, info[i - 1].tables);
  }
}
#endif
#else
static void clock_start(void) {}
static uint32_t ticks_since(uint32_t t0) {
  (void)t0;
  return 0;
}
#define SYST_CVR 0u
#endif

#if defined(__arm__) && defined(CNN_PROFILE)
#define PROF_ON(on) (prof_on = (on))
#else
#define PROF_ON(on) ((void)0)
#endif

int main(void) {
  int fok = 0, qok = 0;
  uint32_t fticks = 0, qticks = 0;
  clock_start();
  for (int i = 0; i < DIGITS_N; i++) {
    uint32_t t0 = SYST_CVR;
    PROF_ON(1);
    int f = FW_PREDICT(digits[i]);
    fticks += ticks_since(t0);
    t0 = SYST_CVR;
    int q = FW_INT8_PREDICT(digits[i]);
    qticks += ticks_since(t0);
    PROF_ON(0);
    fok += f == digit_labels[i];
    qok += q == digit_labels[i];
    printf("digit %d label %d float %d int8 %d scores", i, digit_labels[i], f, q);
    // The int8 scores' bits: each is an exact int32 times one float scale
    // (an injective map at these magnitudes), so equal bits on host and
    // target mean equal int32 outputs, not just equal argmax.
    float sc[FW_CLASSES];
    FW_INT8_SCORES(digits[i], sc);
    for (int c = 0; c < FW_CLASSES; c++) {
      uint32_t b;
      memcpy(&b, &sc[c], sizeof b);
      printf(" %08lx", (unsigned long)b);
    }
    printf("\n");
  }
  printf("correct: float %d/%d int8 %d/%d\n", fok, DIGITS_N, qok, DIGITS_N);
#ifdef __arm__
  uint32_t ipt = instructions_per_tick();
  printf("instructions per tick: %lu\n", (unsigned long)ipt);
  printf("instructions per inference: float %lu int8 %lu\n",
         (unsigned long)((uint64_t)fticks * ipt / DIGITS_N),
         (unsigned long)((uint64_t)qticks * ipt / DIGITS_N));
#endif
#if defined(__arm__) && defined(CNN_PROFILE)
  // What a start/stop pair adds to an op, in thousandths of an instruction:
  // 1000 empty pairs into the unused slot 0.
  prof_on = 1;
  for (int i = 0; i < 1000; i++) {
    FW_INT8_PROFILE(0, 0);
    FW_INT8_PROFILE(0, 1);
  }
  uint32_t hook_x1000 = qticks_op[0] * ipt;
  profile_print("float", finfo, FW_OPS, fticks_op, fcalls, ipt, hook_x1000);
  profile_print("int8", qinfo, FW_INT8_OPS, qticks_op, qcalls, ipt, hook_x1000);
#endif
  printf("arena bytes: float %d int8 %d\n", FW_ARENA_BYTES, FW_INT8_ARENA_BYTES);
  return 0;
}
