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

static inline int8_t tae_output(const tae_fc_layer_t *L, uint32_t o, int32_t acc)
{
    const uint32_t q = L->per_channel ? o : 0u;
    int32_t v = tae_multiply_by_quantized_multiplier(acc, L->multiplier[q], L->shift[q]);
    v = (int32_t)((uint32_t)v + (uint32_t)(int32_t)L->out_zero_point);
    if (v < L->act_min) {
        v = L->act_min;
    }
    if (v > L->act_max) {
        v = L->act_max;
    }
    if (L->lut != 0) {
        return L->lut[v + 128];
    }
    return (int8_t)v;
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
        int32_t x[4] = {0, 0, 0, 0};
        for (uint32_t i = 0; k + i < n; ++i) {
            x[i] = in[k + i];
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

void tae_fc_s8(const tae_fc_layer_t *L, const int8_t *in, int8_t *out, uint32_t *xbuf)
{
    const uint32_t n = L->in_features;
    const uint32_t m = L->out_features;
    const uint32_t groups = (n + 3u) >> 2;
    const uint32_t *w = L->weights;

    tae_expand(in, n, xbuf);

    for (uint32_t o = 0; o < m; o += 4u) {
#if TAE_USE_DSP
        typedef int32_t acc_t;
#else
        typedef uint32_t acc_t;
#endif
        acc_t a0 = (acc_t)L->bias[o];
        acc_t a1 = (o + 1u < m) ? (acc_t)L->bias[o + 1u] : 0;
        acc_t a2 = (o + 2u < m) ? (acc_t)L->bias[o + 2u] : 0;
        acc_t a3 = (o + 3u < m) ? (acc_t)L->bias[o + 3u] : 0;
        const uint32_t *x = xbuf;
        for (uint32_t g = groups; g != 0u; --g) {
            const uint32_t xa = x[0];
            const uint32_t xb = x[1];
            x += 2;
            TAE_MAC(a0, w[0], xa, xb);
            TAE_MAC(a1, w[1], xa, xb);
            TAE_MAC(a2, w[2], xa, xb);
            TAE_MAC(a3, w[3], xa, xb);
            w += 4;
        }
        out[o] = tae_output(L, o, (int32_t)a0);
        if (o + 1u < m) {
            out[o + 1u] = tae_output(L, o + 1u, (int32_t)a1);
        }
        if (o + 2u < m) {
            out[o + 2u] = tae_output(L, o + 2u, (int32_t)a2);
        }
        if (o + 3u < m) {
            out[o + 3u] = tae_output(L, o + 3u, (int32_t)a3);
        }
    }
}

void tae_lut_s8(const int8_t *lut, const int8_t *in, int8_t *out, uint32_t n)
{
    for (uint32_t i = 0; i < n; ++i) {
        out[i] = lut[(int32_t)in[i] + 128];
    }
}
