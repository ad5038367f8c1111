/* tinyae — the per-sample pipeline: window assembly with hop, preprocessing, engine, score,
 * decision. C99, no heap, no stdio. The arithmetic is the one docs/architecture.md defines and
 * train/preprocess.py mirrors in NumPy: every float operation is float32, in the same order,
 * built with -ffp-contract=off (no FMA) and without fast-math.
 *
 * Windowing: window w covers samples [w*TAE_HOP, w*TAE_HOP + TAE_WINDOW_LEN) of the stream, i.e.
 * the first window completes on sample TAE_WINDOW_LEN, then one every TAE_HOP samples. Any hop >= 1
 * is allowed: hop < L overlaps windows, hop == L tiles the stream, hop > L skips the samples
 * between windows (they are received and dropped). The network sees the window in chronological
 * order, time-major (sample t, channel c is element t*C + c). */
#include "tae_pipeline.h"

#include <math.h>
#include <stddef.h>

#include "tae_engine.h"
#include "tae_port.h"

/* Compile-time checks on model_config.h (C99: a negative array size fails the build). */
typedef char tae_check_hop_positive[(TAE_HOP >= 1) ? 1 : -1];
typedef char tae_check_window_positive[(TAE_WINDOW_LEN >= 1 && TAE_CHANNELS >= 1) ? 1 : -1];
typedef char tae_check_input_size[(TAE_INPUT_SIZE == TAE_FEATURE_SIZE) ? 1 : -1];
typedef char tae_check_frontend[(TAE_FE_WINDOW_LEN == TAE_WINDOW_LEN && TAE_FE_CHANNELS == TAE_CHANNELS) ? 1 : -1];
typedef char tae_check_norm[(TAE_NORM_PERIOD >= 1 && TAE_FEATURE_SIZE % TAE_NORM_PERIOD == 0) ? 1 : -1];
typedef char tae_check_output_size[(TAE_OUTPUT_SIZE == TAE_INPUT_SIZE) ? 1 : -1];
/* The alarm rule: k of the last n windows, 1 <= k <= n <= TAE_DECISION_MAX_N (what the handshake carries). */
typedef char tae_check_decision[
    (TAE_DECISION_K >= 1 && TAE_DECISION_K <= TAE_DECISION_N && TAE_DECISION_N <= TAE_DECISION_MAX_N) ? 1 : -1];

/* The generated constants, defined once here (declared in tae_pipeline.h). */
const float tae_norm_offset[TAE_NORM_PERIOD] = TAE_NORM_OFFSET_INIT;
const float tae_norm_gain[TAE_NORM_PERIOD] = TAE_NORM_GAIN_INIT;

/* One element: v = (x - offset) * gain; NaN -> zero point; round half away from zero with the
 * trunc method (no `v + 0.5` rounding trap); clamp to [-512, 512], add the zero point, clamp to
 * int8. +-inf give -inf/+inf after trunc, |v - tr| is NaN, so they clamp to the ends. */
static int8_t tae_quantize_element(float x, uint32_t k)
{
    const float v = (x - tae_norm_offset[k]) * tae_norm_gain[k];
    float tr, r;
    int32_t t;
    if (isnan(v)) {
        return (int8_t)TAE_IN_ZERO_POINT;
    }
    /* trunc without libm: below 2^23 in magnitude the int32 conversion truncates exactly; at or
     * above it (and for +-inf) every float is already an integer. Same r as truncf (the sign of
     * a zero truncation differs, which cannot change r's integer value). */
    tr = (fabsf(v) < 8388608.0f) ? (float)(int32_t)v : v;
    r = tr;
    if (fabsf(v - tr) >= 0.5f) {
        r = tr + (v > 0.0f ? 1.0f : -1.0f);
    }
    if (r > 512.0f) {
        r = 512.0f;
    } else if (r < -512.0f) {
        r = -512.0f;
    }
    t = (int32_t)r + (int32_t)TAE_IN_ZERO_POINT;
    if (t > 127) {
        t = 127;
    } else if (t < -128) {
        t = -128;
    }
    return (int8_t)t;
}

void tae_quantize_features(const float *features, int8_t *q)
{
    uint32_t i, k = 0u;
    for (i = 0u; i < (uint32_t)TAE_FEATURE_SIZE; ++i) {
        q[i] = tae_quantize_element(features[i], k); /* k = i % TAE_NORM_PERIOD, without a division */
        if (++k == (uint32_t)TAE_NORM_PERIOD) {
            k = 0u;
        }
    }
}

float tae_score(const int8_t *in_q, const int8_t *out_q)
{
    const float s_in = (float)TAE_IN_SCALE;
    const float s_out = (float)TAE_OUT_SCALE;
    float acc = 0.0f;
    uint32_t i;
    for (i = 0; i < (uint32_t)TAE_INPUT_SIZE; ++i) {
        const float o = (float)((int32_t)out_q[i] - (int32_t)TAE_OUT_ZERO_POINT) * s_out;
        const float n = (float)((int32_t)in_q[i] - (int32_t)TAE_IN_ZERO_POINT) * s_in;
        const float d = o - n;
#if TAE_SCORE_KIND == TAE_SCORE_MSE
        acc += d * d;
#elif TAE_SCORE_KIND == TAE_SCORE_MAE
        acc += fabsf(d);
#else
#error "TAE_SCORE_KIND must be TAE_SCORE_MSE or TAE_SCORE_MAE"
#endif
    }
    return acc / (float)TAE_INPUT_SIZE;
}

