/* tinyae — the feature front-end (tae_frontend.h says what it computes). C99, no heap, no stdio.
 * Every float expression is written in the order train/frontend/mirror.py repeats it; do not
 * reassociate (no FMA, no fast-math). Sums are sequential, in index order. */
#include "tae_frontend.h"

#include <math.h>

typedef char tae_fe_check_size[(TAE_FEATURE_SIZE == TAE_FE_RAW_SIZE + TAE_FE_SPECTRAL_SIZE + TAE_FE_STATS_SIZE)
                                   ? 1
                                   : -1];

#if TAE_FE_SPECTRAL
typedef char tae_fe_check_fft[(TAE_FE_FFT_LEN >= 4 && (TAE_FE_FFT_LEN & (TAE_FE_FFT_LEN - 1)) == 0 &&
                               TAE_FE_FRAMES * TAE_FE_FFT_LEN <= TAE_FE_WINDOW_LEN)
                                  ? 1
                                  : -1];
/* The window function with the amplitude scale 2/sum(w) folded in, and the twiddles
 * cos(2 pi k/N), -sin(2 pi k/N): float32 values rounded from float64 by the generator. */
static const float tae_fe_window[TAE_FE_FFT_LEN] = TAE_FE_WINDOW_INIT;
static const float tae_fe_tw_re[TAE_FE_FFT_LEN / 2] = TAE_FE_TWIDDLE_RE_INIT;
static const float tae_fe_tw_im[TAE_FE_FFT_LEN / 2] = TAE_FE_TWIDDLE_IM_INIT;
/* Band b averages bins [edges[b], edges[b+1]). */
static const uint16_t tae_fe_band_edges[TAE_FE_BANDS + 1] = TAE_FE_BAND_EDGES_INIT;
#endif

#if TAE_FE_STATS
static const uint8_t tae_fe_stat_ids[TAE_FE_STAT_COUNT] = TAE_FE_STAT_IDS_INIT;
#endif

float tae_fe_logf(float x)
{
    union {
        float f;
        uint32_t u;
    } v;
    int32_t e;
    float m, s, z, p;
    if (!(x > 0.0f) || x > 3.40282347e38f) {
        return x; /* NaN, +inf (and, outside the domain, zero or negatives) pass through */
    }
    v.f = x;
    e = (int32_t)(v.u >> 23) - 127;
    v.u = (v.u & 0x007FFFFFu) | 0x3F800000u; /* mantissa m in [1, 2) */
    m = v.f;
    if (m > 1.41421354f) { /* centre m on 1: [sqrt(1/2), sqrt(2)] keeps |s| <= 0.172 */
        m = m * 0.5f;
        e += 1;
    }
    s = (m - 1.0f) / (m + 1.0f);
    z = s * s;
    /* log(m) = 2s (1 + z/3 + z^2/5 + z^3/7 + z^4/9 + z^5/11), Horner */
    p = z * 0.0909090936f + 0.111111112f;
    p = p * z + 0.142857149f;
    p = p * z + 0.200000003f;
    p = p * z + 0.333333343f;
    p = p * z + 1.0f;
    return (float)e * 0.693147182f + (s + s) * p;
}

/* Ring slot of window sample t (0 = oldest). */
static uint32_t tae_fe_slot(uint32_t oldest, uint32_t t)
{
    const uint32_t s = oldest + t;
    return (s >= (uint32_t)TAE_FE_WINDOW_LEN) ? s - (uint32_t)TAE_FE_WINDOW_LEN : s;
}

#if TAE_FE_SPECTRAL || TAE_FE_STATS
static float tae_fe_mean(const float *ring, uint32_t oldest, uint32_t c)
{
    float sum = 0.0f;
    uint32_t t;
    for (t = 0; t < (uint32_t)TAE_FE_WINDOW_LEN; ++t) {
        sum += ring[tae_fe_slot(oldest, t) * (uint32_t)TAE_FE_CHANNELS + c];
    }
    return sum / (float)TAE_FE_WINDOW_LEN;
}
#endif

