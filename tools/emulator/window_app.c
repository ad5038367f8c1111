/* tinyae — the window-timing harness for the emulated Cortex-M4F (QEMU mps2-an386), built by
 * tools/emulator/timing.py.
 *
 * A stand-in application for firmware/targets/mps2_an386/main.c (the emu_test_app.h interface, like
 * calib_app.c): it pushes the host reference's raw test samples (window_samples.h, written by
 * timing.py from the model's test_vectors.npz) through the real per-sample pipeline, tae_pipeline_push()
 * (window assembly, front-end, normalization, int8 quantization, the engine, the score, the decision),
 * with the model's engine (compiled or TFLM), no protocol and no UART traffic. It reads tae_port_cycles()
 * (SysTick under -icount = exact instruction counts) around every push that completes a window, checks
 * each window's int8 outputs against the host reference's, prints
 *
 *   TIMING windows=N hop=H mismatches=M empty=E
 *   TIMING w=<i> push=<instructions of that push>        (one line per window)
 *
 * and ends QEMU through semihosting. timing.py traces the same run instruction by instruction and checks
 * its counts against these. */
#include <stddef.h>
#include <stdint.h>

#include "emu_test_app.h"
#include "mps2_an386.h"
#include "tae_engine.h"
#include "tae_pipeline.h"
#include "tae_port.h"
#include "window_samples.h"

const char tae_emu_app_name[] = "window";

static tae_pipeline_t tae_timing_pipe;
static uint32_t tae_timing_cost[TAE_TIMING_WINDOWS];

void tae_app_init(void)
{
    tae_result_t r;
    uint32_t windows = 0u, mismatches = 0u;
    uint32_t e0 = tae_port_cycles();
    uint32_t e1 = tae_port_cycles();
    const uint32_t empty = e1 - e0;
    if (tae_engine_init() != TAE_ENGINE_OK) {
        tae_uart_puts("TIMING error=engine_init\r\n");
        tae_semihost_exit(1u);
    }
    tae_pipeline_init(&tae_timing_pipe);
    for (uint32_t i = 0u; i < TAE_TIMING_SAMPLES && windows < TAE_TIMING_WINDOWS; ++i) {
        const uint32_t c0 = tae_port_cycles();
        const int done = tae_pipeline_push(&tae_timing_pipe, &tae_timing_samples[i * TAE_CHANNELS], &r);
        const uint32_t c1 = tae_port_cycles();
        if (!done) {
            continue;
        }
        tae_timing_cost[windows] = (c1 - c0) - empty;
        uint32_t bad = r.status != 0 ? 1u : 0u;
        for (uint32_t k = 0u; k < TAE_OUTPUT_SIZE; ++k) {
            bad |= r.output_q[k] != tae_timing_expected[windows * TAE_OUTPUT_SIZE + k] ? 1u : 0u;
        }
        mismatches += bad;
        windows++;
    }
    tae_uart_puts("TIMING windows=");
    tae_uart_put_dec(windows);
    tae_uart_puts(" hop=");
    tae_uart_put_dec(TAE_HOP);
    tae_uart_puts(" mismatches=");
    tae_uart_put_dec(mismatches);
    tae_uart_puts(" empty=");
    tae_uart_put_dec(empty);
    tae_uart_puts("\r\n");
    for (uint32_t w = 0u; w < windows; ++w) {
        tae_uart_puts("TIMING w=");
        tae_uart_put_dec(w);
        tae_uart_puts(" push=");
        tae_uart_put_dec(tae_timing_cost[w]);
        tae_uart_puts("\r\n");
    }
    tae_semihost_exit(TAE_EMU_EXIT_OK);
}

void tae_app_on_bytes(const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
}

void tae_app_poll(void) {}
