/* tinyae — on-site calibration (tae_calib.h describes the computation; docs/architecture.md, "On-site
 * calibration", the reasons). C99, no heap, no I/O. Every float operation is float32 in the order
 * written here; the host mirror runs this file through ctypes, so a record computed on the host from
 * the same samples and scores is the device's record bit for bit. */
#include "tae_calib.h"

#include <math.h>
#include <string.h>

#include "tae_protocol.h" /* tae_crc32 */

#define TAE_CALIB_HAS_STATS (TAE_CALIB_OFFSETS || TAE_CALIB_SCALES)
#define TAE_CALIB_HAS_SCORES (TAE_CALIB_METHOD != TAE_CALIB_METHOD_NONE)

/* Compile-time checks on model_config.h (C99: a negative array size fails the build). */
/* TAE_CALIB_MAX_WINDOWS (model_config.h) below UINT16_MAX: the u16 range checks below stay meaningful */
typedef char tae_check_calib_max_windows[(TAE_CALIB_MAX_WINDOWS < UINT16_MAX) ? 1 : -1];
typedef char tae_check_calib_windows[(TAE_CALIB_WINDOWS >= 1 && TAE_CALIB_WINDOWS <= TAE_CALIB_MAX_WINDOWS) ? 1 : -1];
typedef char tae_check_calib_min_windows[(TAE_CALIB_MIN_WINDOWS >= 1 && TAE_CALIB_MIN_WINDOWS <= TAE_CALIB_WINDOWS) ? 1 : -1];
typedef char tae_check_calib_stretch[(TAE_CALIB_STRETCH_N >= 1 && TAE_CALIB_STRETCH_N <= 32 && TAE_CALIB_STRETCH_K >= 1 &&
                                      TAE_CALIB_STRETCH_K <= TAE_CALIB_STRETCH_N) ? 1 : -1];
typedef char tae_check_calib_heap[(TAE_CALIB_HEAP >= 1 && TAE_CALIB_HEAP <= TAE_CALIB_WINDOWS) ? 1 : -1];
typedef char tae_check_calib_method[(TAE_CALIB_METHOD >= 0 && TAE_CALIB_METHOD <= 2) ? 1 : -1];
typedef char tae_check_calib_learns[(TAE_CALIB_HAS_STATS || TAE_CALIB_HAS_SCORES) ? 1 : -1];
typedef char tae_check_calib_channels[(TAE_CHANNELS >= 1 && TAE_CHANNELS <= 255) ? 1 : -1];
typedef char tae_check_calib_over[(TAE_CALIB_OVER_DEN >= 1 && TAE_CALIB_OVER_NUM <= TAE_CALIB_OVER_DEN) ? 1 : -1];

const uint8_t tae_model_sha256[32] = TAE_MODEL_SHA256_BYTES_INIT;
const float tae_calib_ref_mean[TAE_CHANNELS] = TAE_CALIB_REF_MEAN_INIT;
const float tae_calib_ref_std[TAE_CHANNELS] = TAE_CALIB_REF_STD_INIT;
const float tae_calib_max_shift[TAE_CHANNELS] = TAE_CALIB_MAX_SHIFT_INIT;

uint32_t tae_calib_phases(void)
{
    return (uint32_t)(TAE_CALIB_HAS_STATS ? 1 : 0) + (uint32_t)(TAE_CALIB_HAS_SCORES ? 1 : 0);
}

uint16_t tae_calib_rank(uint16_t n)
{
#if TAE_CALIB_METHOD == TAE_CALIB_METHOD_PERCENTILE
    /* ceil(num * n / den) in integers; the generator checks num * TAE_CALIB_WINDOWS + den < 2^32. */
    uint32_t r = ((uint32_t)TAE_CALIB_RANK_NUM * (uint32_t)n + (uint32_t)TAE_CALIB_RANK_DEN - 1u) /
                 (uint32_t)TAE_CALIB_RANK_DEN;
    if (r < 1u) {
        r = 1u;
    }
    if (r > (uint32_t)n) {
        r = (uint32_t)n;
    }
    return (uint16_t)r;
#else
    (void)n;
    return 0u;
#endif
}

