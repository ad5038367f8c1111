/* tinyae — compiled-engine kernels. See tae_kernels.h for the arithmetic and the weight layout.
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

/* Input group g (x0..x3) -> xbuf[2g] = (x0, x2), xbuf[2g+1] = (x1, x3), sign-extended int16. */
static void tae_expand(const int8_t *in, uint32_t n, uint32_t *xbuf)
{
    uint32_t k = 0;
#if TAE_USE_DSP
    for (; k + 4u <= n; k += 4u) {
        uint32_t w;
        memcpy(&w, in + k, 4);
        *xbuf++ = (uint32_t)__sxtb16(w);
        *xbuf++ = (uint32_t)tae_sxtb16_ror8(w);
    }
#else
    for (; k + 4u <= n; k += 4u) {
        *xbuf++ = tae_pack16(in[k], in[k + 2u]);
        *xbuf++ = tae_pack16(in[k + 1u], in[k + 3u]);
    }
#endif
    if (k < n) {
        int32_t x[4];
        for (uint32_t i = 0; i < 4u; ++i) {
            x[i] = (k + i < n) ? in[k + i] : 0;
        }
        *xbuf++ = tae_pack16(x[0], x[2]);
        *xbuf++ = tae_pack16(x[1], x[3]);
    }
}

#if TAE_USE_DSP
#define TAE_MAC(acc, w, xa, xb)                                   \
    do {                                                          \
        acc = __smlad(__sxtb16(w), (xa), acc);                    \
        acc = __smlad(tae_sxtb16_ror8(w), (xb), acc);        \
    } while (0)
#else
static inline int32_t tae_lo16(uint32_t v) { return (int32_t)(int16_t)(uint16_t)(v & 0xFFFFu); }
static inline int32_t tae_hi16(uint32_t v) { return (int32_t)(int16_t)(uint16_t)(v >> 16); }
static inline int32_t tae_b8(uint32_t w, unsigned i) { return (int32_t)(int8_t)(uint8_t)(w >> (8u * i)); }
/* uint32_t accumulation: wraps like the device's SMLAD, no signed overflow in C */
#define TAE_MAC(acc, w, xa, xb)                                                             \
    do {                                                                                    \
        acc += (uint32_t)(tae_b8((w), 0) * tae_lo16(xa)) + (uint32_t)(tae_b8((w), 2) * tae_hi16(xa)) + \
               (uint32_t)(tae_b8((w), 1) * tae_lo16(xb)) + (uint32_t)(tae_b8((w), 3) * tae_hi16(xb)); \
    } while (0)
#endif

/* Fast exact requantization, valid when every channel shifts right (shift <= -1) and the generator
 * proved |acc| + 2^(r-1) < 2^31 (flag `fast`, see below): TFLite's two roundings become
 *   h = (acc * M + 2^30) >> 31                 (SaturatingRoundingDoublingHighMul: the C division's
 *                                               truncation and the nudge's sign cancel out)
 *   y = (h + 2^(r-1) + (h >> 31)) >> r         (RoundingDivideByPOT, ties away from zero)
 */
static inline int32_t tae_requant_fast(int32_t acc, int32_t mult, int32_t right)
{
    const int32_t h = (int32_t)(((int64_t)acc * mult + (1 << 30)) >> 31);
    return (h + ((1 << right) >> 1) + (h >> 31)) >> right;
}

static void tae_store(const tae_fc_layer_t *L, uint32_t o, const int32_t *acc, uint32_t count, int8_t *out)
{
    const int32_t zp = L->out_zero_point;
    const int32_t lo = L->act_min;
    const int32_t hi = L->act_max;
    for (uint32_t r = 0; r < count; ++r) {
        const uint32_t q = L->per_channel ? o + r : 0u;
        int32_t v;
        if (L->shift[q] <= -1 && L->fast) {
            v = tae_requant_fast(acc[r], L->multiplier[q], -L->shift[q]) + zp;
        } else {
            v = tae_multiply_by_quantized_multiplier(acc[r], L->multiplier[q], L->shift[q]);
            v = (int32_t)((uint32_t)v + (uint32_t)zp);
        }
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        out[o + r] = L->lut != 0 ? L->lut[v + 128] : (int8_t)v;
    }
}

