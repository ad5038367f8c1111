/* tinyae — on-site calibration's device cost on the emulated Cortex-M4F (QEMU mps2-an386), built by
 * tools/bench/calibration.py.
 *
 * A stand-in application for firmware/targets/mps2_an386/main.c (emu_test_app.h, like the target's own
 * calib_app.c, which is unrelated: it calibrates the instruction counter). It runs one whole on-site
 * calibration of TAE_CAL_BENCH_WINDOWS windows per phase exactly as tae_app.c drives it: samples of the
 * core's synthetic vibration source (tae_synth.c, seed 0: the default model's machine) go through
 * tae_calib_sample and the pipeline (compiled engine); each completed window through tae_calib_window;
 * the candidate correction into the pipeline for phase 2; then the record is packed and checked as the
 * boot does. tae_port_cycles() around every call (SysTick under -icount shift=6: exact instruction
 * counts, the empty measurement subtracted) gives, in one line:
 *
 *   CALBENCH n=N samples=S begin=B sample_min= sample_max= sample_sum= w1_min= w1_max= w1_sum=
 *     end1= w2_min= w2_max= w2_sum= end2= pack= unpack= infer1_min= infer2_min= outcome=O crc=C
 *
 * w1/w2: tae_calib_window on the windows of phase 1/2 but the last of each (end1/end2: the last, which
 * computes the correction / the threshold); infer1/infer2: the pipeline's own cost of a window without
 * and with the correction (result.cost). Storage writes are not counted: their cost is the board's
 * flash (semihosting here). */
#include <stddef.h>
#include <stdint.h>

#include "emu_test_app.h"
#include "mps2_an386.h"
#include "tae_calib.h"
#include "tae_engine.h"
#include "tae_pipeline.h"
#include "tae_port.h"
#include "tae_synth.h"

#ifndef TAE_CAL_BENCH_WINDOWS
#define TAE_CAL_BENCH_WINDOWS TAE_CALIB_WINDOWS
#endif
/* A calibration the core accepts: TAE_CALIB_MIN_WINDOWS to TAE_CALIB_WINDOWS per phase. */
typedef char tae_cb_check_windows[(TAE_CAL_BENCH_WINDOWS >= TAE_CALIB_MIN_WINDOWS &&
                                   TAE_CAL_BENCH_WINDOWS <= TAE_CALIB_WINDOWS) ? 1 : -1];

const char tae_emu_app_name[] = "calibration-bench";

static tae_calib_t tae_cb_cal;
static tae_pipeline_t tae_cb_pipe;
static tae_synth_t tae_cb_src;
static uint8_t tae_cb_packed[TAE_CALIB_RECORD_BYTES];
static tae_calib_record_t tae_cb_rec;

typedef struct {
    uint32_t min, max, sum, n;
} tae_cb_stat_t;

static void tae_cb_add(tae_cb_stat_t *s, uint32_t v)
{
    s->min = (s->n == 0u || v < s->min) ? v : s->min;
    s->max = v > s->max ? v : s->max;
    s->sum += v;
    s->n++;
}

static void tae_cb_field(const char *name, uint32_t v)
{
    tae_uart_puts(name);
    tae_uart_put_dec(v);
}