void tae_calib_factory(tae_calib_record_t *r)
{
    uint32_t k;
    memset(r, 0, sizeof *r);
    r->version = (uint8_t)TAE_CALIB_VERSION;
    r->channels = (uint8_t)TAE_CHANNELS;
    r->method = (uint8_t)TAE_CALIB_METHOD;
    memcpy(r->model_sha256, tae_model_sha256, sizeof r->model_sha256);
    r->config_crc = (uint32_t)TAE_CALIB_CONFIG_CRC;
    r->threshold = (float)TAE_THRESHOLD;
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k) {
        r->mean[k] = tae_calib_ref_mean[k];
        r->std[k] = tae_calib_ref_std[k];
        r->shift[k] = 0.0f;
        r->gain[k] = 1.0f;
    }
}

int tae_calib_begin(tae_calib_t *c, uint16_t n)
{
    if (n < (uint16_t)TAE_CALIB_MIN_WINDOWS || n > (uint16_t)TAE_CALIB_WINDOWS) {
        return -1;
    }
    memset(c, 0, sizeof *c);
    c->windows = n;
    c->outcome = (uint8_t)TAE_CALIB_OUT_RUNNING;
#if TAE_CALIB_HAS_STATS
    c->state = (uint8_t)TAE_CALIB_STATE_STATS;
    c->samples_needed = ((uint32_t)n - 1u) * (uint32_t)TAE_HOP + (uint32_t)TAE_WINDOW_LEN;
#else
    c->state = (uint8_t)TAE_CALIB_STATE_SCORES;
#endif
#if TAE_CALIB_METHOD == TAE_CALIB_METHOD_PERCENTILE
    c->heap_cap = (uint16_t)(n - tae_calib_rank(n) + 1u);
    if (c->heap_cap > (uint16_t)TAE_CALIB_HEAP) { /* cannot happen with generated constants */
        c->heap_cap = (uint16_t)TAE_CALIB_HEAP;
    }
#endif
    tae_calib_factory(&c->rec);
    c->rec.windows = n;
    c->rec.rank = tae_calib_rank(n);
    return 0;
}

void tae_calib_sample(tae_calib_t *c, const float *sample)
{
    uint32_t k;
    float n;
    if (c->state != (uint8_t)TAE_CALIB_STATE_STATS || c->samples >= c->samples_needed) {
        return;
    }
    c->samples++;
    n = (float)c->samples;
    /* Welford over y = x - training mean: d = y - mean; mean += d / n; m2 += d * (y - mean). Around the
     * training mean, not zero: in float32 each update of a running mean rounds at the mean's own
     * magnitude, so a channel far from zero next to its spread (air pressure in Pa, a temperature in K,
     * a DC level) gathered that rounding into a site mean off by a tenth of its std; around the
     * training mean the rounding is at the deviations' magnitude, a site's spread or shift. */
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k) {
        const float y = sample[k] - tae_calib_ref_mean[k];
        const float d = y - c->mean[k];
        c->mean[k] += d / n;
        c->m2[k] += d * (y - c->mean[k]);
    }
}

static void tae_calib_end(tae_calib_t *c, uint8_t outcome, uint8_t detail)
{
    c->state = (uint8_t)TAE_CALIB_STATE_FACTORY;
    c->outcome = outcome;
    c->detail = detail;
}

void tae_calib_abort(tae_calib_t *c)
{
    tae_calib_end(c, (uint8_t)TAE_CALIB_OUT_ABORTED, 0u);
}

/* The correction of channel k from its site statistics (tae_calib.h gives the formula). Shared by the
 * calibration and the record check, so a record's correction is recomputed bit for bit. */
static void tae_calib_derive(uint32_t k, float mean, float sd, float *shift, float *gain)
{
    float g = 1.0f, target = mean;
#if TAE_CALIB_OFFSETS
    target = tae_calib_ref_mean[k];
#endif
#if TAE_CALIB_SCALES
    g = tae_calib_ref_std[k] / sd;
#endif
    (void)k;
    (void)sd;
    *gain = g;
    *shift = mean - target / g;
}