void tae_fc_s8(const tae_fc_layer_t *L, const int8_t *in, int8_t *out, uint32_t *xbuf)
{
    const uint32_t n = L->in_features;
    const uint32_t m = L->out_features;
    const uint32_t *xend = xbuf + TAE_FC_XBUF_WORDS(n);
    const uint32_t *w = L->weights;

    tae_expand(in, n, xbuf);

    for (uint32_t o = 0; o < m; o += 4u) {
#if TAE_USE_DSP
        typedef int32_t acc_t;
#else
        typedef uint32_t acc_t;
#endif
        const uint32_t count = (m - o) < 4u ? (m - o) : 4u;
        acc_t a0 = (acc_t)L->bias[o];
        acc_t a1 = count > 1u ? (acc_t)L->bias[o + 1u] : 0;
        acc_t a2 = count > 2u ? (acc_t)L->bias[o + 2u] : 0;
        acc_t a3 = count > 3u ? (acc_t)L->bias[o + 3u] : 0;
#if TAE_USE_DSP
        /* One pass over the expanded input for 4 rows: per group, 2 LDRD + 2 LDRD of weights,
         * 8 SXTB16 and 8 SMLAD for 16 MACs. Written in assembly because GCC -Os spills an
         * accumulator inside this loop. */
        {
            const uint32_t *x = xbuf;
            uint32_t xa, xb, w0, w1, t;
            __asm__ volatile(
                "1:\n\t"
                "ldrd %[xa], %[xb], [%[x]], #8\n\t"
                "ldrd %[w0], %[w1], [%[w]], #8\n\t"
                "sxtb16 %[t], %[w0]\n\t"
                "smlad %[a0], %[t], %[xa], %[a0]\n\t"
                "sxtb16 %[t], %[w0], ror #8\n\t"
                "smlad %[a0], %[t], %[xb], %[a0]\n\t"
                "sxtb16 %[t], %[w1]\n\t"
                "smlad %[a1], %[t], %[xa], %[a1]\n\t"
                "sxtb16 %[t], %[w1], ror #8\n\t"
                "smlad %[a1], %[t], %[xb], %[a1]\n\t"
                "ldrd %[w0], %[w1], [%[w]], #8\n\t"
                "sxtb16 %[t], %[w0]\n\t"
                "smlad %[a2], %[t], %[xa], %[a2]\n\t"
                "sxtb16 %[t], %[w0], ror #8\n\t"
                "smlad %[a2], %[t], %[xb], %[a2]\n\t"
                "sxtb16 %[t], %[w1]\n\t"
                "smlad %[a3], %[t], %[xa], %[a3]\n\t"
                "sxtb16 %[t], %[w1], ror #8\n\t"
                "smlad %[a3], %[t], %[xb], %[a3]\n\t"
                "cmp %[x], %[xend]\n\t"
                "bne 1b\n\t"
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w),
                  [xa] "=&r"(xa), [xb] "=&r"(xb), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)
                : [xend] "r"(xend)
                : "cc", "memory");
        }
#else
        const uint32_t *x = xbuf;
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
#endif
        const int32_t acc[4] = {(int32_t)a0, (int32_t)a1, (int32_t)a2, (int32_t)a3};
        tae_store(L, o, acc, count, out);
    }
}

void tae_lut_s8(const int8_t *lut, const int8_t *in, int8_t *out, uint32_t n)
{
    for (uint32_t i = 0; i < n; ++i) {
        out[i] = lut[(int32_t)in[i] + 128];
    }
}