#if TAE_FE_SPECTRAL
void tae_fe_fft_half(float *re, float *im)
{
    /* TAE_FE_FFT_LEN / 2 points; twiddle W_len^k is W_N^(k*N/len), entry k*N/len of the N table */
    const uint32_t n = (uint32_t)TAE_FE_FFT_LEN / 2u;
    uint32_t i, j = 0u, len;
    for (i = 1u; i < n; ++i) { /* bit-reversal permutation, j = reverse(i) kept incrementally */
        uint32_t bit = n >> 1;
        while (j & bit) {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if (i < j) {
            const float tr = re[i], ti = im[i];
            re[i] = re[j];
            im[i] = im[j];
            re[j] = tr;
            im[j] = ti;
        }
    }
    for (len = 2u; len <= n; len <<= 1) {
        const uint32_t half = len >> 1, step = (uint32_t)TAE_FE_FFT_LEN / len;
        uint32_t start, k;
        for (start = 0u; start < n; start += len) {
            for (k = 0u; k < half; ++k) {
                const uint32_t a = start + k, b = a + half;
                const float wr = tae_fe_tw_re[k * step], wi = tae_fe_tw_im[k * step];
                const float tr = wr * re[b] - wi * im[b];
                const float ti = wr * im[b] + wi * re[b];
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] = re[a] + tr;
                im[a] = im[a] + ti;
            }
        }
    }
}

/* Add the power (or magnitude) of bins 0..N/2 of the real frame packed in re/im (even samples in
 * re, odd in im) to acc: Z = FFT_{N/2}(x_even + i x_odd), then for each k
 *   E = (Z[k] + conj Z[N/2-k]) / 2,  O = (Z[k] - conj Z[N/2-k]) / 2i,  X[k] = E + W_N^k O. */
static void tae_fe_real_bins(const float *re, const float *im, float *acc)
{
    const uint32_t h = (uint32_t)TAE_FE_FFT_LEN / 2u;
    uint32_t k;
    for (k = 0u; k <= h; ++k) {
        const uint32_t ka = (k == h) ? 0u : k, kb = (k == 0u) ? 0u : h - k;
        const float ar = re[ka], ai = im[ka], br = re[kb], bi = -im[kb];
        const float er = (ar + br) * 0.5f, ei = (ai + bi) * 0.5f;
        const float or_ = (ai - bi) * 0.5f, oi = (br - ar) * 0.5f;
        const float c = (k == h) ? -1.0f : tae_fe_tw_re[k], s = (k == h) ? 0.0f : tae_fe_tw_im[k];
        const float xr = er + (c * or_ - s * oi);
        const float xi = ei + (c * oi + s * or_);
        float p = xr * xr + xi * xi;
#if !TAE_FE_POWER
        p = sqrtf(p);
#endif
        acc[k] += p;
    }
}

static void tae_fe_spectrum(const float *ring, uint32_t oldest, uint32_t c, float *out, tae_frontend_work_t *w)
{
    const float mean = tae_fe_mean(ring, oldest, c);
    uint32_t f, n, k, b;
    for (k = 0u; k <= (uint32_t)TAE_FE_FFT_LEN / 2u; ++k) {
        w->acc[k] = 0.0f;
    }
    for (f = 0u; f < (uint32_t)TAE_FE_FRAMES; ++f) {
        for (n = 0u; n < (uint32_t)TAE_FE_FFT_LEN; ++n) { /* even samples -> re, odd -> im */
            const uint32_t t = f * (uint32_t)TAE_FE_FFT_LEN + n;
            const float x = ring[tae_fe_slot(oldest, t) * (uint32_t)TAE_FE_CHANNELS + c];
            const float v = (x - mean) * tae_fe_window[n];
            if (n & 1u) {
                w->im[n >> 1] = v;
            } else {
                w->re[n >> 1] = v;
            }
        }
        tae_fe_fft_half(w->re, w->im);
        tae_fe_real_bins(w->re, w->im, w->acc);
    }
    for (b = 0u; b < (uint32_t)TAE_FE_BANDS; ++b) {
        const uint32_t k0 = tae_fe_band_edges[b], k1 = tae_fe_band_edges[b + 1u];
        float sum = 0.0f, v;
        for (k = k0; k < k1; ++k) {
            sum += w->acc[k];
        }
        v = sum / (float)((k1 - k0) * (uint32_t)TAE_FE_FRAMES);
#if TAE_FE_LOG
        if (v < (float)TAE_FE_LOG_FLOOR) {
            v = (float)TAE_FE_LOG_FLOOR; /* NaN fails the test and stays NaN */
        }
        v = tae_fe_logf(v);
#endif
        out[b] = v;
    }
}
#endif