/* Bounds of channel k's statistics: 0 when usable, else the TAE_CALIB_OUT_* reason. */
uint8_t tae_calib_channel_verdict(uint32_t k, float mean, float sd)
{
    const float ratio = sd / tae_calib_ref_std[k];
    if (!isfinite(mean) || !isfinite(sd)) {
        return (uint8_t)TAE_CALIB_OUT_NOT_FINITE;
    }
#if TAE_CALIB_OFFSETS
    if (!(fabsf(mean - tae_calib_ref_mean[k]) <= tae_calib_max_shift[k])) {
        return (uint8_t)TAE_CALIB_OUT_SHIFT;
    }
#endif
    if (!(ratio >= (float)TAE_CALIB_SCALE_MIN && ratio <= (float)TAE_CALIB_SCALE_MAX)) {
        return (uint8_t)TAE_CALIB_OUT_SCALE;
    }
    return 0u;
}

static uint8_t tae_calib_check_threshold(float t)
{
    if (!isfinite(t)) {
        return (uint8_t)TAE_CALIB_OUT_NOT_FINITE;
    }
    if (t > (float)TAE_CALIB_THRESHOLD_MAX) {
        return (uint8_t)TAE_CALIB_OUT_THRESHOLD_HIGH;
    }
    if (t < (float)TAE_CALIB_THRESHOLD_MIN) {
        return (uint8_t)TAE_CALIB_OUT_THRESHOLD_LOW;
    }
    return 0u;
}

/* End of phase 1: site statistics of every channel, then the bounds (the first channel out of them is
 * the refusal's detail), then the candidate correction. 0 when usable. */
static int tae_calib_correction(tae_calib_t *c)
{
    const float n = (float)c->samples;
    uint32_t k;
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k) {
        c->rec.mean[k] = tae_calib_ref_mean[k] + c->mean[k];
        c->rec.std[k] = sqrtf(c->m2[k] / n);
    }
    c->rec.samples = c->samples;
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k) {
        const uint8_t why = tae_calib_channel_verdict(k, c->rec.mean[k], c->rec.std[k]);
        if (why != 0u) {
            tae_calib_end(c, why, (uint8_t)k);
            return -1;
        }
    }
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k) {
        tae_calib_derive(k, c->rec.mean[k], c->rec.std[k], &c->rec.shift[k], &c->rec.gain[k]);
    }
    c->rec.flags = (uint8_t)((TAE_CALIB_OFFSETS ? TAE_CALIB_FLAG_OFFSETS : 0u) |
                             (TAE_CALIB_SCALES ? TAE_CALIB_FLAG_SCALES : 0u));
    return 0;
}

#if TAE_CALIB_METHOD == TAE_CALIB_METHOD_PERCENTILE
/* Min-heap of the largest heap_cap scores: its root is the (N - rank + 1)-th largest, i.e. the
 * rank-th smallest of all N once every score went through. */
static void tae_calib_heap_add(tae_calib_t *c, float s)
{
    /* heap_n <= heap_cap <= TAE_CALIB_HEAP; the bounds are spelled out for the compiler too. */
    uint32_t i, child;
    const uint32_t n = c->heap_n;
    if (n < (uint32_t)c->heap_cap && n < (uint32_t)TAE_CALIB_HEAP) {
        i = n;
        c->heap_n++;
        while (i > 0u && i < (uint32_t)TAE_CALIB_HEAP && c->heap[(i - 1u) / 2u] > s) {
            c->heap[i] = c->heap[(i - 1u) / 2u];
            i = (i - 1u) / 2u;
        }
        c->heap[i] = s;
        return;
    }
    if (n == 0u || !(s > c->heap[0])) {
        return;
    }
    i = 0u;
    for (;;) {
        child = 2u * i + 1u;
        if (child >= n || child >= (uint32_t)TAE_CALIB_HEAP) {
            break;
        }
        if (child + 1u < n && child + 1u < (uint32_t)TAE_CALIB_HEAP && c->heap[child + 1u] < c->heap[child]) {
            child++;
        }
        if (!(c->heap[child] < s)) {
            break;
        }
        c->heap[i] = c->heap[child];
        i = child;
    }
    c->heap[i] = s;
}
#endif

#if TAE_CALIB_METHOD != TAE_CALIB_METHOD_PERCENTILE
/* mean + k std of the phase-2 scores. Shared by the calibration and the record check, so a record's
 * threshold is recomputed from its score statistics bit for bit. */
