/* tinyae — on-site calibration: the device learns per-channel corrections of its raw samples and its
 * score threshold from its first normal windows (docs/architecture.md, "On-site calibration").
 *
 * Pure computation, no I/O: tae_app.c feeds it the samples and window scores and stores the record
 * through the port; the host mirror (train/calibration/native.py) runs this very file through ctypes.
 *
 * A calibration of N windows per phase (TAE_CALIB_MIN_WINDOWS <= N <= TAE_CALIB_WINDOWS) runs over the
 * windows 0, 1, ... of a fresh window state (the minimum is what the statistics below need to be worth
 * using: train/calibration/minimum.py derives it, the manifest's calibration.min_windows says why):
 *   phase 1 (TAE_CALIB_OFFSETS or TAE_CALIB_SCALES): windows 0..N-1. Every raw sample of them, i.e.
 *     samples 0 .. (N-1)*TAE_HOP + TAE_WINDOW_LEN - 1, feeds a per-channel Welford mean/variance
 *     (float32). At the end of window N-1 the candidate correction is computed and checked against
 *     the bounds; the pipeline applies it from the next window on.
 *   phase 2 (TAE_CALIB_METHOD != none): the next N windows, scored with the candidate correction;
 *     the threshold is the nearest-rank percentile (the ceil(p N/100)-th smallest score: a min-heap
 *     keeps the largest N - rank + 1 scores, TAE_CALIB_HEAP floats at N = TAE_CALIB_WINDOWS) or
 *     mean + k std (Welford over the scores).
 * Correction of a raw sample x of channel c (the front-end's input): x' = (x - shift[c]) * gain[c],
 *   gain = scales ? ref_std / site_std : 1, target = offsets ? ref_mean : site_mean,
 *   shift = site_mean - target / gain. All float32, in this order, no FMA (-ffp-contract=off).
 * Bounds (model_config.h): |site_mean - ref_mean| <= TAE_CALIB_MAX_SHIFT (offsets), site_std/ref_std
 * in [TAE_CALIB_SCALE_MIN, TAE_CALIB_SCALE_MAX] (always: a dead or saturated sensor is refused), checked
 * on every channel after all of them were measured (the record holds every channel's statistics, the
 * refusal names the first channel out of bounds); at most a fraction TAE_CALIB_OVER_NUM /
 * TAE_CALIB_OVER_DEN of the phase-2 scores above the factory TAE_THRESHOLD (the trained distribution's
 * upper percentile: more means the data were not normal), fewer than TAE_CALIB_STRETCH_K of them among
 * any TAE_CALIB_STRETCH_N consecutive ones (that many close together is a stretch of samples the factory
 * model calls anomalous, not scattered noise: e.g. a recording that ends in a fault), threshold in
 * [TAE_CALIB_THRESHOLD_MIN, TAE_CALIB_THRESHOLD_MAX]; every figure finite.
 *
 * Record (TAE_CALIB_RECORD_BYTES = 72 + 16 C, little-endian, the form stored in flash and sent to
 * the host; docs/protocol.md §3 lays it out): magic "TAEC", version, channels, flags, method, model
 * sha256, TAE_CALIB_CONFIG_CRC, N, rank, phase-2 scores above the factory threshold, the most of them
 * among any TAE_CALIB_STRETCH_N consecutive phase-2 windows, phase-1 samples, threshold, score mean/std, per-channel site mean, site std, shift, gain, then the CRC-32
 * of everything before it. */
#ifndef TAE_CALIB_H
#define TAE_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include "model_config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TAE_CALIB_VERSION 1u
#define TAE_CALIB_MAGIC 0x43454154u /* "TAEC" read as a little-endian u32 */
#define TAE_CALIB_RECORD_FIXED 72u
#define TAE_CALIB_RECORD_BYTES (TAE_CALIB_RECORD_FIXED + 16u * (uint32_t)TAE_CHANNELS)

/* Threshold methods (TAE_CALIB_METHOD, the record's `method`); macros, as #if compares them. */
#define TAE_CALIB_METHOD_NONE 0
#define TAE_CALIB_METHOD_PERCENTILE 1
#define TAE_CALIB_METHOD_MEAN_STD 2

/* Record flags: what it changes. */
#define TAE_CALIB_FLAG_OFFSETS 0x01u
#define TAE_CALIB_FLAG_SCALES 0x02u
#define TAE_CALIB_FLAG_THRESHOLD 0x04u

/* Device calibration state (handshake, CALIB_STATE). */
enum {
    TAE_CALIB_STATE_FACTORY = 0,    /* the model's values: no record in use */
    TAE_CALIB_STATE_CALIBRATED = 1, /* a stored record is in use */
    TAE_CALIB_STATE_STATS = 2,      /* calibrating, phase 1 (sample statistics) */
    TAE_CALIB_STATE_SCORES = 3      /* calibrating, phase 2 (scores for the threshold) */
};

