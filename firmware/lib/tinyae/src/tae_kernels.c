/* tinyae — compiled-engine kernels. See tae_kernels.h for the arithmetic and the weight layouts.
 *
 * Semantics follow TFLM's reference int8 FULLY_CONNECTED and TFLite's MultiplyByQuantizedMultiplier
 * (learned from reading tensorflow/lite/kernels/internal/common.h and gemmlowp's fixedpoint.h; the
 * code here is written from that description). Wrap-around int32 arithmetic is done on uint32_t so
 * the C code has no signed overflow (TFLM's compiled code wraps the same way).
 */
#include "tae_kernels.h"

#include <string.h>

#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && (__ARM_FEATURE_DSP == 1)
#define TAE_USE_DSP 1
#include <arm_acle.h>
/* SXTB16 of the word rotated right by 8: bytes 1 and 3 sign-extended to two int16 (one instruction) */
static inline int16x2_t tae_sxtb16_ror8(uint32_t w)
{
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
    return r;
}
#else
#define TAE_USE_DSP 0
#endif

int32_t tae_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    /* TFLite: x * (1 << left_shift), wrapping */
    const int32_t a = (int32_t)((uint32_t)x << left);
    int32_t high;
    if (a == INT32_MIN && multiplier == INT32_MIN) {
        high = INT32_MAX;
    } else {
        /* SaturatingRoundingDoublingHighMul: (a*b + nudge) / 2^31, C division (toward zero) */
        const int64_t ab = (int64_t)a * (int64_t)multiplier;
        const int64_t nudge = ab >= 0 ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30));
        high = (int32_t)((ab + nudge) / ((int64_t)1 << 31));
    }
    /* RoundingDivideByPOT(high, right): round to nearest, ties away from zero */
    const int32_t mask = (int32_t)((1u << right) - 1u);
    const int32_t remainder = high & mask;
    const int32_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
    return (high >> right) + (remainder > threshold ? 1 : 0);
}

