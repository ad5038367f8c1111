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
/* Tables rendered from the manifest (float32 values rounded from float64 by the generator): the
 * window function times 1/sum(w) (the split step doubles it back, so a bin-centred tone of
 * amplitude A reads A); the twiddles cos(2 pi k/N), -sin(2 pi k/N) for k < N/2, interleaved; the
 * bit-reversal permutation of the N/2 complex points; band b averages bins [edges[b], edges[b+1]). */
const float tae_fe_window[TAE_FE_FFT_LEN] = TAE_FE_WINDOW_INIT;
const float tae_fe_twiddle[TAE_FE_FFT_LEN] = TAE_FE_TWIDDLE_INIT;
const uint16_t tae_fe_bitrev[TAE_FE_FFT_LEN / 2] = TAE_FE_BITREV_INIT;
const uint16_t tae_fe_band_edges[TAE_FE_BANDS + 1] = TAE_FE_BAND_EDGES_INIT;
#if TAE_FE_LOG
/* The floor of each band's log, channel-major like the features (fitted on the training windows or
 * set in the config; manifest frontend.spectral.log_floor). */
const float tae_fe_log_floor[TAE_FE_SPECTRAL_SIZE] = TAE_FE_LOG_FLOOR_INIT;
#endif
#endif

#if TAE_FE_STATS
const uint8_t tae_fe_stat_ids[TAE_FE_STAT_COUNT] = TAE_FE_STAT_IDS_INIT;
#endif

/* Natural log (tae_frontend.h). Positive normal floats are split into 2^e * m with m in
 * [sqrt(1/2), sqrt(2)) by integer arithmetic on the bits (adding 1 - sqrt(1/2) to the mantissa carries
 * into the exponent exactly when m >= sqrt(2)); then log(m) = 2s (1 + z/3 + z^2/5 + z^3/7),
 * s = (m-1)/(m+1), z = s^2, |s| <= 0.172 (the next term is below 3e-8). */
static float tae_fe_log(float x)
{
    union {
        float f;
        uint32_t u;
    } v;
    int32_t e;
    float m, s, z, p;
    v.f = x;
    if (v.u - 0x00800000u >= 0x7F000000u) {
        return x; /* zero, subnormals, negatives, +-inf and NaN pass through */
    }
    v.u += 0x3F800000u - 0x3F3504F3u;
    e = (int32_t)(v.u >> 23) - 127;
    v.u = (v.u & 0x007FFFFFu) + 0x3F3504F3u;
    m = v.f;
    s = (m - 1.0f) / (m + 1.0f);
    z = s * s;
    p = z * 0.142857149f + 0.200000003f;
    p = p * z + 0.333333343f;
    p = p * z + 1.0f;
    return (float)e * 0.693147182f + (s + s) * p;
}

float tae_fe_logf(float x)
{
    return tae_fe_log(x);
}

#if TAE_FE_RAW || TAE_FE_STATS
/* Ring slot of window sample t (0 = oldest). */
static uint32_t tae_fe_slot(uint32_t oldest, uint32_t t)
{
    const uint32_t s = oldest + t;
    return (s >= (uint32_t)TAE_FE_WINDOW_LEN) ? s - (uint32_t)TAE_FE_WINDOW_LEN : s;
}
#endif

#if TAE_FE_SPECTRAL || TAE_FE_STATS
/* sum + ring[off] + ring[off + C] + ... over n samples of one channel, sequentially in that order
 * (offsets, not pointers: a pointer past the ring's end would be undefined behaviour). */
static float tae_fe_sum_run(const float *ring, uint32_t off, uint32_t n, float sum)
{
    for (; n >= 4u; n -= 4u, off += 4u * (uint32_t)TAE_FE_CHANNELS) {
        const float *const p = ring + off;
        sum += p[0];
        sum += p[TAE_FE_CHANNELS];
        sum += p[2 * TAE_FE_CHANNELS];
        sum += p[3 * TAE_FE_CHANNELS];
    }
    for (; n > 0u; --n, off += (uint32_t)TAE_FE_CHANNELS) {
        sum += ring[off];
    }
    return sum;
}

/* The window mean of channel c: a sequential float32 sum in time order (the ring's two runs, slots
 * oldest..L-1 then 0..oldest-1) divided by the length. */
static float tae_fe_mean(const float *ring, uint32_t oldest, uint32_t c)
{
    const float sum = tae_fe_sum_run(ring, oldest * (uint32_t)TAE_FE_CHANNELS + c, (uint32_t)TAE_FE_WINDOW_LEN - oldest, 0.0f);
    return tae_fe_sum_run(ring, c, oldest, sum) / (float)TAE_FE_WINDOW_LEN;
}
#endif

