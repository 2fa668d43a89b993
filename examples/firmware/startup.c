// startup.c: vector table and reset handler for a bare-metal Cortex-M4F
// (QEMU mps2-an386). Copies .data from flash, zeroes .bss, turns the FPU on,
// opens semihosting, then runs main and exits through semihosting.
#include <stdint.h>
#include <stdlib.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
extern void initialise_monitor_handles(void);
void Reset_Handler(void);
void Default_Handler(void);

// newlib's init/fini array walkers call these; C needs nothing from them.
void _init(void);
void _fini(void);
void _init(void) {}
void _fini(void) {}

// Faults end the run with a failing exit so a test sees them instead of a hang.
void Default_Handler(void) {
  exit(99);
}

// The first words of flash: initial stack pointer, then the handlers.
__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&_estack,
    Reset_Handler,
    Default_Handler, // NMI
    Default_Handler, // HardFault
    Default_Handler, // MemManage
    Default_Handler, // BusFault
    Default_Handler, // UsageFault
    0, 0, 0, 0,
    Default_Handler, // SVC
    Default_Handler, // DebugMon
    0,
    Default_Handler, // PendSV
    Default_Handler, // SysTick (never enabled as an interrupt)
};

// Runs before any C: the C environment main expects.
void Reset_Handler(void) {
  uint32_t *src = &_sidata;
  for (uint32_t *dst = &_sdata; dst < &_edata;)
    *dst++ = *src++;
  for (uint32_t *dst = &_sbss; dst < &_ebss;)
    *dst++ = 0;
  // CPACR: full access to CP10/CP11, or the first float instruction faults.
  *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
  __asm volatile("dsb\n\tisb" ::: "memory");
  initialise_monitor_handles();
  exit(main());
}