#if TAE_FE_STATS
static void tae_fe_stats(const float *ring, uint32_t oldest, uint32_t c, float *out)
{
    const float mean = tae_fe_mean(ring, oldest, c);
    const float len = (float)TAE_FE_WINDOW_LEN;
    float all[TAE_FE_STAT_ALL];
    float sumsq = 0.0f, m2 = 0.0f, m3 = 0.0f, m4 = 0.0f, peak = 0.0f, mx, mn, std, rms;
    uint32_t t, crossings = 0u;
    int prev_pos = 0;
    mx = mn = ring[tae_fe_slot(oldest, 0u) * (uint32_t)TAE_FE_CHANNELS + c];
    for (t = 0u; t < (uint32_t)TAE_FE_WINDOW_LEN; ++t) {
        const float x = ring[tae_fe_slot(oldest, t) * (uint32_t)TAE_FE_CHANNELS + c];
        const float ax = fabsf(x);
        const float d = x - mean;
        const float d2 = d * d;
        const int pos = (d >= 0.0f);
        sumsq += x * x;
        if (x > mx) {
            mx = x;
        }
        if (x < mn) {
            mn = x;
        }
        if (ax > peak) {
            peak = ax;
        }
        m2 += d2;
        m3 += d2 * d;
        m4 += d2 * d2;
        if (t > 0u && pos != prev_pos) {
            crossings++;
        }
        prev_pos = pos;
    }
    m2 = m2 / len;
    m3 = m3 / len;
    m4 = m4 / len;
    std = sqrtf(m2);
    rms = sqrtf(sumsq / len);
    all[TAE_FE_STAT_MEAN] = mean;
    all[TAE_FE_STAT_RMS] = rms;
    all[TAE_FE_STAT_STD] = std;
    all[TAE_FE_STAT_P2P] = mx - mn;
    all[TAE_FE_STAT_CREST] = (rms > 0.0f) ? peak / rms : 0.0f;
    all[TAE_FE_STAT_SKEW] = (m2 > 0.0f) ? m3 / (m2 * std) : 0.0f;
    all[TAE_FE_STAT_KURTOSIS] = (m2 > 0.0f) ? m4 / (m2 * m2) : 0.0f;
    all[TAE_FE_STAT_ZCR] = (float)crossings / (float)(TAE_FE_WINDOW_LEN - 1);
    for (t = 0u; t < (uint32_t)TAE_FE_STAT_COUNT; ++t) {
        out[t] = all[tae_fe_stat_ids[t]];
    }
}
#endif

void tae_frontend_compute(const float *ring, uint32_t oldest, float *features, tae_frontend_work_t *work)
{
    float *out = features;
    uint32_t c;
#if TAE_FE_RAW
    uint32_t t;
    for (t = 0u; t < (uint32_t)TAE_FE_WINDOW_LEN; ++t) {
        const float *sample = &ring[tae_fe_slot(oldest, t) * (uint32_t)TAE_FE_CHANNELS];
        for (c = 0u; c < (uint32_t)TAE_FE_CHANNELS; ++c) {
            *out++ = sample[c];
        }
    }
#endif
#if TAE_FE_SPECTRAL
    for (c = 0u; c < (uint32_t)TAE_FE_CHANNELS; ++c) {
        tae_fe_spectrum(ring, oldest, c, out, work);
        out += TAE_FE_BANDS;
    }
#endif
#if TAE_FE_STATS
    for (c = 0u; c < (uint32_t)TAE_FE_CHANNELS; ++c) {
        tae_fe_stats(ring, oldest, c, out);
        out += TAE_FE_STAT_COUNT;
    }
#endif
    (void)c;
    (void)out;
    (void)work;
}