static float tae_calib_mean_std(float mean, float sd)
{
    return mean + (float)TAE_CALIB_K_STD * sd;
}
#endif

/* End of phase 2: the threshold and its bounds. */
static void tae_calib_threshold(tae_calib_t *c)
{
    float t;
    uint8_t why;
    c->rec.score_mean = c->s_mean;
    c->rec.score_std = sqrtf(c->s_m2 / (float)c->windows);
#if TAE_CALIB_METHOD == TAE_CALIB_METHOD_PERCENTILE
    t = c->heap[0];
#else
    t = tae_calib_mean_std(c->rec.score_mean, c->rec.score_std);
#endif
    if (!isfinite(c->s_mean) || !isfinite(c->rec.score_std)) {
        t = c->s_mean; /* NaN or inf: refused below */
    }
    c->rec.threshold = t;
    why = tae_calib_check_threshold(t);
    /* Not normal: more than OVER_NUM/OVER_DEN of the N scores above the factory threshold (integers; the
     * generator checks OVER_DEN * TAE_CALIB_WINDOWS < 2^32). */
    if (why == 0u && (uint32_t)c->rec.over * (uint32_t)TAE_CALIB_OVER_DEN >
                         (uint32_t)TAE_CALIB_OVER_NUM * (uint32_t)c->windows) {
        why = (uint8_t)TAE_CALIB_OUT_NOT_NORMAL;
    }
    if (why != 0u) {
        tae_calib_end(c, why, 255u);
        return;
    }
    /* An anomalous stretch: STRETCH_K or more of some STRETCH_N consecutive windows above the factory
     * threshold. */
    if ((uint32_t)c->rec.cluster >= (uint32_t)TAE_CALIB_STRETCH_K) {
        tae_calib_end(c, (uint8_t)TAE_CALIB_OUT_ANOMALOUS_STRETCH, (uint8_t)c->rec.cluster);
        return;
    }
    c->rec.flags |= (uint8_t)TAE_CALIB_FLAG_THRESHOLD;
    tae_calib_end(c, (uint8_t)TAE_CALIB_OUT_STORED, 0u);
}

int tae_calib_window(tae_calib_t *c, float score, int32_t status)
{
    if (c->state == (uint8_t)TAE_CALIB_STATE_STATS) {
        c->done++;
        if (c->done < c->windows) {
            return TAE_CALIB_EV_NONE;
        }
        if (tae_calib_correction(c) != 0) {
            return TAE_CALIB_EV_DONE;
        }
#if TAE_CALIB_HAS_SCORES
        c->state = (uint8_t)TAE_CALIB_STATE_SCORES;
        return TAE_CALIB_EV_CORRECTION;
#else
        tae_calib_end(c, (uint8_t)TAE_CALIB_OUT_STORED, 0u);
        return TAE_CALIB_EV_DONE;
#endif
    }
    if (c->state == (uint8_t)TAE_CALIB_STATE_SCORES) {
        const uint16_t first = (uint16_t)(TAE_CALIB_HAS_STATS ? c->windows : 0u);
        float d;
        c->done++;
        if (status != 0) {
            tae_calib_end(c, (uint8_t)TAE_CALIB_OUT_ENGINE, 0u);
            return TAE_CALIB_EV_DONE;
        }
        /* The last STRETCH_N windows' flags (bit 0 = this one) and how many of them are set; the densest
         * stretch so far and where it ends. */
        c->recent = (uint32_t)(c->recent << 1) & (uint32_t)TAE_CALIB_STRETCH_MASK;
        if (score > (float)TAE_THRESHOLD) {
            c->rec.over++;
            c->recent |= 1u;
        }
        {
            uint32_t bits = c->recent;
            uint16_t count = 0u;
            while (bits != 0u) {
                bits &= bits - 1u;
                count++;
            }
            if (count > c->rec.cluster) {
                c->rec.cluster = count;
                c->cluster_end = (uint16_t)(c->done - first - 1u);
            }
        }
        /* Welford over the scores (the mean and std are reported for every method). */
        d = score - c->s_mean;
        c->s_mean += d / (float)(c->done - first);
        c->s_m2 += d * (score - c->s_mean);
#if TAE_CALIB_METHOD == TAE_CALIB_METHOD_PERCENTILE
        tae_calib_heap_add(c, score);
#endif
        if ((uint32_t)(c->done - first) < (uint32_t)c->windows) {
            return TAE_CALIB_EV_NONE;
        }
        tae_calib_threshold(c);
        return TAE_CALIB_EV_DONE;
    }
    return TAE_CALIB_EV_NONE;
}

