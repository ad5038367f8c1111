/* tinyae — the per-sample pipeline: window assembly with hop, the feature front-end
 * (tae_frontend.h), preprocessing (normalize + int8 quantize), engine, score, decision. All buffers
 * are static sizes from model_config.h / frontend_config.h. */
#ifndef TAE_PIPELINE_H
#define TAE_PIPELINE_H

#include <stdint.h>

#include "model_config.h"
#include "tae_frontend.h"

/* Score kinds for TAE_SCORE_KIND (model_config.h may define them too, with the same values). */
#ifndef TAE_SCORE_MSE
#define TAE_SCORE_MSE 0
#endif
#ifndef TAE_SCORE_MAE
#define TAE_SCORE_MAE 1
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The generated constant arrays, defined once in tae_pipeline.c from model_config.h's
 * TAE_NORM_OFFSET_INIT and TAE_NORM_GAIN_INIT (the model's sha256 is in tae_calib.h). */
extern const float tae_norm_offset[TAE_NORM_PERIOD];
extern const float tae_norm_gain[TAE_NORM_PERIOD];

typedef struct {
    uint32_t seq;          /* window sequence number, 0-based, counts every completed window */
    float score;           /* reconstruction error, manifest's score definition */
    uint8_t anomaly;       /* score > threshold */
    uint8_t alarm;         /* >= k of the last n windows anomalous */
    int32_t status;        /* TAE_ENGINE_OK or an engine error */
    uint32_t cost;         /* tae_port_cycles() spent in preprocessing + engine + score */
    const int8_t *input_q;  /* TAE_INPUT_SIZE int8 network inputs (valid until the next push) */
    const int8_t *output_q; /* TAE_OUTPUT_SIZE int8 network outputs (valid until the next push) */
} tae_result_t;

typedef struct {
    float ring[TAE_WINDOW_LEN * TAE_CHANNELS]; /* last TAE_WINDOW_LEN samples, time-major ring */
    uint32_t head;          /* next write position, in samples */
    uint32_t filled;        /* samples in the ring, saturates at TAE_WINDOW_LEN */
    uint32_t since_window;  /* samples since the last completed window */
    uint32_t seq;
    float threshold;        /* runtime threshold (TAE_THRESHOLD unless overridden) */
    uint8_t history[TAE_DECISION_N]; /* anomaly flags of the last n windows */
    uint32_t history_pos;
    int8_t input_q[TAE_INPUT_SIZE];
    int8_t output_q[TAE_OUTPUT_SIZE];
    const float *corr_shift; /* on-site calibration's correction of the raw samples, or NULL (none) */
    const float *corr_gain;
#if !TAE_FE_RAW_ONLY
    float window[TAE_WINDOW_LEN * TAE_CHANNELS]; /* the corrected window, chronological (calibration) */
    float features[TAE_FEATURE_SIZE]; /* the front-end's output for the current window */
    tae_frontend_work_t fe_work;      /* its scratch (FFT buffers) */
#endif
} tae_pipeline_t;

/* Window w covers stream samples [w*TAE_HOP, w*TAE_HOP + TAE_WINDOW_LEN): the first window completes
 * on sample TAE_WINDOW_LEN, then one every TAE_HOP samples. Any TAE_HOP >= 1 works; a hop larger
 * than the window drops the samples between windows. The engine must be initialized
 * (tae_engine_init) before the first window completes; an engine error is reported in
 * result->status with score 0 and counts as a normal window for the alarm. */

/* Reset windowing and decision state; keeps nothing from before (threshold back to TAE_THRESHOLD, no
 * correction). */
void tae_pipeline_init(tae_pipeline_t *p);
/* Push one sample (TAE_CHANNELS floats). Returns 1 and fills *result when a window completed. */
int tae_pipeline_push(tae_pipeline_t *p, const float *sample, tae_result_t *result);
/* Runtime threshold override: anomaly = score > threshold from the next window on. */
void tae_pipeline_set_threshold(tae_pipeline_t *p, float threshold);
/* On-site calibration's correction (tae_calib.h): from the next window on, every raw sample x of channel
 * c the front-end reads is (x - shift[c]) * gain[c] (float32, in that order). shift/gain are
 * TAE_CHANNELS floats that must outlive their use; NULL (either) removes the correction. */
void tae_pipeline_set_correction(tae_pipeline_t *p, const float *shift, const float *gain);

/* Building blocks, exposed for tests and for the host reference cross-check. */
/* features: TAE_FEATURE_SIZE floats (for the raw front-end, the time-major window itself). */
void tae_quantize_features(const float *features, int8_t *q);
float tae_score(const int8_t *in_q, const int8_t *out_q);

#ifdef __cplusplus
}
#endif

#endif /* TAE_PIPELINE_H */