/* Packs two int16 values into a word: low half a, high half b (the SXTB16 result layout). */
static inline uint32_t tae_pack16(int32_t a, int32_t b)
{
    return ((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16);
}

/* Input group g (x0..x3) -> xbuf[2g] = (x0, x2), xbuf[2g+1] = (x1, x3), sign-extended int16.
 * Returns the sum of the inputs (the paired layout's correction term needs it). */
static int32_t tae_expand(const int8_t *in, uint32_t n, uint32_t *xbuf)
{
    uint32_t k = 0;
    int32_t sum = 0;
#if TAE_USE_DSP
    for (; k + 4u <= n; k += 4u) {
        uint32_t w;
        memcpy(&w, in + k, 4);
        const int16x2_t lo = __sxtb16(w);
        const int16x2_t hi = tae_sxtb16_ror8(w);
        *xbuf++ = (uint32_t)lo;
        *xbuf++ = (uint32_t)hi;
        sum = __smlad(__sadd16(lo, hi), 0x00010001, sum);
    }
#else
    for (; k + 4u <= n; k += 4u) {
        *xbuf++ = tae_pack16(in[k], in[k + 2u]);
        *xbuf++ = tae_pack16(in[k + 1u], in[k + 3u]);
        sum += in[k] + in[k + 1u] + in[k + 2u] + in[k + 3u];
    }
#endif
    if (k < n) {
        int32_t x[4];
        for (uint32_t i = 0; i < 4u; ++i) {
            x[i] = (k + i < n) ? in[k + i] : 0;
            sum += x[i];
        }
        *xbuf++ = tae_pack16(x[0], x[2]);
        *xbuf++ = tae_pack16(x[1], x[3]);
    }
    return sum;
}

#if !TAE_USE_DSP
static inline int32_t tae_lo16(uint32_t v) { return (int32_t)(int16_t)(uint16_t)(v & 0xFFFFu); }
static inline int32_t tae_hi16(uint32_t v) { return (int32_t)(int16_t)(uint16_t)(v >> 16); }
static inline int32_t tae_b8(uint32_t w, unsigned i) { return (int32_t)(int8_t)(uint8_t)(w >> (8u * i)); }
static inline int32_t tae_u8(uint32_t w, unsigned i) { return (int32_t)((w >> (8u * i)) & 0xFFu); }
/* uint32_t accumulation: wraps like the device's SMLAD, no signed overflow in C.
 * Plain layout: word of one row, bytes k0..k3 against xa = (x0, x2), xb = (x1, x3). */
#define TAE_MAC(acc, w, xa, xb)                                                             \
    do {                                                                                    \
        acc += (uint32_t)(tae_b8((w), 0) * tae_lo16(xa)) + (uint32_t)(tae_b8((w), 2) * tae_hi16(xa)) + \
               (uint32_t)(tae_b8((w), 1) * tae_lo16(xb)) + (uint32_t)(tae_b8((w), 3) * tae_hi16(xb)); \
    } while (0)
/* Paired layout: word of two rows (even, odd) and one input pair x = (xp, xq): bytes
 * (w_even[p] + 128, w_odd[p], w_even[q] + 128, w_odd[q]); the portable path decodes it. */
#define TAE_MAC_PAIR(ae, ao, w, x)                                                                   \
    do {                                                                                             \
        ae += (uint32_t)((tae_u8((w), 0) - 128) * tae_lo16(x)) + (uint32_t)((tae_u8((w), 2) - 128) * tae_hi16(x)); \
        ao += (uint32_t)(tae_b8((w), 1) * tae_lo16(x)) + (uint32_t)(tae_b8((w), 3) * tae_hi16(x));   \
    } while (0)
#endif

/* Fast exact requantization, valid when every channel shifts right (shift <= -1) and the generator
 * proved |acc| < 2^30 and |acc| + 2 + 2^(r-1) + 128 * 2^r < 2^31 (flag `fast`, train/compiled/lower.py).
 * TFLite's two roundings then become
 *   h = (2acc * M + 2^31) >> 32          SaturatingRoundingDoublingHighMul: the C division's truncation
 *                                        and the nudge's sign cancel out; this is one SMMULR on the M4
 *   y = (h + C + (h >> 31)) >> r         RoundingDivideByPOT (ties away from zero) plus the output zero
 *                                        point: C = 2^(r-1) + z_out * 2^r, so no separate add
 * followed by the clamp to [act_min, act_max] (an 8-bit saturation, then byte-wise max/min). */
static inline int32_t tae_high_mul(int32_t acc, int32_t mult)
{
    const int32_t a2 = (int32_t)((uint32_t)acc << 1);
#if TAE_USE_DSP
    int32_t h;
    __asm__("smmulr %0, %1, %2" : "=r"(h) : "r"(a2), "r"(mult));
    return h;
#else
    return (int32_t)(((int64_t)a2 * mult + ((int64_t)1 << 31)) >> 32);
#endif
}

static inline int32_t tae_round_shift(int32_t h, int32_t c, uint32_t right)
{
    /* wrap-free: the generator's bound keeps h + c + (h >> 31) inside int32 */
    return (h + c + (h >> 31)) >> right;
}

static inline int32_t tae_sat8(int32_t v)
{
#if TAE_USE_DSP
    return __ssat(v, 8);
#else
    return v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
}

/* Per-layer constants of the fast requantization, computed once per call. */
typedef struct {
    int32_t mult;   /* per-tensor multiplier */
    int32_t round;  /* per-tensor C = 2^(r-1) + z_out * 2^r */
    uint32_t right; /* per-tensor r */
    int32_t zp2;    /* 2 * z_out + 1: C = zp2 * 2^(r-1) */
    uint32_t lo4;   /* act_min in each byte */
    uint32_t hi4;   /* act_max in each byte */
} tae_rq_t;

static inline uint32_t tae_bytes4(int32_t v)
{
    return ((uint32_t)v & 0xFFu) * 0x01010101u;
}

/* 4 requantized outputs (saturated to int8), clamped to the activation range, packed little-endian. */
static inline uint32_t tae_clamp4(uint32_t y, const tae_rq_t *q)
{
#if TAE_USE_DSP
    (void)__ssub8(y, q->lo4);
    y = __sel(y, q->lo4);
    (void)__ssub8(q->hi4, y);
    return __sel(y, q->hi4);
#else
    uint32_t r = 0;
    for (unsigned i = 0; i < 4u; ++i) {
        int32_t v = (int8_t)(uint8_t)(y >> (8u * i));
        const int32_t lo = (int8_t)(uint8_t)(q->lo4 & 0xFFu);
        const int32_t hi = (int8_t)(uint8_t)(q->hi4 & 0xFFu);
        v = v < lo ? lo : (v > hi ? hi : v);
        r |= ((uint32_t)v & 0xFFu) << (8u * i);
    }
    return r;
#endif
}

static inline uint32_t tae_pack4(int32_t y0, int32_t y1, int32_t y2, int32_t y3)
{
    return ((uint32_t)y0 & 0xFFu) | (((uint32_t)y1 & 0xFFu) << 8) | (((uint32_t)y2 & 0xFFu) << 16) |
           ((uint32_t)y3 << 24);
}

static int32_t tae_rq_channel(const tae_fc_layer_t *L, int32_t zp2, uint32_t o, int32_t acc)
{
    const uint32_t right = (uint32_t)(-L->shift[o]);
    const int32_t c = (int32_t)((uint32_t)zp2 << (right - 1u)); /* z_out * 2^r + 2^(r-1) */
    return tae_sat8(tae_round_shift(tae_high_mul(acc, L->multiplier[o]), c, right));
}

/* Writes 4 packed outputs (count of them valid) through the layer's table, if any. */
static void tae_put4(const tae_fc_layer_t *L, uint32_t y, uint32_t count, int8_t *dst)
{
    if (L->lut != 0) {
        const int8_t *lut = L->lut + 128;
        for (uint32_t r = 0; r < count; ++r) {
            dst[r] = lut[(int8_t)(uint8_t)(y >> (8u * r))];
        }
    } else {
        for (uint32_t r = 0; r < count; ++r) {
            dst[r] = (int8_t)(uint8_t)(y >> (8u * r));
        }
    }
}

/* The general path: TFLite's MultiplyByQuantizedMultiplier for any shift and accumulator. */
static void tae_store(const tae_fc_layer_t *L, uint32_t o, const int32_t *acc, uint32_t count, int8_t *out)
{
    const int32_t zp = L->out_zero_point;
    const int32_t lo = L->act_min;
    const int32_t hi = L->act_max;
    for (uint32_t r = 0; r < count; ++r) {
        const uint32_t q = L->per_channel ? o + r : 0u;
        int32_t v = tae_multiply_by_quantized_multiplier(acc[r], L->multiplier[q], L->shift[q]);
        v = (int32_t)((uint32_t)v + (uint32_t)zp);
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        out[o + r] = L->lut != 0 ? L->lut[v + 128] : (int8_t)v;
    }
}

/* Fast path, per-channel multipliers or a table or a partial block. */
static void tae_store_fast_slow(const tae_fc_layer_t *L, const tae_rq_t *q, uint32_t o, const int32_t *acc,
                                uint32_t count, int8_t *out)
{
    int32_t y[4] = {0, 0, 0, 0};
    for (uint32_t r = 0; r < count; ++r) {
        y[r] = L->per_channel ? tae_rq_channel(L, q->zp2, o + r, acc[r])
                              : tae_sat8(tae_round_shift(tae_high_mul(acc[r], q->mult), q->round, q->right));
    }
    tae_put4(L, tae_clamp4(tae_pack4(y[0], y[1], y[2], y[3]), q), count, out + o);
}

#if TAE_USE_DSP
/* One group of 4 inputs for 4 rows, plain layout: 1 LDRD of inputs, 2 LDRD of weights, 8 SXTB16,
 * 8 SMLAD for 16 MACs. */
#define TAE_GROUP_PLAIN_ASM                             \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                 \
    "ldrd %[w0], %[w1], [%[w]], #8\n\t"                 \
    "sxtb16 %[t], %[w0]\n\t"                            \
    "smlad %[a0], %[t], %[xa], %[a0]\n\t"               \
    "sxtb16 %[t], %[w0], ror #8\n\t"                    \
    "smlad %[a0], %[t], %[xb], %[a0]\n\t"               \
    "sxtb16 %[t], %[w1]\n\t"                            \
    "smlad %[a1], %[t], %[xa], %[a1]\n\t"               \
    "sxtb16 %[t], %[w1], ror #8\n\t"                    \
    "smlad %[a1], %[t], %[xb], %[a1]\n\t"               \
    "ldrd %[w0], %[w1], [%[w]], #8\n\t"                 \
    "sxtb16 %[t], %[w0]\n\t"                            \
    "smlad %[a2], %[t], %[xa], %[a2]\n\t"               \
    "sxtb16 %[t], %[w0], ror #8\n\t"                    \
    "smlad %[a2], %[t], %[xb], %[a2]\n\t"               \
    "sxtb16 %[t], %[w1]\n\t"                            \
    "smlad %[a3], %[t], %[xa], %[a3]\n\t"               \
    "sxtb16 %[t], %[w1], ror #8\n\t"                    \
    "smlad %[a3], %[t], %[xb], %[a3]\n\t"

/* One group of 4 inputs for 4 rows, paired layout: a word holds two rows' weights for one input
 * pair, the even row's bytes offset by +128 so they read as unsigned. As int16 lanes the raw word is
 * 256 * w_odd + (w_even + 128): SMLAD of the raw word accumulates A = 256 * S_odd + S_even + 128 * sum x,
 * SMLAD of its UXTB16 accumulates B = S_even + 128 * sum x; so 3 instructions give 4 MACs.
 * 1 LDRD of inputs, 2 LDRD of weights, 4 UXTB16, 8 SMLAD for 16 MACs. */
#define TAE_GROUP_PAIR_ASM                              \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                 \
    "ldrd %[w0], %[w1], [%[w]], #8\n\t"                 \
    "smlad %[a0], %[w0], %[xa], %[a0]\n\t"              \
    "uxtb16 %[t], %[w0]\n\t"                            \
    "smlad %[a1], %[t], %[xa], %[a1]\n\t"               \
    "smlad %[a0], %[w1], %[xb], %[a0]\n\t"              \
    "uxtb16 %[t], %[w1]\n\t"                            \
    "smlad %[a1], %[t], %[xb], %[a1]\n\t"               \
    "ldrd %[w0], %[w1], [%[w]], #8\n\t"                 \
    "smlad %[a2], %[w0], %[xa], %[a2]\n\t"              \
    "uxtb16 %[t], %[w0]\n\t"                            \
    "smlad %[a3], %[t], %[xa], %[a3]\n\t"               \
    "smlad %[a2], %[w1], %[xb], %[a2]\n\t"              \
    "uxtb16 %[t], %[w1]\n\t"                            \
    "smlad %[a3], %[t], %[xb], %[a3]\n\t"

/* Two groups per iteration; an odd group count enters at the second half. Written in assembly
 * because GCC -Os spills an accumulator inside this loop. */
#define TAE_LOOP_ASM(GROUP)                                                                         \
    __asm__ volatile("cmp %[odd], #0\n\t"                                                           \
                     "bne 2f\n\t"                                                                   \
                     "1:\n\t" GROUP "2:\n\t" GROUP "cmp %[x], %[xend]\n\t"                          \
                     "bne 1b\n\t"                                                                   \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x),     \
                       [w] "+r"(w), [xa] "=&r"(xa), [xb] "=&r"(xb), [w0] "=&r"(w0), [w1] "=&r"(w1), \
                       [t] "=&r"(t)                                                                 \
                     : [xend] "r"(xend), [odd] "r"(odd)                                             \
                     : "cc", "memory")
