/* tinyae — calibration stand-in for the application (EMU_APP=calib): measures loops of a known
 * number of instructions with tae_port_cycles(), prints one line and exits QEMU with code 0.
 *   CALIB unit=instructions empty=E n1=1000 c1=C1 t1=T1 n2=100000 c2=C2 t2=T2
 * cK: tae_port_cycles() around tae_calib_loop(nK) (2*nK loop instructions + call overhead),
 * tK: raw SysTick ticks for the same loop. The test checks c2 - c1 == 2 * (n2 - n1). */
#include "emu_test_app.h"
#include "mps2_an386.h"
#include "tae_port.h"

const char tae_emu_app_name[] = "calib";

/* Exactly two instructions per iteration: subs + bne. */
__attribute__((noinline)) static void tae_calib_loop(uint32_t n)
{
    __asm volatile("1:\n\tsubs %0, %0, #1\n\tbne 1b" : "+r"(n)::"cc");
}

static void tae_calib_measure(uint32_t n, uint32_t *cost, uint32_t *ticks)
{
    uint64_t t0 = tae_timer_ticks();
    uint32_t c0 = tae_port_cycles();
    tae_calib_loop(n);
    uint32_t c1 = tae_port_cycles();
    uint64_t t1 = tae_timer_ticks();
    *cost = c1 - c0;
    *ticks = (uint32_t)(t1 - t0);
}

void tae_app_init(void)
{
    uint32_t c0 = tae_port_cycles();
    uint32_t c1 = tae_port_cycles();
    uint32_t cost1, ticks1, cost2, ticks2;
    tae_calib_measure(1000u, &cost1, &ticks1);
    tae_calib_measure(100000u, &cost2, &ticks2);
    tae_uart_puts("CALIB unit=");
    tae_uart_puts(tae_port_cycles_unit());
    tae_uart_puts(" empty=");
    tae_uart_put_dec(c1 - c0);
    tae_uart_puts(" n1=1000 c1=");
    tae_uart_put_dec(cost1);
    tae_uart_puts(" t1=");
    tae_uart_put_dec(ticks1);
    tae_uart_puts(" n2=100000 c2=");
    tae_uart_put_dec(cost2);
    tae_uart_puts(" t2=");
    tae_uart_put_dec(ticks2);
    tae_uart_puts("\r\n");
    tae_semihost_exit(TAE_EMU_EXIT_OK);
}

void tae_app_on_bytes(const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
}

void tae_app_poll(void) {}
