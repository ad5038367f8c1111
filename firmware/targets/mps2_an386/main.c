/* tinyae — main for the QEMU mps2-an386 image.
 *
 * Boot: fault traps, UART0, SysTick, then one banner line on UART0:
 *   tinyae: boot target=mps2-an386 app=<app> flash=<B> ram=<B> stack=<B> unit=instructions
 * then the application: init, and forever: drain the UART RX ring into tae_app_on_bytes(), then
 * tae_app_poll(); when the application is idle (tae_app_idle: host-stream mode, nothing to do until the
 * host sends more) the loop spins TAE_EMU_SPIN_POLLS more polls, then sleeps until the UART RX
 * interrupt (tae_emu_sleep_until_rx: WFI); any received byte starts the count again. So QEMU's vCPU
 * thread sleeps while the board waits for the host (a test's next step, a human, the host computing
 * its reference) instead of taking a whole host CPU, and still takes a burst of bytes without a
 * wake-up per byte: QEMU's CMSDK UART holds one byte, so a board that slept as soon as it was idle woke
 * for every byte, and streaming over the emulated link fell to 55 % (stream) / 72 % (verify) of the
 * rate of a spinning board (tinyae bench streaming). In sensor mode the loop never sleeps: under
 * -icount, virtual time — and so the synthetic sensor's sample clock (synth_source.c) — advances with
 * executed instructions, and the samples, their lateness and the instruction counts stay what they were.
 *
 * TAE_EMU_SPIN_POLLS, measured (a spinning image counting the idle polls before each received byte,
 * 661 windows of the default model's test split with and without verification payload): an idle poll
 * is 45 instructions; about half the bytes were already waiting (the loop was busy); of the gaps in
 * which the loop polled, 87 % were 16-127 polls (the bytes of a burst, one by one through the UART),
 * 3 % 128-4,095 polls, and 9 % (about 1,700 per run, 2.5 per window) 4,096-65,535 polls: the pauses
 * in which the board waits for the host between frames. 4,096 polls (184,000 instructions, 12 ms of
 * virtual time) lies past the first two groups and below the third: within a burst the board polls,
 * between frames it sleeps, and a frame's first byte pays one wake-up. Measured with it: `stream` and
 * `verify` at 98 % and 98-99 % of their bound (tinyae bench streaming, two runs; the board that slept
 * at once: 55 % / 72 %), and an idle board's QEMU at 0.00 s of CPU in 5 s (2.7-3.3 s spinning).
 * Counted in polls, not in time: a vCPU thread that the host does not schedule neither polls nor
 * spends CPU. EMU_SPIN_POLLS=<N> builds another count (0: sleep as soon as idle). tae_emu_sleeps
 * counts the sleeps (tests read it through QMP).
 *
 * Build switches (mk/firmware-emu.mk): TAE_EMU_APP_CORE (the real core, tae_app.h) or one of the
 * stand-in apps (emu_test_app.h); TAE_EMU_FAULT=<kind> faults right after the banner (fault test);
 * TAE_EMU_BALLAST_RAM / TAE_EMU_BALLAST_FLASH=<bytes> add a static array (link-overflow test). */
#include <stddef.h>
#include <stdint.h>

#include "mps2_an386.h"
#include "tae_port.h"

#if defined(TAE_EMU_APP_CORE)
#include "model_config.h" /* TAE_FIRMWARE_VERSION: generated, from pyproject.toml's version */
#include "tae_app.h"
#include "tae_engine.h"
static const char tae_emu_app_name[] = "core";
#else
#include "emu_test_app.h"
#endif

#if defined(TAE_EMU_BALLAST_RAM) && TAE_EMU_BALLAST_RAM > 0
static volatile uint8_t tae_ballast_ram[TAE_EMU_BALLAST_RAM];
#endif
#if defined(TAE_EMU_BALLAST_FLASH) && TAE_EMU_BALLAST_FLASH > 0
__attribute__((used)) static const uint8_t tae_ballast_flash[TAE_EMU_BALLAST_FLASH] = {1u}; /* .rodata */
#endif

#if defined(TAE_EMU_FAULT)
/* 1: undefined instruction (UsageFault UNDEFINSTR); 2: integer divide by zero (UsageFault
 * DIVBYZERO); 3: branch to an address without the Thumb bit (UsageFault INVSTATE). */
static void tae_emu_fault_now(void)
{
#if TAE_EMU_FAULT == 1
    __asm volatile("udf #0");
#elif TAE_EMU_FAULT == 2
    volatile uint32_t zero = 0u;
    volatile uint32_t q = 7u / zero;
    (void)q;
#elif TAE_EMU_FAULT == 3
    void (*volatile arm_mode)(void) = (void (*)(void))(uintptr_t)0x00000100u; /* bit 0 clear */
    arm_mode();
#else
#error "TAE_EMU_FAULT must be 1, 2 or 3"
#endif
}
#endif

