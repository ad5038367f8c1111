/* tinyae — device-cost bench for the emulated Cortex-M4F (QEMU mps2-an386), built by tools/bench.
 *
 * A stand-in application for firmware/targets/mps2_an386/main.c (the emu_test_app.h interface, like
 * calib_app.c): it runs the compiled engine on the host reference's own int8 input windows
 * (bench_vectors.h, written by tools/bench/device.py from the model's test_vectors.npz), counts the
 * instructions of every tae_engine_invoke() with tae_port_cycles() (SysTick under -icount shift=6 =
 * exact instruction counts, timer.c), checks each output against the host reference's int8 output
 * (tflite_micro), prints one line and ends QEMU through semihosting:
 *
 *   BENCH windows=N reps=R min=A max=B sum=S empty=E mismatches=M first_bad=I
 *
 * min/max/sum are per-invoke counts with the empty measurement E (two back-to-back tae_port_cycles()
 * calls) already subtracted. No host traffic reaches the UART during the loop, so only SysTick's wrap
 * interrupt (every 16.7 M ticks) can land inside a measurement; `min` is the clean figure.
 *
 * TAE_BENCH_BASELINE builds the same harness and vectors with a do-nothing invoke and without the
 * engine and the model: the size difference between the two images is what engine + model add.
 *
 * TAE_BENCH_LINK builds a UART throughput image instead (no engine, no vectors): after "LINK ready" it
 * waits for a command byte. 'U': it swallows the next TAE_BENCH_LINK_BYTES bytes and answers
 * "UP n dropped=D" (host -> device rate); 'D': it writes TAE_BENCH_LINK_BYTES bytes (device -> host);
 * 'X': both directions at once in a stream's proportions (see tae_link_x_byte). */
#include <stddef.h>
#include <stdint.h>

#include "emu_test_app.h"
#include "mps2_an386.h"
#include "tae_port.h"

const char tae_emu_app_name[] = "bench";

#ifdef TAE_BENCH_LINK
#ifndef TAE_BENCH_LINK_BYTES
#define TAE_BENCH_LINK_BYTES 131072u
#endif
static uint32_t tae_link_left; /* bytes still expected in 'U' mode; 0 = waiting for a command */
static uint32_t tae_link_dropped_at_start;
/* 'X' mode (duplex, a stream's byte pattern without its work): the command "X<up>,<down>,<units>\n";
 * then for every <up> bytes received the image writes <down> bytes, <units> times, and answers
 * "XD <units> dropped=D". */
static uint32_t tae_x_param[3];
static uint32_t tae_x_field; /* 1..3 while the command's numbers are parsed, 4 while streaming */
static uint32_t tae_x_got;   /* bytes of the current unit received */
static uint32_t tae_x_done;  /* units answered */

static void tae_link_x_byte(uint8_t b)
{
    static uint8_t block[256];
    if (tae_x_field <= 3u) {
        if (b >= (uint8_t)'0' && b <= (uint8_t)'9') {
            tae_x_param[tae_x_field - 1u] = tae_x_param[tae_x_field - 1u] * 10u + (uint32_t)(b - (uint8_t)'0');
        } else if (b == (uint8_t)',' && tae_x_field < 3u) {
            tae_x_field++;
        } else if (b == (uint8_t)'\n' && tae_x_field == 3u) {
            tae_x_field = 4u;
            tae_x_got = tae_x_done = 0u;
            tae_link_dropped_at_start = tae_uart_rx_dropped();
            for (uint32_t k = 0u; k < sizeof(block); ++k) {
                block[k] = (uint8_t)(k | 1u); /* never 0x00: a stream's frames hold none but their end */
            }
        }
        return;
    }
    if (++tae_x_got < tae_x_param[0]) {
        return;
    }
    tae_x_got = 0u;
    for (uint32_t sent = 0u; sent < tae_x_param[1]; sent += sizeof(block)) {
        uint32_t n = tae_x_param[1] - sent;
        (void)tae_port_write(block, n < sizeof(block) ? n : sizeof(block));
    }
    if (++tae_x_done == tae_x_param[2]) {
        tae_x_field = 0u;
        tae_uart_puts("XD ");
        tae_uart_put_dec(tae_x_done);
        tae_uart_puts(" dropped=");
        tae_uart_put_dec(tae_uart_rx_dropped() - tae_link_dropped_at_start);
        tae_uart_puts("\r\n");
    }
}

void tae_app_init(void) { tae_uart_puts("LINK ready\r\n"); }

