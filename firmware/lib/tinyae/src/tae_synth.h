/* tinyae — synthetic 3-axis vibration source (a small motor or fan on an IMU), the C mirror of
 * train/data/synthetic.py: same counter-based hash, same float32 formulas in the same order, so the
 * output equals the Python generator's up to sinf/expf rounding. Used by the emulator's and boards'
 * synthetic sensor mode; tae_synth_set_fault() injects a named fault to demonstrate alarms.
 * No heap, no stdio. */
#ifndef TAE_SYNTH_H
#define TAE_SYNTH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TAE_SYNTH_CHANNELS 3 /* acc_x, acc_y, acc_z in g */

/* Same codes as FAULT_KINDS in train/data/synthetic.py. */
typedef enum {
    TAE_SYNTH_FAULT_NONE = 0,
    TAE_SYNTH_FAULT_IMBALANCE = 1,
    TAE_SYNTH_FAULT_BEARING = 2,
    TAE_SYNTH_FAULT_LOOSENESS = 3,
    TAE_SYNTH_FAULT_FREQ_SHIFT = 4,
    TAE_SYNTH_FAULT_SPIKES = 5,
    TAE_SYNTH_FAULT_DROPOUT = 6,
    TAE_SYNTH_FAULT_COUNT = 7
} tae_synth_fault_t;

typedef struct {
    /* machine parameters, derived from the seed */
    float fs;
    float f0_over_fs;
    float h[TAE_SYNTH_CHANNELS][3];
    float p[TAE_SYNTH_CHANNELS][3];
    float g[TAE_SYNTH_CHANNELS];
    float ms, rs, qs, ma, ra, qa, f0;
    uint32_t noise_key[TAE_SYNTH_CHANNELS];
    uint32_t spike_key;
    /* state */
    uint32_t n;   /* sample counter */
    float ph;     /* shaft phase, turns in [0, 1) */
    float ph_b;   /* bearing-defect phase */
    float ph_h;   /* half-order phase (looseness) */
    int fault;
    float severity;
} tae_synth_t;

/* Start machine `seed` at sample 0 (sample_rate_hz > 0; 100 Hz is the default data set's rate). */
void tae_synth_init(tae_synth_t *s, uint32_t seed, float sample_rate_hz);

/* Write the next sample (TAE_SYNTH_CHANNELS floats). */
void tae_synth_next(tae_synth_t *s, float *sample);

/* Inject a fault from the next sample on at its "obvious" severity (TAE_SYNTH_FAULT_NONE ends it). */
void tae_synth_set_fault(tae_synth_t *s, int kind);

/* Same with an explicit severity (meaning per kind, see train/data/synthetic.py). */
void tae_synth_set_fault_severity(tae_synth_t *s, int kind, float severity);

/* The "obvious" severity of a fault kind (0 for NONE or an unknown kind). */
float tae_synth_default_severity(int kind);

/* lowbias32 hash and the uniform float in [0, 1) derived from it (exposed for tests). */
uint32_t tae_synth_hash(uint32_t x);
float tae_synth_uniform(uint32_t key, uint32_t counter);

#ifdef __cplusplus
}
#endif

#endif /* TAE_SYNTH_H */