static void tae_emu_banner(void)
{
    tae_uart_puts("tinyae: boot target=mps2-an386 app=");
    tae_uart_puts(tae_emu_app_name);
    tae_uart_puts(" flash=");
    tae_uart_put_dec(tae_emu_flash_used());
    tae_uart_puts(" ram=");
    tae_uart_put_dec(tae_emu_static_ram());
    tae_uart_puts(" stack=");
    tae_uart_put_dec(tae_emu_stack_size());
    tae_uart_puts(" unit=");
    tae_uart_puts(tae_port_cycles_unit());
    tae_uart_puts("\r\n");
}

#ifndef TAE_EMU_SPIN_POLLS
#define TAE_EMU_SPIN_POLLS 4096u
#endif
/* A variable, not the macro, in the comparison: with EMU_SPIN_POLLS=0, `idle_polls < 0u` would be a
 * comparison that is always false, which -Wextra (-Wtype-limits) rejects. */
static const uint32_t tae_emu_spin_polls = TAE_EMU_SPIN_POLLS;

/* WFIs entered since boot. Not in any frame: tests read it from the guest's memory (QMP), to see that
 * an idle board sleeps and that a burst of bytes is taken without sleeping between them. */
volatile uint32_t tae_emu_sleeps;

/* Sleep until the next interrupt, unless a received byte already waits in the ring. Interrupts are
 * masked (PRIMASK) from the check to WFI, so a byte whose interrupt comes in between is not slept
 * through: a pending interrupt ends WFI even while masked (the ARMv7-M wake-up rule for WFI; QEMU's
 * NVIC raises the CPU's interrupt line whatever PRIMASK says, hw/intc/armv7m_nvic.c nvic_irq_update),
 * and its handler runs as soon as the mask is lifted. SysTick is stopped meanwhile (timer.c says why),
 * so only the UART wakes the board. */
static void tae_emu_sleep_until_rx(void)
{
    __asm volatile("cpsid i" ::: "memory");
    if (!tae_uart_rx_pending()) {
        tae_emu_sleeps++;
        tae_timer_suspend();
        __asm volatile("dsb\n\twfi" ::: "memory");
        tae_timer_resume();
    }
    __asm volatile("cpsie i" ::: "memory");
}

int main(void)
{
    tae_fault_enable_traps();
    tae_uart_init();
    tae_timer_init();
    __asm volatile("cpsie i" ::: "memory");

#if defined(TAE_EMU_BALLAST_RAM) && TAE_EMU_BALLAST_RAM > 0
    tae_ballast_ram[TAE_EMU_BALLAST_RAM - 1] = 1u;
#endif
#if defined(TAE_EMU_BALLAST_FLASH) && TAE_EMU_BALLAST_FLASH > 0
    (void)*(const volatile uint8_t *)&tae_ballast_flash[TAE_EMU_BALLAST_FLASH - 1];
#endif

    tae_emu_banner();
#if defined(TAE_EMU_FAULT)
    tae_emu_fault_now();
#endif

#if defined(TAE_EMU_APP_CORE)
    static const tae_target_info_t info = {
        .flash_used = 0u, .ram_static = 0u, .stack_bytes = 0u, /* filled below (link-time symbols) */
        .firmware_version = TAE_FIRMWARE_VERSION,
        .target = "qemu-mps2-an386",
    };
    tae_target_info_t filled = info;
    filled.flash_used = tae_emu_flash_used();
    filled.ram_static = tae_emu_static_ram();
    filled.stack_bytes = tae_emu_stack_size();
    tae_app_set_target_info(&filled);
#if defined(TAE_ENGINE_TFLM)
    /* As on the boards (firmware/src/main.cpp): the reason in words on a text line before the BOOT
     * frame, whose ERROR ENGINE carries only the status. */
    if (tae_engine_init() != TAE_ENGINE_OK) {
        tae_uart_puts("tinyae: engine init failed: ");
        tae_uart_puts(tae_engine_tflm_reason());
        tae_uart_puts("\r\n");
    }
#endif
#endif
    tae_app_init();
    uint32_t idle_polls = 0u; /* polls since the last received byte, while the app was idle */
    for (;;) {
        uint8_t buf[64];
        size_t n = tae_uart_read(buf, sizeof(buf));
        if (n > 0u) {
            tae_app_on_bytes(buf, n);
        }
        tae_app_poll();
        if (n > 0u || !tae_app_idle()) {
            idle_polls = 0u;
        } else if (idle_polls < tae_emu_spin_polls) {
            idle_polls++; /* spin: the host's next byte is likely close behind */
        } else {
            tae_emu_sleep_until_rx(); /* idle for a while: sleep until the next byte */
        }
    }
}
