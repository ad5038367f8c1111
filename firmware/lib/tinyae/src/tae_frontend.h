/* tinyae — the feature front-end: what the network sees of a window.
 *
 * Kinds (model_config.h's TAE_FE_* block, rendered from the manifest's `frontend`), concatenated
 * in this order:
 *   raw       the window itself, time-major (L*C values)
 *   spectral  per channel: remove the window mean, frames of TAE_FE_FFT_LEN samples times a window
 *             function (scaled so a bin-centred tone of amplitude A reads A), real FFT (a radix-2
 *             complex FFT of half the length on the even/odd-packed frame, then the split), magnitude
 *             or power per bin, averaged over the frames and over each band of bins, optional log
 *             (C*TAE_FE_BANDS values, channel-major)
 *   stats     per channel: mean, RMS, standard deviation, peak-to-peak, crest factor, skewness,
 *             kurtosis (Pearson, 3 for a Gaussian), zero-crossing rate of the mean-removed signal
 *             (C*TAE_FE_STAT_COUNT values, channel-major; the selected statistics in that order)
 *
 * The same C runs on the device and, through the host build (ctypes), in training, calibration and
 * the host reference, so both sides perform the same float32 operations in the same order (built
 * with -ffp-contract=off, no fast-math). sqrtf and division are correctly rounded IEEE operations on
 * both sides; the log is tae_fe_logf (below), not libm's, so glibc and newlib cannot differ.
 * train/frontend/mirror.py is a NumPy mirror of this file, tested bit-equal. No heap: the scratch is
 * a caller-provided tae_frontend_work_t sized from those constants. */
#ifndef TAE_FRONTEND_H
#define TAE_FRONTEND_H

#include <stdint.h>

#include "model_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Statistic ids, in the order the stats kind emits them (TAE_FE_STAT_IDS_INIT selects a subset). */
enum {
    TAE_FE_STAT_MEAN = 0,
    TAE_FE_STAT_RMS = 1,
    TAE_FE_STAT_STD = 2,
    TAE_FE_STAT_P2P = 3,
    TAE_FE_STAT_CREST = 4,
    TAE_FE_STAT_SKEW = 5,
    TAE_FE_STAT_KURTOSIS = 6,
    TAE_FE_STAT_ZCR = 7,
    TAE_FE_STAT_ALL = 8
};

typedef struct {
#if TAE_FE_SPECTRAL
    float z[TAE_FE_FFT_LEN]; /* the real frame as N/2 complex values (re, im interleaved), then its FFT */
    float acc[TAE_FE_FFT_LEN / 2 + 1]; /* per-bin power (or magnitude), summed over the frames */
#else
    float unused; /* C99 forbids an empty struct */
#endif
} tae_frontend_work_t;

/* ring: TAE_FE_WINDOW_LEN samples of TAE_FE_CHANNELS floats, time-major, read circularly from slot
 * `oldest` (0 for a plain chronological window); features: TAE_FEATURE_SIZE floats. A NaN sample
 * propagates to the features it touches (the quantizer maps NaN to the zero point). */
void tae_frontend_compute(const float *ring, uint32_t oldest, float *features, tae_frontend_work_t *work);

/* The tables the front-end computes with (rendered from the manifest; tae_digest.c folds them into the
 * handshake's front-end digest). */
#if TAE_FE_SPECTRAL
extern const float tae_fe_window[TAE_FE_FFT_LEN];
extern const float tae_fe_twiddle[TAE_FE_FFT_LEN];
extern const uint16_t tae_fe_bitrev[TAE_FE_FFT_LEN / 2];
extern const uint16_t tae_fe_band_edges[TAE_FE_BANDS + 1];
#if TAE_FE_LOG
extern const float tae_fe_log_floor[TAE_FE_SPECTRAL_SIZE];
#endif
#endif
#if TAE_FE_STATS
extern const uint8_t tae_fe_stat_ids[TAE_FE_STAT_COUNT];
#endif

/* Building blocks, exposed for tests. */
#if TAE_FE_SPECTRAL
/* In-place forward FFT of TAE_FE_FFT_LEN/2 complex values (re, im interleaved) given in bit-reversed
 * order (radix-2, decimation in time); the real FFT of TAE_FE_FFT_LEN samples is this on the
 * even/odd-packed frame plus a split step. */
void tae_fe_fft_half(float *z);
#endif
/* Natural log for positive normal floats (zero, subnormals, negatives, infinities and NaN pass
 * through unchanged): an integer split into 2^e m, m in [sqrt(1/2), sqrt(2)), then a fixed odd series
 * in s = (m-1)/(m+1). Within 1.2e-7 of libm's (relative, or absolute below 1), and the same bits on
 * every target. */
float tae_fe_logf(float x);

#ifdef __cplusplus
}
#endif

#endif /* TAE_FRONTEND_H */