#if TAE_FE_SPECTRAL
/* One butterfly a' = a + w b, b' = a - w b on interleaved complex values. */
#define TAE_FE_BFLY(pa, pb, wr, wi)                     \
    do {                                                \
        const float ar_ = (pa)[0], ai_ = (pa)[1];       \
        const float br_ = (pb)[0], bi_ = (pb)[1];       \
        const float tr_ = (wr) * br_ - (wi) * bi_;      \
        const float ti_ = (wr) * bi_ + (wi) * br_;      \
        (pb)[0] = ar_ - tr_;                            \
        (pb)[1] = ai_ - ti_;                            \
        (pa)[0] = ar_ + tr_;                            \
        (pa)[1] = ai_ + ti_;                            \
    } while (0)

void tae_fe_fft_half(float *z)
{
    /* z: TAE_FE_FFT_LEN/2 complex values (re, im interleaved) in bit-reversed order, transformed in
     * place (radix-2 decimation in time). The stages of length 2 and 4 have the twiddles 1 and -i
     * and run as one pass of additions; a later stage of length len uses W_len^k = W_N^(k N/len),
     * entry k N/len of the twiddle table, and k = 0 (W = 1) adds without multiplying. */
    float *const end = z + TAE_FE_FFT_LEN;
    uint32_t len;
#if TAE_FE_FFT_LEN >= 8
    float *p;
    for (p = z; p < end; p += 8) {
        const float b0r = p[0] + p[2], b0i = p[1] + p[3], b1r = p[0] - p[2], b1i = p[1] - p[3];
        const float b2r = p[4] + p[6], b2i = p[5] + p[7], b3r = p[4] - p[6], b3i = p[5] - p[7];
        p[0] = b0r + b2r;
        p[1] = b0i + b2i;
        p[4] = b0r - b2r;
        p[5] = b0i - b2i;
        p[2] = b1r + b3i; /* b1 + (-i) b3 */
        p[3] = b1i - b3r;
        p[6] = b1r - b3i; /* b1 - (-i) b3 */
        p[7] = b1i + b3r;
    }
    len = 8u;
#else
    {
        const float ar = z[0], ai = z[1];
        z[0] = ar + z[2];
        z[1] = ai + z[3];
        z[2] = ar - z[2];
        z[3] = ai - z[3];
    }
    len = 4u;
#endif
    for (; len <= (uint32_t)TAE_FE_FFT_LEN / 2u; len <<= 1) {
        const uint32_t tstep = 2u * ((uint32_t)TAE_FE_FFT_LEN / len); /* floats between twiddles */
        const float *tw = tae_fe_twiddle + tstep;
        float *pa;
        uint32_t k;
        for (pa = z; pa < end; pa += 2u * len) { /* k = 0: W = 1 */
            float *const pb = pa + len;
            const float ar = pa[0], ai = pa[1], br = pb[0], bi = pb[1];
            pb[0] = ar - br;
            pb[1] = ai - bi;
            pa[0] = ar + br;
            pa[1] = ai + bi;
        }
        for (k = 1u; k < len / 2u; ++k, tw += tstep) {
            const float wr = tw[0], wi = tw[1];
            for (pa = z + 2u * k; pa < end; pa += 2u * len) {
                float *const pb = pa + len;
                TAE_FE_BFLY(pa, pb, wr, wi);
            }
        }
    }
}

#if TAE_FE_POWER
#define TAE_FE_BIN(re, im) ((re) * (re) + (im) * (im))
#else
#define TAE_FE_BIN(re, im) sqrtf((re) * (re) + (im) * (im))
#endif
#if TAE_FE_FRAMES == 1
#define TAE_FE_ACC(dst, v) ((dst) = (v))
#else
#define TAE_FE_ACC(dst, v) ((dst) += (v))
#endif

/* Power (or magnitude) of bins 1..N/2 of the real frame whose even samples are the real and odd
 * samples the imaginary parts of z = FFT_{N/2}: with a = Z[k], b = Z[N/2-k],
 *   E = a + conj b,  O = (a - conj b) / i,  P = W_N^k O,  X[k] = E + P,  X[N/2-k] = conj(E - P)
 * (the window's 1/sum(w) makes these the bins of the frame scaled by 2/sum(w)); X[N/4] = 2 conj Z[N/4]
 * and X[N/2] = 2 (Re Z[0] - Im Z[0]). Bin 0 (DC) is never kept and not computed. */
static void tae_fe_real_bins(const float *z, float *acc)
{
    const uint32_t h = (uint32_t)TAE_FE_FFT_LEN / 2u;
    const float *a = z + 2, *b = z + 2u * (h - 1u), *tw = tae_fe_twiddle + 2;
    uint32_t k;
    for (k = 1u; k < h / 2u; ++k, a += 2, b -= 2, tw += 2) {
        const float er = a[0] + b[0], ei = a[1] - b[1];
        const float or_ = a[1] + b[1], oi = b[0] - a[0];
        const float pr = tw[0] * or_ - tw[1] * oi, pi = tw[0] * oi + tw[1] * or_;
        const float xr = er + pr, xi = ei + pi, yr = er - pr, yi = ei - pi;
        TAE_FE_ACC(acc[k], TAE_FE_BIN(xr, xi));
        TAE_FE_ACC(acc[h - k], TAE_FE_BIN(yr, yi));
    }
    {
        const float xr = a[0] + a[0], xi = a[1] + a[1]; /* k = N/4: a = Z[N/4] */
        const float d = z[0] - z[1], x = d + d;
        TAE_FE_ACC(acc[h / 2u], TAE_FE_BIN(xr, xi));
        TAE_FE_ACC(acc[h], TAE_FE_BIN(x, 0.0f));
    }
}