/* How a calibration ended (`outcome`; detail = the channel for SHIFT, SCALE and NOT_FINITE (255 = the
 * scores), the windows above the factory threshold among the densest TAE_CALIB_STRETCH_N for
 * ANOMALOUS_STRETCH). */
enum {
    TAE_CALIB_OUT_NONE = 0,       /* no calibration since boot */
    TAE_CALIB_OUT_RUNNING = 1,
    TAE_CALIB_OUT_STORED = 2,     /* stored and in use */
    TAE_CALIB_OUT_ABORTED = 3,    /* the host aborted it, or switched the sample source */
    TAE_CALIB_OUT_SHIFT = 4,      /* a site mean beyond TAE_CALIB_MAX_SHIFT of the training mean */
    TAE_CALIB_OUT_SCALE = 5,      /* a site spread outside [SCALE_MIN, SCALE_MAX] of the training spread */
    TAE_CALIB_OUT_NOT_FINITE = 6, /* NaN or infinite samples or scores */
    TAE_CALIB_OUT_THRESHOLD_HIGH = 7, /* scores far above the trained distribution: not normal data */
    TAE_CALIB_OUT_THRESHOLD_LOW = 8,  /* scores far below it (a flat or disconnected signal) */
    TAE_CALIB_OUT_ENGINE = 9,     /* the engine failed on a phase-2 window */
    TAE_CALIB_OUT_STORE = 10,     /* the record could not be stored; what storage holds is in use */
    TAE_CALIB_OUT_REJECTED = 11,  /* a record written by the host was refused (detail: the verdict) */
    TAE_CALIB_OUT_FACTORY = 12,   /* reset to the factory values by the host */
    TAE_CALIB_OUT_NOT_NORMAL = 13, /* too many scores above the factory threshold: not normal data */
    TAE_CALIB_OUT_ANOMALOUS_STRETCH = 14 /* STRETCH_K of some STRETCH_N consecutive ones above it */
};

/* What a stored or received record is (tae_calib_unpack; the handshake's boot verdict). */
enum {
    TAE_CALIB_REC_EMPTY = 0,        /* nothing stored */
    TAE_CALIB_REC_VALID = 1,
    TAE_CALIB_REC_CORRUPT = 2,      /* wrong size, magic or CRC: a torn or damaged record */
    TAE_CALIB_REC_OTHER_MODEL = 3,  /* made for another model (sha256) */
    TAE_CALIB_REC_OTHER_CONFIG = 4, /* same model, other calibration/normalization constants */
    TAE_CALIB_REC_VERSION = 5,      /* a record layout this firmware does not know */
    TAE_CALIB_REC_BOUNDS = 6,       /* values outside this build's bounds, not finite, or not what the
                                       record's own statistics give (an edited record) */
    TAE_CALIB_REC_STORE_ERROR = 7   /* the storage could not be read */
};

/* Events of tae_calib_window. */
enum { TAE_CALIB_EV_NONE = 0, TAE_CALIB_EV_CORRECTION = 1, TAE_CALIB_EV_DONE = 2 };

typedef struct {
    uint8_t version, channels, flags, method;
    uint8_t model_sha256[32];
    uint32_t config_crc;
    uint16_t windows; /* N per phase */
    uint16_t rank;    /* percentile: the order statistic's rank over N scores; 0 otherwise */
    uint16_t over;    /* phase-2 scores above the factory TAE_THRESHOLD */
    uint16_t cluster; /* the most of them among any TAE_CALIB_STRETCH_N consecutive phase-2 windows */
    uint32_t samples; /* raw samples of phase 1 (0 without it) */
    float threshold;  /* in use when flags has THRESHOLD; otherwise the factory TAE_THRESHOLD */
    float score_mean, score_std; /* phase-2 scores (0 without it) */
    float mean[TAE_CHANNELS];    /* site statistics of phase 1 (the training reference without it) */
    float std[TAE_CHANNELS];
    float shift[TAE_CHANNELS];   /* the correction x' = (x - shift) * gain */
    float gain[TAE_CHANNELS];
} tae_calib_record_t;