void tae_app_on_bytes(const uint8_t *data, size_t len)
{
    for (size_t i = 0u; i < len; ++i) {
        if (tae_x_field != 0u) {
            tae_link_x_byte(data[i]);
        } else if (tae_link_left > 0u) {
            if (--tae_link_left == 0u) {
                tae_uart_puts("UP ");
                tae_uart_put_dec(TAE_BENCH_LINK_BYTES);
                tae_uart_puts(" dropped=");
                tae_uart_put_dec(tae_uart_rx_dropped() - tae_link_dropped_at_start);
                tae_uart_puts("\r\n");
            }
        } else if (data[i] == (uint8_t)'X') {
            tae_x_field = 1u;
            tae_x_param[0] = tae_x_param[1] = tae_x_param[2] = 0u;
        } else if (data[i] == (uint8_t)'U') {
            tae_link_left = TAE_BENCH_LINK_BYTES;
            tae_link_dropped_at_start = tae_uart_rx_dropped();
        } else if (data[i] == (uint8_t)'D') {
            static uint8_t block[256];
            for (uint32_t k = 0u; k < sizeof(block); ++k) {
                block[k] = (uint8_t)k;
            }
            for (uint32_t sent = 0u; sent < TAE_BENCH_LINK_BYTES; sent += sizeof(block)) {
                (void)tae_port_write(block, sizeof(block));
            }
        }
    }
}

void tae_app_poll(void) {}

#else /* the engine bench */

#include "bench_vectors.h"
#ifndef TAE_BENCH_BASELINE
#include "tae_engine.h"
#endif

#ifndef TAE_BENCH_REPS
#define TAE_BENCH_REPS 3u
#endif

#ifdef TAE_BENCH_BASELINE
__attribute__((noinline)) static int tae_bench_invoke(const int8_t *in, int8_t *out)
{
    __asm volatile("" ::"r"(in), "r"(out) : "memory");
    return 0;
}
#else
#define tae_bench_invoke tae_engine_invoke
#endif

static int8_t tae_bench_out[TAE_BENCH_OUTPUT_SIZE];

void tae_app_init(void)
{
    uint32_t mn = 0xFFFFFFFFu, mx = 0u, sum = 0u, mismatches = 0u, first_bad = 0xFFFFFFFFu;
    uint32_t e0 = tae_port_cycles();
    uint32_t e1 = tae_port_cycles();
    uint32_t empty = e1 - e0;
#ifndef TAE_BENCH_BASELINE
    if (tae_engine_init() != TAE_ENGINE_OK) {
        tae_uart_puts("BENCH error=engine_init\r\n");
        tae_semihost_exit(1u);
    }
#endif
    for (uint32_t rep = 0u; rep < TAE_BENCH_REPS; ++rep) {
        for (uint32_t w = 0u; w < TAE_BENCH_WINDOWS; ++w) {
            const int8_t *in = &tae_bench_input[w * TAE_BENCH_INPUT_SIZE];
            const int8_t *want = &tae_bench_expected[w * TAE_BENCH_OUTPUT_SIZE];
            uint32_t c0 = tae_port_cycles();
            int status = tae_bench_invoke(in, tae_bench_out);
            uint32_t c1 = tae_port_cycles();
            uint32_t cost = (c1 - c0) - empty;
            mn = cost < mn ? cost : mn;
            mx = cost > mx ? cost : mx;
            if (rep == 0u) {
                sum += cost;
            }
            uint32_t bad = status != 0 ? 1u : 0u;
            for (uint32_t i = 0u; i < TAE_BENCH_OUTPUT_SIZE; ++i) {
                bad |= tae_bench_out[i] != want[i] ? 1u : 0u;
            }
            if (bad != 0u && rep == 0u) {
                mismatches++;
                first_bad = first_bad == 0xFFFFFFFFu ? w : first_bad;
            }
        }
    }
    tae_uart_puts("BENCH windows=");
    tae_uart_put_dec(TAE_BENCH_WINDOWS);
    tae_uart_puts(" reps=");
    tae_uart_put_dec(TAE_BENCH_REPS);
    tae_uart_puts(" min=");
    tae_uart_put_dec(mn);
    tae_uart_puts(" max=");
    tae_uart_put_dec(mx);
    tae_uart_puts(" sum=");
    tae_uart_put_dec(sum);
    tae_uart_puts(" empty=");
    tae_uart_put_dec(empty);
    tae_uart_puts(" mismatches=");
    tae_uart_put_dec(mismatches);
    tae_uart_puts(" first_bad=");
    tae_uart_put_dec(first_bad);
    tae_uart_puts("\r\n");
    tae_semihost_exit(TAE_EMU_EXIT_OK);
}

void tae_app_on_bytes(const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
}

void tae_app_poll(void) {}

#endif /* TAE_BENCH_LINK */
