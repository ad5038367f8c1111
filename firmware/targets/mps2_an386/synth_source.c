/* tinyae — the emulated board's sensor for sensor mode (tae_port_read_sample): the core's
 * deterministic synthetic 3-axis vibration source (tae_synth.c, the C mirror of
 * train/data/synthetic.py), so CI streams "live" data without hardware and the board produces the
 * very signal the default model was trained on (machine seed TAE_EMU_SYNTH_SEED, default 0 =
 * configs/default.toml's data seed). A model with more channels than the generator's three gets
 * channel c from generator axis c % 3.
 *
 * Timing: sample n is due at virtual time n / TAE_SAMPLE_RATE_HZ, measured with SysTick. Under
 * `-icount` virtual time advances with executed instructions (64 ns each at shift=6), not with the
 * wall clock. A late caller gets the due samples back to back: samples are never skipped, so the
 * sequence is the same however fast the host reads (under QEMU the UART usually sets the pace). */
#include <stdint.h>

#include "model_config.h"
#include "mps2_an386.h"
#include "tae_port.h"
#include "tae_synth.h"

#ifndef TAE_EMU_SYNTH_SEED
#define TAE_EMU_SYNTH_SEED 0u
#endif

static tae_synth_t tae_src;
static uint64_t tae_src_next_due; /* SysTick ticks */
static uint32_t tae_src_period;   /* SysTick ticks per sample */
static int tae_src_ready;

void tae_synth_source_reset(uint32_t seed)
{
    float period = (float)TAE_EMU_CPU_HZ / (float)TAE_SAMPLE_RATE_HZ;
    tae_src_period = period >= 1.0f ? (uint32_t)(period + 0.5f) : 1u;
    tae_synth_init(&tae_src, seed, (float)TAE_SAMPLE_RATE_HZ);
    tae_src_next_due = tae_timer_ticks();
    tae_src_ready = 1;
}

int tae_port_read_sample(float *sample)
{
    if (!tae_src_ready) {
        tae_synth_source_reset(TAE_EMU_SYNTH_SEED);
    }
    if (tae_timer_ticks() < tae_src_next_due) {
        return 0;
    }
    tae_src_next_due += tae_src_period;
    float axes[TAE_SYNTH_CHANNELS];
    tae_synth_next(&tae_src, axes);
    for (uint32_t c = 0; c < (uint32_t)TAE_CHANNELS; ++c) {
        sample[c] = axes[c % (uint32_t)TAE_SYNTH_CHANNELS];
    }
    return 1;
}