/* Pairs m0..m1-1 of a frame, read from ring offset `off` on (no ring wrap among them): samples 2m
 * and 2m+1, less the mean, times the window, become complex point bitrev[m]. Returns the offset
 * past them (an offset, so that no pointer beyond the ring is ever formed). */
static uint32_t tae_fe_pack(const float *ring, uint32_t off, uint32_t m0, uint32_t m1, float mean, float *z)
{
    const float *win = tae_fe_window + 2u * m0;
    const uint16_t *rev = tae_fe_bitrev + m0;
    uint32_t m;
    for (m = m0; m < m1; ++m, off += 2u * (uint32_t)TAE_FE_CHANNELS, win += 2) {
        const float *const p = ring + off;
        float *const d = z + 2u * *rev++;
        d[0] = (p[0] - mean) * win[0];
        d[1] = (p[TAE_FE_CHANNELS] - mean) * win[1];
    }
    return off;
}

static void tae_fe_spectrum(const float *ring, uint32_t oldest, uint32_t c, float *out, tae_frontend_work_t *w)
{
    const uint32_t span = (uint32_t)TAE_FE_WINDOW_LEN * (uint32_t)TAE_FE_CHANNELS;
    const uint32_t h = (uint32_t)TAE_FE_FFT_LEN / 2u;
    const uint32_t before_end = (uint32_t)TAE_FE_WINDOW_LEN - oldest; /* samples before the ring wraps */
    const float mean = tae_fe_mean(ring, oldest, c);
    uint32_t off = oldest * (uint32_t)TAE_FE_CHANNELS + c; /* the next sample's offset in the ring */
    uint32_t f, b;
#if TAE_FE_FRAMES > 1
    for (b = 0u; b <= h; ++b) {
        w->acc[b] = 0.0f;
    }
#endif
    for (f = 0u; f < (uint32_t)TAE_FE_FRAMES; ++f) {
        const uint32_t s0 = f * (uint32_t)TAE_FE_FFT_LEN; /* the frame's first sample in the window */
        if (before_end > s0 && before_end < s0 + (uint32_t)TAE_FE_FFT_LEN) {
            const uint32_t n = before_end - s0; /* samples of this frame before the ring's end */
            uint32_t mid = n / 2u;
            off = tae_fe_pack(ring, off, 0u, mid, mean, w->z);
            if (n & 1u) { /* pair `mid` straddles the end: its second sample is slot 0 */
                float *const d = w->z + 2u * tae_fe_bitrev[mid];
                d[0] = (ring[off] - mean) * tae_fe_window[2u * mid];
                d[1] = (ring[off + (uint32_t)TAE_FE_CHANNELS - span] - mean) * tae_fe_window[2u * mid + 1u];
                off += 2u * (uint32_t)TAE_FE_CHANNELS;
                mid += 1u;
            }
            off -= span;
            off = tae_fe_pack(ring, off, mid, h, mean, w->z);
        } else {
            off = tae_fe_pack(ring, off, 0u, h, mean, w->z);
        }
        if (off >= span) {
            off -= span;
        }
        tae_fe_fft_half(w->z);
        tae_fe_real_bins(w->z, w->acc);
    }
#if TAE_FE_LOG
    const float *const lfloor = tae_fe_log_floor + c * (uint32_t)TAE_FE_BANDS;
#endif
#if TAE_FE_UNIT_BANDS
    /* every band is one bin of one frame: band b is bin edges[0] + b */
    {
        const float *a = w->acc + tae_fe_band_edges[0];
        for (b = 0u; b < (uint32_t)TAE_FE_BANDS; ++b) {
            float v = a[b];
#if TAE_FE_LOG
            if (v < lfloor[b]) {
                v = lfloor[b]; /* NaN fails the test and stays NaN */
            }
            v = tae_fe_log(v);
#endif
            out[b] = v;
        }
    }
#else
    for (b = 0u; b < (uint32_t)TAE_FE_BANDS; ++b) {
        const uint32_t k0 = tae_fe_band_edges[b], k1 = tae_fe_band_edges[b + 1u];
        const uint32_t count = (k1 - k0) * (uint32_t)TAE_FE_FRAMES;
        float v = w->acc[k0];
        uint32_t k;
        for (k = k0 + 1u; k < k1; ++k) {
            v += w->acc[k];
        }
        if (count != 1u) {
            v = v / (float)count;
        }
#if TAE_FE_LOG
        if (v < lfloor[b]) {
            v = lfloor[b]; /* NaN fails the test and stays NaN */
        }
        v = tae_fe_log(v);
#endif
        out[b] = v;
    }
#endif
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