/* ---- the record's stored form ---- */
static uint8_t *tae_calib_wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *tae_calib_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
    return p + 4;
}

static uint8_t *tae_calib_wrf(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return tae_calib_wr32(p, u);
}

static uint16_t tae_calib_rd16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] | (uint16_t)((uint16_t)p[1] << 8));
}

static uint32_t tae_calib_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static float tae_calib_rdf(const uint8_t *p)
{
    const uint32_t u = tae_calib_rd32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

size_t tae_calib_pack(const tae_calib_record_t *r, uint8_t *out)
{
    uint8_t *p = tae_calib_wr32(out, TAE_CALIB_MAGIC);
    uint32_t k;
    *p++ = r->version;
    *p++ = r->channels;
    *p++ = r->flags;
    *p++ = r->method;
    memcpy(p, r->model_sha256, 32);
    p += 32;
    p = tae_calib_wr32(p, r->config_crc);
    p = tae_calib_wr16(p, r->windows);
    p = tae_calib_wr16(p, r->rank);
    p = tae_calib_wr16(p, r->over);
    p = tae_calib_wr16(p, r->cluster);
    p = tae_calib_wr32(p, r->samples);
    p = tae_calib_wrf(p, r->threshold);
    p = tae_calib_wrf(p, r->score_mean);
    p = tae_calib_wrf(p, r->score_std);
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k) {
        p = tae_calib_wrf(p, r->mean[k]);
    }
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k) {
        p = tae_calib_wrf(p, r->std[k]);
    }
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k) {
        p = tae_calib_wrf(p, r->shift[k]);
    }
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k) {
        p = tae_calib_wrf(p, r->gain[k]);
    }
    p = tae_calib_wr32(p, tae_crc32(out, (size_t)(p - out)));
    return (size_t)(p - out);
}

size_t tae_calib_state_size(void)
{
    return sizeof(tae_calib_t);
}

uint32_t tae_calib_status(const tae_calib_t *c)
{
    return (uint32_t)c->state | ((uint32_t)c->outcome << 8) | ((uint32_t)c->detail << 16);
}

uint32_t tae_calib_cluster_end(const tae_calib_t *c)
{
    return (uint32_t)c->cluster_end;
}

size_t tae_calib_pack_candidate(const tae_calib_t *c, uint8_t *out)
{
    return tae_calib_pack(&c->rec, out);
}

uint32_t tae_calib_record_crc(const uint8_t *packed)
{
    return tae_calib_rd32(packed + TAE_CALIB_RECORD_BYTES - 4u);
}

#if TAE_CALIB_METHOD == TAE_CALIB_METHOD_PERCENTILE
/* Whether t can be the rank-th smallest of a record's N phase-2 scores, from what the record holds of
 * them (the order statistic is a function of the scores, which it does not keep, so these are its exact
 * necessary conditions, not a recomputation):
 * - the factory threshold: every score from rank r up is >= t and every one up to it is <= t, so t is
 *   above TAE_THRESHOLD exactly when more than N - r scores are (`over`, counted against the same float);
 * - the mean m and population std s: r scores are <= t and N - r + 1 are >= t, so by the one-sided
 *   Chebyshev (Cantelli) inequality over the N scores themselves
 *   m - s sqrt((N - r) / r) <= t <= m + s sqrt((r - 1) / (N - r + 1)),
 *   widened by 2^-6 (|m| + s) for the float32 rounding of m and s: Welford over at most 65535 scores
 *   errs by at most about 65535 x 2^-24 ~ 2^-8 of them (a genuine record refused here would fail its own
 *   store's read-back), and measured at most 6.4e-4 (two-point score sets on the band's edges, their
 *   worst order, N = 65534: tests/test_calib_core.py). */