void tae_pipeline_init(tae_pipeline_t *p)
{
    uint32_t i;
    for (i = 0; i < (uint32_t)(TAE_WINDOW_LEN * TAE_CHANNELS); ++i) {
        p->ring[i] = 0.0f;
    }
    for (i = 0; i < (uint32_t)TAE_DECISION_N; ++i) {
        p->history[i] = 0;
    }
    for (i = 0; i < (uint32_t)TAE_INPUT_SIZE; ++i) {
        p->input_q[i] = 0;
    }
    for (i = 0; i < (uint32_t)TAE_OUTPUT_SIZE; ++i) {
        p->output_q[i] = 0;
    }
    p->head = 0;
    p->filled = 0;
    p->since_window = 0;
    p->seq = 0;
    p->threshold = (float)TAE_THRESHOLD;
    p->history_pos = 0;
    p->corr_shift = NULL;
    p->corr_gain = NULL;
}

void tae_pipeline_set_threshold(tae_pipeline_t *p, float threshold)
{
    p->threshold = threshold;
}

void tae_pipeline_set_correction(tae_pipeline_t *p, const float *shift, const float *gain)
{
    const int on = shift != NULL && gain != NULL;
    p->corr_shift = on ? shift : NULL;
    p->corr_gain = on ? gain : NULL;
}

/* Features of the ring's window, oldest sample first (the oldest sits at `head` once full), then
 * the int8 network inputs. The raw front-end quantizes straight from the ring (no feature copy). */
static void tae_preprocess_ring(tae_pipeline_t *p, int8_t *q)
{
    const float *shift = p->corr_shift, *gain = p->corr_gain;
#if TAE_FE_RAW_ONLY
    uint32_t t, slot = p->head;
    uint32_t c;
    for (t = 0; t < (uint32_t)TAE_WINDOW_LEN; ++t) {
        for (c = 0; c < (uint32_t)TAE_CHANNELS; ++c) {
            float x = p->ring[slot * TAE_CHANNELS + c];
            if (shift != NULL) {
                x = (x - shift[c]) * gain[c];
            }
            q[t * TAE_CHANNELS + c] = tae_quantize_element(x, c);
        }
        if (++slot == (uint32_t)TAE_WINDOW_LEN) {
            slot = 0;
        }
    }
#else
    if (shift == NULL) {
        tae_frontend_compute(p->ring, p->head, p->features, &p->fe_work);
    } else {
        /* The corrected window, oldest sample first, for the front-end. */
        uint32_t t, c, slot = p->head;
        for (t = 0; t < (uint32_t)TAE_WINDOW_LEN; ++t) {
            for (c = 0; c < (uint32_t)TAE_CHANNELS; ++c) {
                p->window[t * TAE_CHANNELS + c] = (p->ring[slot * TAE_CHANNELS + c] - shift[c]) * gain[c];
            }
            if (++slot == (uint32_t)TAE_WINDOW_LEN) {
                slot = 0;
            }
        }
        tae_frontend_compute(p->window, 0u, p->features, &p->fe_work);
    }
    tae_quantize_features(p->features, q);
#endif
}

/* Record this window's anomaly flag; alarm = at least k of the last n windows anomalous (windows
 * before the first count as normal, like the zero-padded convolution of the NumPy mirror). */
static uint8_t tae_decide(tae_pipeline_t *p, uint8_t anomaly)
{
    uint32_t i, count = 0;
    p->history[p->history_pos] = anomaly;
    if (++p->history_pos == (uint32_t)TAE_DECISION_N) {
        p->history_pos = 0;
    }
    for (i = 0; i < (uint32_t)TAE_DECISION_N; ++i) {
        count += p->history[i];
    }
    return (uint8_t)(count >= (uint32_t)TAE_DECISION_K);
}

int tae_pipeline_push(tae_pipeline_t *p, const float *sample, tae_result_t *result)
{
    const uint32_t was_filled = p->filled;
    uint32_t t0;
    int c, status;
    float score = 0.0f;
    uint8_t anomaly = 0;

    for (c = 0; c < TAE_CHANNELS; ++c) {
        p->ring[p->head * TAE_CHANNELS + c] = sample[c];
    }
    if (++p->head == (uint32_t)TAE_WINDOW_LEN) {
        p->head = 0;
    }
    if (p->filled < (uint32_t)TAE_WINDOW_LEN) {
        p->filled++;
    }
    if (p->since_window < (uint32_t)TAE_HOP) {
        p->since_window++;
    }
    if (p->filled < (uint32_t)TAE_WINDOW_LEN) {
        return 0; /* not a full window yet */
    }
    if (was_filled == (uint32_t)TAE_WINDOW_LEN && p->since_window < (uint32_t)TAE_HOP) {
        return 0; /* between two windows */
    }
    p->since_window = 0;

    t0 = tae_port_cycles();
    tae_preprocess_ring(p, p->input_q);
    status = tae_engine_invoke(p->input_q, p->output_q);
    if (status == TAE_ENGINE_OK) {
        score = tae_score(p->input_q, p->output_q);
        anomaly = (uint8_t)(score > p->threshold);
    }
    result->cost = tae_port_cycles() - t0;

    /* A failed inference counts as a normal window in the alarm history; its status says why. */
    result->seq = p->seq++;
    result->score = score;
    result->anomaly = anomaly;
    result->alarm = tae_decide(p, anomaly);
    result->status = status;
    result->input_q = p->input_q;
    result->output_q = p->output_q;
    return 1;
}
