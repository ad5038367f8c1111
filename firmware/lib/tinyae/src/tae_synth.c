/* tinyae — synthetic vibration source; see tae_synth.h and train/data/synthetic.py (the formulas). */
#include "tae_synth.h"

#include <math.h>

#define TAE_TWO_PI 6.2831855f
#define STREAM_PARAMS 1u
#define STREAM_NOISE 2u
#define STREAM_SPIKE 8u

static const float base_h[TAE_SYNTH_CHANNELS][3] = {
    {0.30f, 0.10f, 0.05f}, {0.25f, 0.08f, 0.04f}, {0.08f, 0.05f, 0.03f}};
static const float noise_std[TAE_SYNTH_CHANNELS] = {0.03f, 0.03f, 0.02f};
static const float bearing_gain[TAE_SYNTH_CHANNELS] = {1.0f, 0.8f, 0.5f};
static const float obvious[TAE_SYNTH_FAULT_COUNT] = {0.0f, 1.2f, 0.8f, 1.0f, 0.18f, 1.5f, 1.0f};
#define BEARING_RATE 0.43f
#define SPIKE_PROB 0.02f

/* lowbias32 (Chris Wellons' hash-prospector constants). */
uint32_t tae_synth_hash(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

float tae_synth_uniform(uint32_t key, uint32_t counter) {
    return (float)(tae_synth_hash(key + counter) >> 8) * (1.0f / 16777216.0f);
}

static uint32_t stream_key(uint32_t seed, uint32_t stream) {
    return tae_synth_hash(seed * 0x9e3779b9u + stream);
}

static float frac(float x) { return x - floorf(x); }

void tae_synth_init(tae_synth_t *s, uint32_t seed, float sample_rate_hz) {
    uint32_t key = stream_key(seed, STREAM_PARAMS);
    float u[32];
    for (uint32_t i = 0; i < 32u; i++) u[i] = tae_synth_uniform(key, i);
    for (int c = 0; c < TAE_SYNTH_CHANNELS; c++) {
        for (int k = 0; k < 3; k++) {
            s->h[c][k] = base_h[c][k] * (0.8f + 0.4f * u[1 + 3 * c + k]);
            s->p[c][k] = u[10 + 3 * c + k];
        }
        s->noise_key[c] = stream_key(seed, STREAM_NOISE + (uint32_t)c);
    }
    s->g[0] = 0.1f * (u[19] - 0.5f);
    s->g[1] = 0.1f * (u[20] - 0.5f);
    s->g[2] = 0.98f + 0.04f * u[21];
    s->f0 = 9.0f + 3.0f * u[0];
    s->ms = 0.02f + 0.02f * u[22];
    s->qs = u[24];
    s->ma = 0.10f + 0.10f * u[25];
    s->qa = u[27];
    s->fs = sample_rate_hz > 0.0f ? sample_rate_hz : 100.0f;
    s->rs = 1.0f / ((30.0f + 30.0f * u[23]) * s->fs);
    s->ra = 1.0f / ((20.0f + 30.0f * u[26]) * s->fs);
    s->f0_over_fs = s->f0 / s->fs;
    s->spike_key = stream_key(seed, STREAM_SPIKE);
    s->n = 0;
    s->ph = 0.0f;
    s->ph_b = 0.0f;
    s->ph_h = 0.0f;
    s->fault = TAE_SYNTH_FAULT_NONE;
    s->severity = 0.0f;
}

float tae_synth_default_severity(int kind) {
    return (kind > 0 && kind < TAE_SYNTH_FAULT_COUNT) ? obvious[kind] : 0.0f;
}

void tae_synth_set_fault_severity(tae_synth_t *s, int kind, float severity) {
    if (kind <= 0 || kind >= TAE_SYNTH_FAULT_COUNT) {
        s->fault = TAE_SYNTH_FAULT_NONE;
        s->severity = 0.0f;
        return;
    }
    s->fault = kind;
    s->severity = severity;
}

void tae_synth_set_fault(tae_synth_t *s, int kind) {
    tae_synth_set_fault_severity(s, kind, tae_synth_default_severity(kind));
}

void tae_synth_next(tae_synth_t *s, float *sample) {
    const float nf = (float)s->n;
    const int fault = s->fault;
    const float sev = s->severity;
    float speed = 1.0f + s->ms * sinf(TAE_TWO_PI * frac(nf * s->rs + s->qs));
    if (fault == TAE_SYNTH_FAULT_FREQ_SHIFT) speed = speed * (1.0f + sev);
    const float amp = 1.0f + s->ma * sinf(TAE_TWO_PI * frac(nf * s->ra + s->qa));
    const float inc = speed * s->f0_over_fs;
    const float inc_b = inc * BEARING_RATE;
    const float nyq = 0.45f * s->fs;

    for (int c = 0; c < TAE_SYNTH_CHANNELS; c++) {
        float vib = 0.0f;
        for (int k = 0; k < 3; k++) {
            const float kf = (float)(k + 1);
            float a = s->h[c][k];
            if (k == 0 && c < 2 && fault == TAE_SYNTH_FAULT_IMBALANCE) a = a * (1.0f + sev);
            if (k > 0 && fault == TAE_SYNTH_FAULT_LOOSENESS) a = a * (1.0f + kf * sev);
            if (kf * s->f0 * speed < nyq) vib = vib + a * sinf(TAE_TWO_PI * frac(kf * s->ph + s->p[c][k]));
        }
        if (fault == TAE_SYNTH_FAULT_LOOSENESS) {
            vib = vib + (0.5f * sev * s->h[c][0]) * sinf(TAE_TWO_PI * s->ph_h);
            if (c < 2) {
                const float lim = (1.2f - 0.4f * sev) * s->h[c][0];
                if (vib > lim) vib = lim;
                if (vib < -lim) vib = -lim;
            }
        }
        float x = s->g[c] + amp * vib;
        if (fault == TAE_SYNTH_FAULT_BEARING) {
            const float tau = s->ph_b / inc_b;
            const float ring = expf(-tau / (0.02f * s->fs)) * sinf(TAE_TWO_PI * 0.3f * tau);
            x = x + (sev * bearing_gain[c]) * ring;
        }
        const uint32_t k4 = 4u * s->n;
        const float u0 = tae_synth_uniform(s->noise_key[c], k4);
        const float u1 = tae_synth_uniform(s->noise_key[c], k4 + 1u);
        const float u2 = tae_synth_uniform(s->noise_key[c], k4 + 2u);
        const float u3 = tae_synth_uniform(s->noise_key[c], k4 + 3u);
        const float gauss = (((u0 + u1) + u2) + u3 - 2.0f) * 1.7320508f;
        sample[c] = x + noise_std[c] * gauss;
    }
    if (fault == TAE_SYNTH_FAULT_SPIKES) {
        const uint32_t k4 = 4u * s->n;
        if (tae_synth_uniform(s->spike_key, k4) < SPIKE_PROB) {
            const float us1 = tae_synth_uniform(s->spike_key, k4 + 1u);
            const float us2 = tae_synth_uniform(s->spike_key, k4 + 2u);
            const float us3 = tae_synth_uniform(s->spike_key, k4 + 3u);
            int axis = (int)(us2 * 3.0f);
            if (axis > 2) axis = 2;
            float mag = sev * (0.7f + 0.6f * us3);
            if (us1 < 0.5f) mag = -mag;
            sample[axis] = sample[axis] + mag;
        }
    }
    if (fault == TAE_SYNTH_FAULT_DROPOUT) {
        if (sev < 0.5f) {
            sample[2] = s->g[2];
        } else {
            sample[2] = 0.0f;
        }
    }
    /* advance the phase accumulators (sample n used phase(n)) */
    s->ph = s->ph + inc;
    s->ph = s->ph - floorf(s->ph);
    s->ph_b = s->ph_b + inc_b;
    s->ph_b = s->ph_b - floorf(s->ph_b);
    s->ph_h = s->ph_h + inc * 0.5f;
    s->ph_h = s->ph_h - floorf(s->ph_h);
    s->n++;
}