static int tae_calib_percentile_fits(const tae_calib_record_t *r)
{
    const uint32_t n = r->windows, rank = r->rank;
    const float m = r->score_mean, s = r->score_std, t = r->threshold;
    const float slack = (fabsf(m) + s) * 0.015625f;
    if ((t > (float)TAE_THRESHOLD) != ((uint32_t)r->over > n - rank)) {
        return 0;
    }
    if (t < m - s * sqrtf((float)(n - rank) / (float)rank) - slack ||
        t > m + s * sqrtf((float)(rank - 1u) / (float)(n - rank + 1u)) + slack) {
        return 0;
    }
    return 1;
}
#endif

/* The threshold a parsed record decides with, against what its method computes from the record's own
 * score statistics: mean + k std bit for bit; the percentile's order statistic within what its count
 * above the factory threshold and its mean and std allow. 1 when it follows from them. */
static int tae_calib_threshold_fits(const tae_calib_record_t *r)
{
#if TAE_CALIB_METHOD == TAE_CALIB_METHOD_MEAN_STD
    const float t = tae_calib_mean_std(r->score_mean, r->score_std);
    return memcmp(&t, &r->threshold, sizeof t) == 0;
#elif TAE_CALIB_METHOD == TAE_CALIB_METHOD_PERCENTILE
    return tae_calib_percentile_fits(r);
#else
    (void)r;
    return 0; /* no method: a record never carries a learned threshold (checked before) */
#endif
}

/* The values of a parsed record against this build: the flags and method it may carry, finite
 * figures, the bounds, and every value that follows from others equal to what they give: the
 * correction (bit for bit from the site statistics), the threshold (from the score statistics:
 * tae_calib_threshold_fits), the phase-1 sample count (from N), the densest stretch (from the count
 * above the factory threshold), and what a phase the build does not run leaves (the factory values,
 * zero score statistics). */
static int tae_calib_check_values(const tae_calib_record_t *r)
{
    const uint8_t stats = (uint8_t)(TAE_CALIB_FLAG_OFFSETS | TAE_CALIB_FLAG_SCALES);
    const uint8_t allowed = (uint8_t)((TAE_CALIB_OFFSETS ? TAE_CALIB_FLAG_OFFSETS : 0u) |
                                      (TAE_CALIB_SCALES ? TAE_CALIB_FLAG_SCALES : 0u) |
                                      (TAE_CALIB_HAS_SCORES ? TAE_CALIB_FLAG_THRESHOLD : 0u));
    uint32_t k;
    if ((r->flags & (uint8_t)~allowed) != 0u || r->flags == 0u || r->windows < (uint16_t)TAE_CALIB_MIN_WINDOWS ||
        r->windows > (uint16_t)TAE_CALIB_WINDOWS ||
        r->method != (uint8_t)TAE_CALIB_METHOD || r->rank != tae_calib_rank(r->windows)) {
        return -1;
    }
    if (((r->flags & stats) != 0u) != (TAE_CALIB_HAS_STATS != 0) ||
        ((r->flags & TAE_CALIB_FLAG_THRESHOLD) != 0u) != (TAE_CALIB_HAS_SCORES != 0)) {
        return -1; /* a calibration always learns everything its build asks for */
    }
    if ((r->flags & TAE_CALIB_FLAG_THRESHOLD) != 0u) {
        /* every stretch of STRETCH_N consecutive windows holds at most `cluster` of the `over` */
        const uint32_t stretches = ((uint32_t)r->windows + (uint32_t)TAE_CALIB_STRETCH_N - 1u) /
                                   (uint32_t)TAE_CALIB_STRETCH_N;
        if (tae_calib_check_threshold(r->threshold) != 0u || !isfinite(r->score_mean) ||
            !isfinite(r->score_std) || !(r->score_std >= 0.0f) || r->over > r->windows || r->cluster > r->over ||
            (uint32_t)r->cluster >= (uint32_t)TAE_CALIB_STRETCH_K ||
            (uint32_t)r->cluster * stretches < (uint32_t)r->over ||
            (uint32_t)r->over * (uint32_t)TAE_CALIB_OVER_DEN > (uint32_t)TAE_CALIB_OVER_NUM * (uint32_t)r->windows) {
            return -1;
        }
        if (!tae_calib_threshold_fits(r)) {
            return -1; /* a threshold its own score statistics do not give: an edited record */
        }
    } else {
        const float zero = 0.0f;
        if (!(r->threshold == (float)TAE_THRESHOLD) || r->over != 0u || r->cluster != 0u ||
            memcmp(&r->score_mean, &zero, sizeof zero) != 0 || memcmp(&r->score_std, &zero, sizeof zero) != 0) {
            return -1;
        }
    }
    if (r->samples != ((r->flags & stats) != 0u
                           ? ((uint32_t)r->windows - 1u) * (uint32_t)TAE_HOP + (uint32_t)TAE_WINDOW_LEN
                           : 0u)) {
        return -1;
    }
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k) {
        float shift = 0.0f, gain = 1.0f;
        if ((r->flags & stats) != 0u) {
            if (tae_calib_channel_verdict(k, r->mean[k], r->std[k]) != 0u) {
                return -1;
            }
            tae_calib_derive(k, r->mean[k], r->std[k], &shift, &gain);
        } else if (memcmp(&r->mean[k], &tae_calib_ref_mean[k], sizeof r->mean[k]) != 0 ||
                   memcmp(&r->std[k], &tae_calib_ref_std[k], sizeof r->std[k]) != 0) {
            return -1; /* no phase 1: the training reference, as tae_calib_factory left it */
        }
        if (memcmp(&shift, &r->shift[k], sizeof shift) != 0 || memcmp(&gain, &r->gain[k], sizeof gain) != 0) {
            return -1;
        }
    }
    return 0;
}

