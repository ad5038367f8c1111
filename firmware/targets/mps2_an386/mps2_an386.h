/* tinyae — QEMU mps2-an386 (Cortex-M4F) target: register map and the target's internal API.
 *
 * Register addresses come from the ARMv7-M Architecture Reference Manual (System Control Space)
 * and the CMSDK APB UART description (ARM DDI 0479); the UART base and IRQ numbers are those of
 * QEMU 7.2's hw/arm/mps2.c for the AN386 image (UART0 at 0x40004000, RX IRQ 0, TX IRQ 1,
 * system clock 25 MHz). Written here from those documents, not copied from CMSIS. */
#ifndef TAE_MPS2_AN386_H
#define TAE_MPS2_AN386_H

#include <stddef.h>
#include <stdint.h>

#define TAE_REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---- System Control Space ---- */
#define TAE_SCB_ICSR   TAE_REG32(0xE000ED04u) /* bit 26 PENDSTSET: SysTick pending, 25 PENDSTCLR */
#define TAE_SCB_VTOR   TAE_REG32(0xE000ED08u)
#define TAE_SCB_CCR    TAE_REG32(0xE000ED14u) /* bit 4 DIV_0_TRP, bit 3 UNALIGN_TRP */
#define TAE_SCB_SHCSR  TAE_REG32(0xE000ED24u) /* bits 16/17/18: MemManage/BusFault/UsageFault enable */
#define TAE_SCB_CFSR   TAE_REG32(0xE000ED28u)
#define TAE_SCB_HFSR   TAE_REG32(0xE000ED2Cu)
#define TAE_SCB_MMFAR  TAE_REG32(0xE000ED34u)
#define TAE_SCB_BFAR   TAE_REG32(0xE000ED38u)
#define TAE_SCB_CPACR  TAE_REG32(0xE000ED88u) /* CP10/CP11 access: bits 20..23 */
#define TAE_NVIC_ISER0 TAE_REG32(0xE000E100u)

#define TAE_SYST_CSR   TAE_REG32(0xE000E010u) /* bit0 ENABLE, bit1 TICKINT, bit2 CLKSOURCE (1 = CPU) */
#define TAE_SYST_RVR   TAE_REG32(0xE000E014u)
#define TAE_SYST_CVR   TAE_REG32(0xE000E018u)

#define TAE_ICSR_PENDSTSET (1u << 26)
#define TAE_ICSR_PENDSTCLR (1u << 25)

/* ---- CMSDK APB UART0 ---- */
#define TAE_UART0_BASE      0x40004000u
#define TAE_UART0_DATA      TAE_REG32(TAE_UART0_BASE + 0x00u)
#define TAE_UART0_STATE     TAE_REG32(TAE_UART0_BASE + 0x04u) /* bit0 TX full, bit1 RX full, bit2/3 TX/RX overrun */
#define TAE_UART0_CTRL      TAE_REG32(TAE_UART0_BASE + 0x08u) /* bit0 TX en, bit1 RX en, bit2 TX int, bit3 RX int, bit5 RX overrun int */
#define TAE_UART0_INTSTATUS TAE_REG32(TAE_UART0_BASE + 0x0Cu) /* write 1 to clear: bit0 TX, bit1 RX, bit3 RX overrun */
#define TAE_UART0_BAUDDIV   TAE_REG32(TAE_UART0_BASE + 0x10u)
#define TAE_UART0_RX_IRQ    0u

#define TAE_UART_STATE_TXFULL  (1u << 0)
#define TAE_UART_STATE_RXFULL  (1u << 1)
#define TAE_UART_STATE_RXOVR   (1u << 3)
#define TAE_UART_CTRL_TXEN     (1u << 0)
#define TAE_UART_CTRL_RXEN     (1u << 1)
#define TAE_UART_CTRL_RXINT    (1u << 3)
#define TAE_UART_INT_RX        (1u << 1)
#define TAE_UART_INT_RXOVR     (1u << 3)

/* The CPU clock of the board; SysTick (CLKSOURCE = 1) counts at this rate of *virtual* time. */
#define TAE_EMU_CPU_HZ 25000000u

/* Exit codes through semihosting (tools/emulator/qemu.py documents them for the host side). */
#define TAE_EMU_EXIT_OK 0
#define TAE_EMU_EXIT_FAULT_BASE 100 /* + exception number: HardFault 103, MemManage 104, BusFault 105, UsageFault 106 */
#define TAE_EMU_EXIT_STORE_FAULT 90 /* test image EMU_STORE_FAULT=1: stopped inside a record write (store.c) */

#ifdef __cplusplus
extern "C" {
#endif

/* uart.c: interrupt-driven RX ring, polled TX. */
void tae_uart_init(void);
size_t tae_uart_read(uint8_t *dst, size_t max);  /* drains up to `max` bytes from the RX ring */
void tae_uart_write(const uint8_t *data, size_t len);
void tae_uart_puts(const char *s);
/* "0x" + 8 hex digits + NUL. */
#define TAE_HEX32_CHARS 11
void tae_format_hex32(uint32_t v, char out[TAE_HEX32_CHARS]);
void tae_uart_put_hex32(uint32_t v);             /* "0x%08x", no stdio */
void tae_uart_put_dec(uint32_t v);
uint32_t tae_uart_rx_dropped(void);              /* bytes lost because the ring was full */
int tae_uart_rx_pending(void);                   /* nonzero while the RX ring holds a byte */
void tae_uart_rx_isr(void);

/* timer.c: SysTick as a 64-bit virtual-time counter. */
void tae_timer_init(void);
uint64_t tae_timer_ticks(void);                  /* SysTick ticks (25 MHz virtual clock) since init */
uint64_t tae_timer_instructions(void);           /* exact instruction count under -icount shift=6 */
void tae_timer_suspend(void);                    /* before WFI, interrupts masked: SysTick stops */
void tae_timer_resume(void);                     /* after WFI, interrupts masked: from the next wrap */
void tae_systick_isr(void);

/* semihost.c */
void tae_semihost_write0(const char *s);          /* text to QEMU's stdout (debug console) */
/* Host files (QEMU's working directory): SYS_OPEN modes "rb" = 1, "wb" = 5; -1 on failure. */
#define TAE_SEMI_MODE_RB 1u
#define TAE_SEMI_MODE_WB 5u
int32_t tae_semihost_open(const char *path, uint32_t mode);
int32_t tae_semihost_close(int32_t handle);                               /* 0 on success */
uint32_t tae_semihost_write(int32_t handle, const uint8_t *data, size_t len); /* bytes not written */
uint32_t tae_semihost_read(int32_t handle, uint8_t *buf, size_t len);     /* bytes not read */
int32_t tae_semihost_flen(int32_t handle);                                /* file length or -1 */
int32_t tae_semihost_remove(const char *path);                            /* 0 on success */
int32_t tae_semihost_rename(const char *from, const char *to);           /* 0 on success */
int32_t tae_semihost_errno(void);                                         /* errno of the last call */
__attribute__((noreturn)) void tae_semihost_exit(uint32_t code);

/* fault.c */
void tae_fault_enable_traps(void);

/* startup.c: memory figures from the linker script. */
uint32_t tae_emu_flash_used(void);
uint32_t tae_emu_static_ram(void);
uint32_t tae_emu_stack_size(void);

/* synth_source.c */
void tae_synth_source_reset(uint32_t seed);

#ifdef __cplusplus
}
#endif

#endif /* TAE_MPS2_AN386_H */
