/* tinyae — the emulated board's sensor for sensor mode (tae_port_read_sample): the core's
 * deterministic synthetic 3-axis vibration source (tae_synth.c, the C mirror of
 * train/data/synthetic.py), so CI streams "live" data without hardware and the board produces the
 * very signal the default model was trained on (machine seed TAE_EMU_SYNTH_SEED, default 0 =
 * configs/default.toml's data seed). A model with more channels than the generator's three gets
 * channel c from generator axis c % 3. Every TELEMETRY frame says the source is synthetic
 * (TAE_CLOCK_SYNTHETIC), so the host can say so when a model trained on other data meets it.
 *
 * Timing: sample n is due at virtual time n / TAE_SAMPLE_RATE_HZ after the stream started, measured
 * with SysTick (tae_pace.h). Under `-icount` virtual time advances with executed instructions (64 ns
 * each at shift=6), not with the wall clock. By default a late caller gets the due samples back to
 * back (TAE_CLOCK_CATCH_UP): samples are never skipped, so the sequence is the same however fast the
 * host reads (under QEMU the UART usually sets the pace); they are counted as late.
 *
 * Test builds (mk/firmware-emu.mk):
 *   -D TAE_EMU_SENSOR_PACED     pace like a board's sensor: slots the loop was too late for are
 *                               skipped (the generator still advances through them, as time does)
 *   -D TAE_EMU_SENSOR_STALL=K   after every K-th sample the loop stalls for 2.5 sample periods (a slow
 *                               inference, a serial port that blocks): each stall costs one skipped and
 *                               one late sample when paced, late samples otherwise */
#include <stdint.h>

#include "model_config.h"
#include "mps2_an386.h"
#include "tae_pace.h"
#include "tae_port.h"
#include "tae_synth.h"

#ifndef TAE_EMU_SYNTH_SEED
#define TAE_EMU_SYNTH_SEED 0u
#endif
#if defined(TAE_EMU_SENSOR_PACED)
#define TAE_EMU_CATCH_UP 0
#else
#define TAE_EMU_CATCH_UP 1
#endif

static tae_synth_t tae_src;
static tae_pace_t tae_src_pace; /* in SysTick ticks */
static int tae_src_ready;
#if defined(TAE_EMU_SENSOR_STALL)
static uint32_t tae_src_taken;
#endif

void tae_synth_source_reset(uint32_t seed)
{
    float period = (float)TAE_EMU_CPU_HZ / (float)TAE_SAMPLE_RATE_HZ;
    tae_pace_init(&tae_src_pace, period >= 1.0f ? (uint32_t)(period + 0.5f) : 1u, TAE_EMU_CATCH_UP);
    tae_synth_init(&tae_src, seed, (float)TAE_SAMPLE_RATE_HZ);
    tae_src_ready = 1;
}

static void tae_src_init(void)
{
    if (!tae_src_ready) {
        tae_synth_source_reset(TAE_EMU_SYNTH_SEED);
    }
}

int tae_port_read_sample(float *sample)
{
    float axes[TAE_SYNTH_CHANNELS];
    uint32_t skipped;
    tae_src_init();
    skipped = tae_src_pace.skipped;
    if (!tae_pace_due(&tae_src_pace, (uint32_t)tae_timer_ticks())) {
        return 0;
    }
    for (skipped = tae_src_pace.skipped - skipped; skipped > 0u; --skipped) {
        tae_synth_next(&tae_src, axes); /* the machine went on while nobody read it */
    }
    tae_synth_next(&tae_src, axes);
    for (uint32_t c = 0; c < (uint32_t)TAE_CHANNELS; ++c) {
        sample[c] = axes[c % (uint32_t)TAE_SYNTH_CHANNELS];
    }
#if defined(TAE_EMU_SENSOR_STALL)
    if (++tae_src_taken % (uint32_t)(TAE_EMU_SENSOR_STALL) == 0u) {
        uint64_t until = tae_timer_ticks() + (5u * (uint64_t)tae_src_pace.period) / 2u;
        while (tae_timer_ticks() < until) {
        }
    }
#endif
    return 1;
}

void tae_port_sample_restart(void)
{
    tae_src_init();
    tae_pace_restart(&tae_src_pace);
}

void tae_port_sample_counts(tae_clock_counts_t *out)
{
    tae_src_init();
    out->skipped = tae_src_pace.skipped;
    out->late = tae_src_pace.late;
    out->flags = (uint8_t)(TAE_CLOCK_SYNTHETIC | (TAE_EMU_CATCH_UP ? TAE_CLOCK_CATCH_UP : 0u));
}
