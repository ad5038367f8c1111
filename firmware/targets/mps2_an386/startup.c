/* tinyae — mps2-an386 startup: vector table and reset handler.
 *
 * Reset: enable the FPU (CP10/CP11 full access, then DSB/ISB, before any floating-point
 * instruction runs), copy .data from flash, clear .bss, run static constructors (.preinit_array,
 * .init_array — our own loop, no crt0/__libc_init_array), then main(). main() never returns;
 * if it did, the emulator exits with its return value through semihosting. */
#include <stdint.h>

#include "mps2_an386.h"

extern uint32_t __stack_top;
extern uint32_t __stack_size;
extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end;
extern uint32_t __tae_flash_used, __tae_static_ram;
typedef void (*tae_init_fn)(void);
extern tae_init_fn __preinit_array_start[], __preinit_array_end[];
extern tae_init_fn __init_array_start[], __init_array_end[];

int main(void);
void tae_reset_handler(void);
void tae_fault_entry(void);    /* fault.c: HardFault/MemManage/BusFault/UsageFault */
void tae_default_entry(void);  /* fault.c: any unexpected exception or interrupt */

static void tae_uart0_rx_vector(void) { tae_uart_rx_isr(); }
static void tae_systick_vector(void) { tae_systick_isr(); }

/* 16 system exceptions + 32 external interrupts (QEMU's mps2-an386 wires IRQs 0..31). */
#define TAE_NUM_VECTORS (16 + 32)

__attribute__((section(".isr_vector"), used)) static const uintptr_t tae_vectors[TAE_NUM_VECTORS] = {
    [0] = (uintptr_t)&__stack_top,
    [1] = (uintptr_t)tae_reset_handler,
    [2] = (uintptr_t)tae_default_entry,  /* NMI */
    [3] = (uintptr_t)tae_fault_entry,    /* HardFault */
    [4] = (uintptr_t)tae_fault_entry,    /* MemManage */
    [5] = (uintptr_t)tae_fault_entry,    /* BusFault */
    [6] = (uintptr_t)tae_fault_entry,    /* UsageFault */
    [7] = (uintptr_t)tae_default_entry,
    [8] = (uintptr_t)tae_default_entry,
    [9] = (uintptr_t)tae_default_entry,
    [10] = (uintptr_t)tae_default_entry,
    [11] = (uintptr_t)tae_default_entry, /* SVCall */
    [12] = (uintptr_t)tae_default_entry, /* DebugMonitor */
    [13] = (uintptr_t)tae_default_entry,
    [14] = (uintptr_t)tae_default_entry, /* PendSV */
    [15] = (uintptr_t)tae_systick_vector,
    [16 + TAE_UART0_RX_IRQ] = (uintptr_t)tae_uart0_rx_vector,
    [17 ... TAE_NUM_VECTORS - 1] = (uintptr_t)tae_default_entry,
};

void tae_reset_handler(void)
{
    /* FPU first: CP10 and CP11 full access. */
    TAE_SCB_CPACR |= (0xFu << 20);
    __asm volatile("dsb\n\tisb" ::: "memory");

    TAE_SCB_VTOR = (uint32_t)(uintptr_t)tae_vectors;

    const uint32_t *src = &__data_load;
    for (uint32_t *dst = &__data_start; dst < &__data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start; dst < &__bss_end;) {
        *dst++ = 0u;
    }
    for (tae_init_fn *f = __preinit_array_start; f < __preinit_array_end; ++f) {
        (*f)();
    }
    for (tae_init_fn *f = __init_array_start; f < __init_array_end; ++f) {
        (*f)();
    }
    int rc = main();
    tae_semihost_exit((uint32_t)rc);
}

/* Linker-script symbols are addresses; their "value" is the address itself. */
uint32_t tae_emu_flash_used(void) { return (uint32_t)(uintptr_t)&__tae_flash_used; }
uint32_t tae_emu_static_ram(void) { return (uint32_t)(uintptr_t)&__tae_static_ram; }
uint32_t tae_emu_stack_size(void) { return (uint32_t)(uintptr_t)&__stack_size; }