#endif

void tae_fc_s8(const tae_fc_layer_t *L, const int8_t *in, int8_t *out, uint32_t *xbuf)
{
    const uint32_t n = L->in_features;
    const uint32_t m = L->out_features;
    const uint32_t *xend = xbuf + TAE_FC_XBUF_WORDS(n);
    const uint32_t *w = L->weights;
    const int32_t *bias = L->bias;
    const uint32_t paired = L->paired;
    const uint32_t simple = L->fast && !L->per_channel && L->lut == 0;
    tae_rq_t q;

    /* sum x * 128: the paired layout's offset of the even rows' weights */
    const uint32_t corr = (uint32_t)tae_expand(in, n, xbuf) << 7;
    q.mult = L->multiplier[0];
    q.right = (uint32_t)(-L->shift[0]);
    q.zp2 = 2 * (int32_t)L->out_zero_point + 1;
    q.round = L->fast ? (int32_t)((uint32_t)q.zp2 << (q.right - 1u)) : 0;
    q.lo4 = tae_bytes4(L->act_min);
    q.hi4 = tae_bytes4(L->act_max);

    for (uint32_t o = 0; o < m; o += 4u) {
        const uint32_t count = (m - o) < 4u ? (m - o) : 4u;
        /* bias is padded to a multiple of 4 entries by the generator */
        uint32_t b0 = (uint32_t)bias[o], b1 = (uint32_t)bias[o + 1u];
        uint32_t b2 = (uint32_t)bias[o + 2u], b3 = (uint32_t)bias[o + 3u];
        uint32_t a0, a1, a2, a3;
        if (paired) {
            a0 = a1 = b0 - corr;
            a2 = a3 = b2 - corr;
        } else {
            a0 = b0;
            a1 = b1;
            a2 = b2;
            a3 = b3;
        }
#if TAE_USE_DSP
        {
            const uint32_t *x = xbuf;
            const uint32_t odd = ((n + 3u) / 4u) & 1u;
            uint32_t xa, xb, w0, w1, t;
            if (paired) {
                TAE_LOOP_ASM(TAE_GROUP_PAIR_ASM);
            } else {
                TAE_LOOP_ASM(TAE_GROUP_PLAIN_ASM);
            }
        }
        if (paired) {
            /* A - B = 256 * S_odd exactly: the generator proved |S_odd| < 2^23 */
            const int32_t s1 = (int32_t)(a0 - a1) >> 8;
            const int32_t s3 = (int32_t)(a2 - a3) >> 8;
            a0 = a1;
            a1 = b1 + (uint32_t)s1;
            a2 = a3;
            a3 = b3 + (uint32_t)s3;
        }
#else
        {
            const uint32_t *x = xbuf;
            if (paired) {
                a0 = b0;
                a2 = b2;
                a1 = b1;
                a3 = b3;
                do {
                    const uint32_t xa = x[0];
                    const uint32_t xb = x[1];
                    x += 2;
                    TAE_MAC_PAIR(a0, a1, w[0], xa);
                    TAE_MAC_PAIR(a0, a1, w[1], xb);
                    TAE_MAC_PAIR(a2, a3, w[2], xa);
                    TAE_MAC_PAIR(a2, a3, w[3], xb);
                    w += 4;
                } while (x != xend);
            } else {
                do {
                    const uint32_t xa = x[0];
                    const uint32_t xb = x[1];
                    const uint32_t w0 = w[0];
                    const uint32_t w1 = w[1];
                    const uint32_t w2 = w[2];
                    const uint32_t w3 = w[3];
                    x += 2;
                    w += 4;
                    TAE_MAC(a0, w0, xa, xb);
                    TAE_MAC(a1, w1, xa, xb);
                    TAE_MAC(a2, w2, xa, xb);
                    TAE_MAC(a3, w3, xa, xb);
                } while (x != xend);
            }
            (void)corr;
        }
#endif
        if (simple && count == 4u) {
            const int32_t y0 = tae_sat8(tae_round_shift(tae_high_mul((int32_t)a0, q.mult), q.round, q.right));
            const int32_t y1 = tae_sat8(tae_round_shift(tae_high_mul((int32_t)a1, q.mult), q.round, q.right));
            const int32_t y2 = tae_sat8(tae_round_shift(tae_high_mul((int32_t)a2, q.mult), q.round, q.right));
            const int32_t y3 = tae_sat8(tae_round_shift(tae_high_mul((int32_t)a3, q.mult), q.round, q.right));
            const uint32_t y = tae_clamp4(tae_pack4(y0, y1, y2, y3), &q);
            memcpy(out + o, &y, 4); /* one STR on the M4 (unaligned access is allowed) */
        } else {
            const int32_t acc[4] = {(int32_t)a0, (int32_t)a1, (int32_t)a2, (int32_t)a3};
            if (L->fast) {
                tae_store_fast_slow(L, &q, o, acc, count, out);
            } else {
                tae_store(L, o, acc, count, out);
            }
        }
    }
}

void tae_lut_s8(const int8_t *lut, const int8_t *in, int8_t *out, uint32_t n)
{
    for (uint32_t i = 0; i < n; ++i) {
        out[i] = lut[(int32_t)in[i] + 128];
    }
}