void tae_app_init(void)
{
    const uint32_t e0 = tae_port_cycles();
    const uint32_t e1 = tae_port_cycles();
    const uint32_t empty = e1 - e0;
    tae_cb_stat_t st_sample = {0u, 0u, 0u, 0u}, st_w1 = st_sample, st_w2 = st_sample;
    tae_cb_stat_t inf1 = st_sample, inf2 = st_sample;
    uint32_t c0, c1, begin, end1 = 0u, end2 = 0u, pack, unpack;
    int ev = TAE_CALIB_EV_NONE, verdict;
    const uint32_t total = tae_calib_phases() * (uint32_t)TAE_CAL_BENCH_WINDOWS;
    uint32_t done = 0u;

    (void)tae_engine_init();
    tae_pipeline_init(&tae_cb_pipe);
    tae_synth_init(&tae_cb_src, 0u, (float)TAE_SAMPLE_RATE_HZ);
    c0 = tae_port_cycles();
    (void)tae_calib_begin(&tae_cb_cal, (uint16_t)TAE_CAL_BENCH_WINDOWS);
    c1 = tae_port_cycles();
    begin = (c1 - c0) - empty;
    while (ev != TAE_CALIB_EV_DONE) {
        float axes[TAE_SYNTH_CHANNELS], sample[TAE_CHANNELS];
        tae_result_t r;
        tae_synth_next(&tae_cb_src, axes);
        for (uint32_t c = 0u; c < (uint32_t)TAE_CHANNELS; ++c) {
            sample[c] = axes[c % (uint32_t)TAE_SYNTH_CHANNELS];
        }
        const int counted = tae_cb_cal.state == (uint8_t)TAE_CALIB_STATE_STATS &&
                            tae_cb_cal.samples < tae_cb_cal.samples_needed;
        c0 = tae_port_cycles();
        tae_calib_sample(&tae_cb_cal, sample);
        c1 = tae_port_cycles();
        if (counted) {
            tae_cb_add(&st_sample, (c1 - c0) - empty);
        }
        if (!tae_pipeline_push(&tae_cb_pipe, sample, &r)) {
            continue;
        }
        tae_cb_add(tae_cb_pipe.corr_shift != NULL ? &inf2 : &inf1, r.cost);
        c0 = tae_port_cycles();
        ev = tae_calib_window(&tae_cb_cal, r.score, r.status);
        c1 = tae_port_cycles();
        done++;
        if (ev == TAE_CALIB_EV_CORRECTION) {
            end1 = (c1 - c0) - empty;
            tae_pipeline_set_correction(&tae_cb_pipe, tae_cb_cal.rec.shift, tae_cb_cal.rec.gain);
        } else if (ev == TAE_CALIB_EV_DONE) {
            end2 = (c1 - c0) - empty;
        } else {
            tae_cb_add(tae_cb_cal.state == (uint8_t)TAE_CALIB_STATE_STATS ? &st_w1 : &st_w2, (c1 - c0) - empty);
        }
        if (done > total) {
            break; /* cannot happen: the calibration ends on its last window */
        }
    }
    c0 = tae_port_cycles();
    (void)tae_calib_pack(&tae_cb_cal.rec, tae_cb_packed);
    c1 = tae_port_cycles();
    pack = (c1 - c0) - empty;
    c0 = tae_port_cycles();
    verdict = tae_calib_unpack(tae_cb_packed, sizeof tae_cb_packed, &tae_cb_rec);
    c1 = tae_port_cycles();
    unpack = (c1 - c0) - empty;

    tae_cb_field("CALBENCH n=", TAE_CAL_BENCH_WINDOWS);
    tae_cb_field(" phases=", tae_calib_phases());
    tae_cb_field(" samples=", st_sample.n);
    tae_cb_field(" windows=", done);
    tae_cb_field(" begin=", begin);
    tae_cb_field(" sample_min=", st_sample.min);
    tae_cb_field(" sample_max=", st_sample.max);
    tae_cb_field(" sample_sum=", st_sample.sum);
    tae_cb_field(" w1_min=", st_w1.min);
    tae_cb_field(" w1_max=", st_w1.max);
    tae_cb_field(" w1_sum=", st_w1.sum);
    tae_cb_field(" end1=", end1);
    tae_cb_field(" w2_min=", st_w2.min);
    tae_cb_field(" w2_max=", st_w2.max);
    tae_cb_field(" w2_sum=", st_w2.sum);
    tae_cb_field(" end2=", end2);
    tae_cb_field(" pack=", pack);
    tae_cb_field(" unpack=", unpack);
    tae_cb_field(" infer1_min=", inf1.min);
    tae_cb_field(" infer2_min=", inf2.min);
    tae_cb_field(" outcome=", tae_cb_cal.outcome);
    tae_cb_field(" verdict=", (uint32_t)verdict);
    tae_uart_puts(" crc=");
    tae_uart_put_hex32(tae_calib_record_crc(tae_cb_packed));
    tae_uart_puts("\r\n");
    tae_semihost_exit(TAE_EMU_EXIT_OK);
}

void tae_app_on_bytes(const uint8_t *data, size_t len)
{
    (void)data;
    (void)len;
}

void tae_app_poll(void) {}