int tae_calib_unpack(const uint8_t *buf, size_t len, tae_calib_record_t *r)
{
    const uint8_t *p;
    uint32_t k;
    if (len < 8u || tae_calib_rd32(buf) != TAE_CALIB_MAGIC) {
        return TAE_CALIB_REC_CORRUPT;
    }
    if (buf[4] != (uint8_t)TAE_CALIB_VERSION) {
        return TAE_CALIB_REC_VERSION;
    }
    if (len != (size_t)TAE_CALIB_RECORD_FIXED + 16u * (size_t)buf[5] ||
        tae_crc32(buf, len - 4u) != tae_calib_rd32(buf + len - 4u)) {
        return TAE_CALIB_REC_CORRUPT;
    }
    if (buf[5] != (uint8_t)TAE_CHANNELS || memcmp(buf + 8, tae_model_sha256, 32) != 0) {
        return TAE_CALIB_REC_OTHER_MODEL;
    }
    if (tae_calib_rd32(buf + 40) != (uint32_t)TAE_CALIB_CONFIG_CRC) {
        return TAE_CALIB_REC_OTHER_CONFIG;
    }
    memset(r, 0, sizeof *r);
    r->version = buf[4];
    r->channels = buf[5];
    r->flags = buf[6];
    r->method = buf[7];
    memcpy(r->model_sha256, buf + 8, 32);
    r->config_crc = tae_calib_rd32(buf + 40);
    r->windows = tae_calib_rd16(buf + 44);
    r->rank = tae_calib_rd16(buf + 46);
    r->over = tae_calib_rd16(buf + 48);
    r->cluster = tae_calib_rd16(buf + 50);
    r->samples = tae_calib_rd32(buf + 52);
    r->threshold = tae_calib_rdf(buf + 56);
    r->score_mean = tae_calib_rdf(buf + 60);
    r->score_std = tae_calib_rdf(buf + 64);
    p = buf + 68;
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k, p += 4) {
        r->mean[k] = tae_calib_rdf(p);
    }
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k, p += 4) {
        r->std[k] = tae_calib_rdf(p);
    }
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k, p += 4) {
        r->shift[k] = tae_calib_rdf(p);
    }
    for (k = 0; k < (uint32_t)TAE_CHANNELS; ++k, p += 4) {
        r->gain[k] = tae_calib_rdf(p);
    }
    if (tae_calib_check_values(r) != 0) {
        return TAE_CALIB_REC_BOUNDS;
    }
    return TAE_CALIB_REC_VALID;
}