typedef struct {
    uint8_t state;   /* TAE_CALIB_STATE_STATS / _SCORES while running, _FACTORY when idle */
    uint8_t outcome; /* TAE_CALIB_OUT_*: RUNNING, then how it ended */
    uint8_t detail;
    uint16_t windows;     /* N */
    uint16_t done;        /* windows seen, 0 .. phases * N */
    uint16_t heap_cap;    /* N - rank + 1 (percentile) */
    uint16_t heap_n;
    uint16_t cluster_end; /* phase-2 index of the last window of the densest stretch (rec.cluster) */
    uint32_t recent;      /* the last TAE_CALIB_STRETCH_N phase-2 windows: bit 0 = the latest above it */
    uint32_t samples;     /* phase-1 samples accumulated */
    uint32_t samples_needed;
    float mean[TAE_CHANNELS]; /* Welford over the samples less the training mean */
    float m2[TAE_CHANNELS];
    float s_mean, s_m2;       /* Welford over the phase-2 scores */
    float heap[TAE_CALIB_HEAP];
    tae_calib_record_t rec;   /* the candidate */
} tae_calib_t;

/* The generated constants (model_config.h), defined once in tae_calib.c. */
extern const uint8_t tae_model_sha256[32];
extern const float tae_calib_ref_mean[TAE_CHANNELS];
extern const float tae_calib_ref_std[TAE_CHANNELS];
extern const float tae_calib_max_shift[TAE_CHANNELS];

/* Windows per phase count (1 or 2 phases, from the build's settings). */
uint32_t tae_calib_phases(void);
/* The percentile's order-statistic rank over n scores, ceil(p n / 100) in [1, n] (0: other methods). */
uint16_t tae_calib_rank(uint16_t n);

/* Start a calibration of n windows per phase; returns 0, or -1 (state untouched) when n is below
 * TAE_CALIB_MIN_WINDOWS or above TAE_CALIB_WINDOWS. */
int tae_calib_begin(tae_calib_t *c, uint16_t n);
/* Phase 1: one raw sample (TAE_CHANNELS floats), in stream order, from the calibration's first
 * sample on; samples past the phase's last one are ignored. */
void tae_calib_sample(tae_calib_t *c, const float *sample);
/* One completed window, in order (score and engine status). Returns TAE_CALIB_EV_CORRECTION when the
 * candidate correction c->rec.shift/gain is ready (use it from the next window on), or
 * TAE_CALIB_EV_DONE when the calibration ended: c->outcome is TAE_CALIB_OUT_STORED when c->rec is a
 * complete, valid record that the caller must now store (and set TAE_CALIB_OUT_STORE if that fails),
 * or the refusal (c->detail names the channel), c->rec then holding what was computed so far (every
 * channel's statistics once phase 1 ended; the threshold, over and cluster once phase 2 ended). */
int tae_calib_window(tae_calib_t *c, float score, int32_t status);
/* Stop without a result (outcome ABORTED). */
void tae_calib_abort(tae_calib_t *c);

/* A channel's phase-1 statistics against this build's bounds: 0 when usable, else the TAE_CALIB_OUT_*
 * reason (NOT_FINITE, SHIFT, SCALE). The calibration and the record check use it; the host names every
 * channel out of bounds with it. */
uint8_t tae_calib_channel_verdict(uint32_t k, float mean, float sd);

/* The factory record: no correction (shift 0, gain 1), the model's threshold, flags 0. */
void tae_calib_factory(tae_calib_record_t *r);
/* Serialize to TAE_CALIB_RECORD_BYTES bytes (CRC included); returns the size. */
size_t tae_calib_pack(const tae_calib_record_t *r, uint8_t *out);
/* Parse and check a stored or received record: size, magic, version, CRC, model sha256, config CRC,
 * bounds, and every value that follows from others in it against what they give (the correction and a
 * mean + k std threshold recomputed bit for bit, a percentile threshold held to what its score count
 * above the factory threshold and its score mean and std allow, the phase-1 sample count, the densest
 * stretch, the factory values of a phase the build does not run): the device at boot and at a WRITE and
 * the host (native.py) judge a record with this one function. Returns TAE_CALIB_REC_VALID (and fills *r)
 * or the reason it cannot be used. */
int tae_calib_unpack(const uint8_t *buf, size_t len, tae_calib_record_t *r);
/* CRC-32 of a packed record (its last four bytes), for the handshake. */
uint32_t tae_calib_record_crc(const uint8_t *packed);

/* For host builds driven through ctypes (train/calibration/native.py), which do not mirror the struct:
 * sizeof(tae_calib_t); state | outcome << 8 | detail << 16; the phase-2 index of the last window of
 * the densest stretch above the factory threshold; the candidate record packed. */
size_t tae_calib_state_size(void);
uint32_t tae_calib_status(const tae_calib_t *c);
uint32_t tae_calib_cluster_end(const tae_calib_t *c);
size_t tae_calib_pack_candidate(const tae_calib_t *c, uint8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TAE_CALIB_H */
