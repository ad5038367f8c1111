/* tinyae — SysTick as the cost counter on mps2-an386.
 *
 * SysTick runs from the 25 MHz CPU clock (CLKSOURCE = 1) with the full 24-bit reload 0xFFFFFF; its
 * interrupt counts wraps, so tae_timer_ticks() is a 64-bit count of 40 ns ticks of virtual time.
 *
 * Instruction counting: QEMU's `-icount shift=N` makes every guest instruction advance virtual
 * time by exactly 2^N ns. The runner uses shift=6 (64 ns per instruction, a 15.6 MIPS virtual
 * CPU), so one instruction is 1.6 ticks. With n instructions since SysTick was enabled, QEMU's
 * counter gives ticks = floor(1.6 * n) - 1 (the first tick only loads the reload value), so
 * n = ceil((ticks + 1) * 5 / 8) exactly: the floor loses less than one tick, 5/8 of an
 * instruction. shift >= 6 is needed for a tick to be shorter than an instruction; a smaller shift
 * gives coarser counts. Measured, not assumed: loops of 1..1399 two-instruction iterations, each
 * starting at a different SysTick phase, all counted exactly 2 * N + the same constant with the
 * +1 origin (and not with origin 0); calib_app.c and tests/test_emulator_build.py keep checking it.
 * Counts include the instructions of interrupt handlers that run in between (UART RX, SysTick).
 *
 * Sleep (main.c: WFI once the application has waited for the host a while). Under -icount's default sleep=on,
 * QEMU advances virtual time with the host's real time while the vCPU sleeps, by an amount that is
 * no multiple of 64 ns: after such a sleep SysTick's ticks would fall at other points between
 * instructions, and a difference of two counts could be one instruction off. So SysTick stops for
 * the sleep (tae_timer_suspend) and starts afresh after it (tae_timer_resume), exactly as at
 * tae_timer_init, so the arithmetic above holds again from the instruction that restarts it; and the
 * count resumes at the next whole wrap (tae_systick_wraps + 1): a multiple of 2^24 ticks, hence of 8
 * ticks = 5 instructions, so ceil((ticks + 1) * 5 / 8) stays exact with no extra instruction in
 * tae_timer_ticks or tae_timer_instructions (the cost of a window, and sensor mode's loop, are what
 * they were). Both counts therefore stay monotonic and exact between two sleeps, and a sleep reads as
 * lasting until SysTick's next wrap (up to 0.67 s of ticks). Nothing is measured across a sleep:
 * costs are taken within the handling of one frame, and sensor mode never sleeps. */
#include <stdint.h>

#include "mps2_an386.h"

#ifndef TAE_EMU_ICOUNT_SHIFT
#define TAE_EMU_ICOUNT_SHIFT 6
#endif
#if TAE_EMU_ICOUNT_SHIFT != 6
#error "tae_timer_instructions() is written for -icount shift=6 (1 instruction = 1.6 SysTick ticks)"
#endif

#define TAE_SYSTICK_RELOAD 0x00FFFFFFu

static volatile uint32_t tae_systick_wraps;
static uint32_t tae_systick_resume_wraps; /* tae_systick_wraps at the next tae_timer_resume */

/* SysTick from CVR = 0 (its first tick loads the reload value), as at power-on, `wraps` wraps in. */
static void tae_timer_start(uint32_t wraps)
{
    TAE_SYST_CSR = 0u;
    TAE_SYST_RVR = TAE_SYSTICK_RELOAD;
    TAE_SYST_CVR = 0u;
    tae_systick_wraps = wraps;
    TAE_SYST_CSR = (1u << 2) | (1u << 1) | 1u; /* CPU clock, interrupt on wrap, enable */
}

void tae_timer_init(void) { tae_timer_start(0u); }

void tae_systick_isr(void) { tae_systick_wraps++; }

uint64_t tae_timer_ticks(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    uint32_t wraps = tae_systick_wraps;
    uint32_t cvr = TAE_SYST_CVR;
    if (TAE_SCB_ICSR & TAE_ICSR_PENDSTSET) {
        /* Wrapped but the interrupt has not run yet (we masked it): count it here. */
        cvr = TAE_SYST_CVR;
        wraps++;
    }
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
    return (uint64_t)wraps * (TAE_SYSTICK_RELOAD + 1u) + (TAE_SYSTICK_RELOAD - cvr);
}

uint64_t tae_timer_instructions(void) { return ((tae_timer_ticks() + 1u) * 5u + 7u) / 8u; }

void tae_timer_suspend(void)
{
    uint32_t wraps = tae_systick_wraps;
    TAE_SYST_CSR = 0u;
    if (TAE_SCB_ICSR & TAE_ICSR_PENDSTSET) {
        /* A wrap whose interrupt has not run (the caller masks interrupts): count it here, and clear
         * it so that its interrupt does not count it again after the restart. */
        TAE_SCB_ICSR = TAE_ICSR_PENDSTCLR;
        wraps++;
    }
    tae_systick_resume_wraps = wraps + 1u;
}

void tae_timer_resume(void) { tae_timer_start(tae_systick_resume_wraps); }
