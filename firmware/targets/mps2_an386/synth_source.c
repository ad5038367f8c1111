/* tinyae — the emulated board's sensor: a deterministic synthetic multi-axis vibration signal for
 * sensor mode (tae_port_read_sample), so CI streams "live" data without hardware (the idea of
 * Zephyr's adc_anomaly_detector sample source; written here).
 *
 * Values: sample n of channel c is a function of n alone —
 *   x_c(n) = g_c + amp(n) * (h1_c sin 2πφ(n) + h2_c sin 2π(2φ(n)+p2_c) + h3_c sin 2π(3φ(n)+p3_c)) + σ_c ν_c(n)
 * with a shaft phase φ accumulated in float32 (f0 = 10 Hz, capped below 0.15 fs), a slow load drift
 * amp(n) = 1 + 0.15 sin 2π(n / (40 s · fs)), and noise ν from a seeded xorshift32 (sum of four
 * uniforms, mean 0, variance 1). When the core's C mirror of the training generator
 * (tae_synth.h, train/data/synthetic.py) exists, it is used instead, so the board streams exactly
 * the signal the default model was trained on.
 *
 * Timing: sample n is due at virtual time n / TAE_SAMPLE_RATE_HZ, measured with SysTick. Under
 * `-icount` virtual time advances with executed instructions (64 ns each at shift=6), not with the
 * wall clock. A late caller gets the due samples back to back: samples are never skipped, so the
 * sequence is the same however fast the host reads (the UART usually sets the pace under QEMU). */
#include <math.h>
#include <stdint.h>

#include "model_config.h"
#include "mps2_an386.h"
#include "tae_port.h"

#define TAE_SYNTH_DEFAULT_SEED 0x2545F491u

static uint32_t tae_src_rng;
static uint64_t tae_src_next_due; /* SysTick ticks */
static uint32_t tae_src_period;   /* SysTick ticks per sample */
static uint32_t tae_src_index;
static float tae_src_phase;       /* shaft phase in turns, [0, 1) */
static int tae_src_ready;

static const float tae_src_h[3][3] = {{0.30f, 0.10f, 0.05f}, {0.25f, 0.08f, 0.04f}, {0.08f, 0.05f, 0.03f}};
static const float tae_src_p[3][2] = {{0.13f, 0.71f}, {0.42f, 0.05f}, {0.88f, 0.37f}};
static const float tae_src_g[3] = {0.02f, -0.03f, 1.0f};
static const float tae_src_sigma[3] = {0.03f, 0.03f, 0.02f};

static uint32_t tae_src_xorshift(void)
{
    uint32_t x = tae_src_rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    tae_src_rng = x;
    return x;
}

static float tae_src_uniform(void) { return (float)(tae_src_xorshift() >> 8) * (1.0f / 16777216.0f); }

static float tae_src_sin_turns(float turns)
{
    float f = turns - floorf(turns);
    return sinf(6.2831855f * f);
}

void tae_synth_source_reset(uint32_t seed)
{
    tae_src_rng = seed != 0u ? seed : TAE_SYNTH_DEFAULT_SEED;
    float period = (float)TAE_EMU_CPU_HZ / (float)TAE_SAMPLE_RATE_HZ;
    tae_src_period = period >= 1.0f ? (uint32_t)(period + 0.5f) : 1u;
    tae_src_next_due = tae_timer_ticks();
    tae_src_index = 0u;
    tae_src_phase = 0.0f;
    tae_src_ready = 1;
}

static void tae_src_generate(float *sample)
{
    const float fs = (float)TAE_SAMPLE_RATE_HZ;
    float f0 = 10.0f;
    if (f0 > 0.15f * fs) {
        f0 = 0.15f * fs; /* keep the 3rd harmonic below Nyquist at low rates */
    }
    float drift_turns = (float)tae_src_index / (40.0f * fs);
    float amp = 1.0f + 0.15f * tae_src_sin_turns(drift_turns);
    float phi = tae_src_phase;
    for (uint32_t c = 0; c < (uint32_t)TAE_CHANNELS; ++c) {
        uint32_t a = c % 3u;
        float vib = tae_src_h[a][0] * tae_src_sin_turns(phi) +
                    tae_src_h[a][1] * tae_src_sin_turns(2.0f * phi + tae_src_p[a][0]) +
                    tae_src_h[a][2] * tae_src_sin_turns(3.0f * phi + tae_src_p[a][1]);
        float nu = (tae_src_uniform() + tae_src_uniform() + tae_src_uniform() + tae_src_uniform() - 2.0f) *
                   1.7320508f;
        sample[c] = tae_src_g[a] + amp * vib + tae_src_sigma[a] * nu;
    }
    float next = tae_src_phase + f0 / fs;
    tae_src_phase = next - floorf(next);
    tae_src_index++;
}

int tae_port_read_sample(float *sample)
{
    if (!tae_src_ready) {
        tae_synth_source_reset(0u);
    }
    if (tae_timer_ticks() < tae_src_next_due) {
        return 0;
    }
    tae_src_next_due += tae_src_period;
    tae_src_generate(sample);
    return 1;
}
