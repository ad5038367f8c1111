/* tinyae — front-end harness for the emulated Cortex-M4F (QEMU mps2-an386), built by
 * tools/bench/frontend.py: the device side of the host-vs-device feature check and the front-end's
 * cost figures.
 *
 * A stand-in application for firmware/targets/mps2_an386/main.c (emu_test_app.h, like calib_app.c).
 * For every window of frontend_vectors.h (raw float32 bit patterns, stored as the pipeline's sample
 * ring with the oldest sample at slot tae_fe_bench_oldest[w]) it runs tae_frontend_compute(), counts
 * its instructions with tae_port_cycles() (SysTick under -icount shift=6: exact counts) and prints
 *
 *   FE <w> <instructions> <feature bits as 8 hex digits, space-separated>
 *   FRONTEND windows=N min=A max=B empty=E
 *
 * then ends QEMU through semihosting. The empty measurement E is already subtracted.
 * TAE_FE_BENCH_BASELINE builds the same harness and vectors without the front-end: the size
 * difference between the two images is what the front-end adds. */
#include <stddef.h>
#include <stdint.h>

#include "emu_test_app.h"
#include "frontend_vectors.h"
#include "mps2_an386.h"
#include "tae_port.h"

#ifndef TAE_FE_BENCH_BASELINE
#include "tae_frontend.h"
static tae_frontend_work_t tae_fe_bench_work;
#define TAE_FE_BENCH_OUT TAE_FEATURE_SIZE
#else
#define TAE_FE_BENCH_OUT 1
#endif

const char tae_emu_app_name[] = "frontend";

static union {
    float f[TAE_FE_BENCH_OUT];
    uint32_t u[TAE_FE_BENCH_OUT];
} tae_fe_bench_out;

static void tae_fe_bench_hex8(uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    char text[9];
    for (int i = 7; i >= 0; --i) {
        text[i] = digits[v & 0xFu];
        v >>= 4;
    }
    text[8] = '\0';
    tae_uart_puts(text);
}

void tae_app_init(void)
{
    uint32_t mn = 0xFFFFFFFFu, mx = 0u;
    const uint32_t e0 = tae_port_cycles();
    const uint32_t e1 = tae_port_cycles();
    const uint32_t empty = e1 - e0;
    for (uint32_t w = 0u; w < TAE_FE_BENCH_WINDOWS; ++w) {
        const uint32_t c0 = tae_port_cycles();
#ifndef TAE_FE_BENCH_BASELINE
        tae_frontend_compute(tae_fe_bench_rings[w].f, tae_fe_bench_oldest[w], tae_fe_bench_out.f, &tae_fe_bench_work);
#else
        __asm volatile("" ::"r"(&tae_fe_bench_rings[w]), "r"(&tae_fe_bench_out) : "memory");
#endif
        const uint32_t c1 = tae_port_cycles();
        const uint32_t cost = (c1 - c0) - empty;
        mn = cost < mn ? cost : mn;
        mx = cost > mx ? cost : mx;
        tae_uart_puts("FE ");
        tae_uart_put_dec(w);
        tae_uart_puts(" ");
        tae_uart_put_dec(cost);
        for (uint32_t i = 0u; i < (uint32_t)TAE_FE_BENCH_OUT; ++i) {
            tae_uart_puts(" ");
            tae_fe_bench_hex8(tae_fe_bench_out.u[i]);
        }
        tae_uart_puts("\r\n");
    }
    tae_uart_puts("FRONTEND windows=");
    tae_uart_put_dec(TAE_FE_BENCH_WINDOWS);
    tae_uart_puts(" min=");
    tae_uart_put_dec(mn);
    tae_uart_puts(" max=");
    tae_uart_put_dec(mx);
    tae_uart_puts(" empty=");
    tae_uart_put_dec(empty);
    tae_uart_puts("\r\n");
    tae_semihost_exit(0u);
}

void tae_app_on_bytes(const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
}

void tae_app_poll(void) {}
