/* tinyae — compiled-engine kernels. See tae_kernels.h for the arithmetic and the weight layouts.
 *
 * Semantics follow TFLM's reference int8 FULLY_CONNECTED and TFLite's MultiplyByQuantizedMultiplier
 * (learned from reading tensorflow/lite/kernels/internal/common.h and gemmlowp's fixedpoint.h; the
 * code here is written from that description). Wrap-around int32 arithmetic is done on uint32_t so
 * the C code has no signed overflow (TFLM's compiled code wraps the same way).
 */
#include "tae_kernels.h"

#include <stddef.h>
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

/* Input group g (x0..x3) -> xbuf[2g] = (x0, x2), xbuf[2g+1] = (x1, x3), sign-extended int16; zero
 * groups pad the count to an even number.
 * Returns the sum of the inputs (the paired layout's correction term needs it). */
static int32_t tae_expand(const int8_t *in, uint32_t n, uint32_t *xbuf)
{
    uint32_t k = 0;
    int32_t sum = 0;
#if TAE_USE_DSP
    if (n >= 8u) {
        /* 8 inputs per iteration: 2 (unaligned) LDR, 4 SXTB16, 2 STRD, 3 SADD16 + 1 SMLAD for the sum */
        const int8_t *end = in + (n & ~7u);
        const int8_t *p = in;
        uint32_t w0, w1, e0, e1, e2, e3;
        __asm__ volatile("1:\n\t"
                         "ldr %[w1], [%[p], #4]\n\t"
                         "ldr %[w0], [%[p]], #8\n\t"
                         "sxtb16 %[e0], %[w0]\n\t"
                         "sxtb16 %[e1], %[w0], ror #8\n\t"
                         "sxtb16 %[e2], %[w1]\n\t"
                         "sxtb16 %[e3], %[w1], ror #8\n\t"
                         "strd %[e0], %[e1], [%[xb]], #8\n\t"
                         "strd %[e2], %[e3], [%[xb]], #8\n\t"
                         "sadd16 %[e0], %[e0], %[e1]\n\t"
                         "sadd16 %[e2], %[e2], %[e3]\n\t"
                         "sadd16 %[e0], %[e0], %[e2]\n\t"
                         "smlad %[sum], %[e0], %[ones], %[sum]\n\t"
                         "cmp %[p], %[end]\n\t"
                         "bne 1b\n\t"
                         : [p] "+r"(p), [xb] "+r"(xbuf), [sum] "+r"(sum), [w0] "=&r"(w0), [w1] "=&r"(w1),
                           [e0] "=&r"(e0), [e1] "=&r"(e1), [e2] "=&r"(e2), [e3] "=&r"(e3)
                         : [end] "r"(end), [ones] "r"(0x00010001u)
                         : "cc", "memory");
        k = n & ~7u;
    }
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
        k += 4u;
    }
    if ((k & 4u) != 0u) { /* an even number of groups: the loops take two per iteration */
        *xbuf++ = 0u;
        *xbuf++ = 0u;
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
 * With a2 = 2 * acc, TFLite's two roundings become
 *   h = (a2 * M + 2^31) >> 32            SaturatingRoundingDoublingHighMul: the C division's truncation
 *                                        and the nudge's sign cancel out; this is SMMULR on the M4
 *   y = (h + C + (a2 >> 31)) >> r        RoundingDivideByPOT (ties away from zero) plus the output zero
 *                                        point: C = 2^(r-1) + z_out * 2^r, so no separate add
 * TFLite subtracts 1 when h < 0; a2 < 0 is the same condition except when h = 0, where both give
 * (C or C - 1) >> r = z_out because r >= 1. So h + C is one SMMLAR, and the sign comes from a2.
 * Then the clamp to [act_min, act_max]: an 8-bit saturation, then byte-wise max/min (or a table). */
static inline int32_t tae_rq_fast(uint32_t a2, int32_t mult, int32_t c, uint32_t right)
{
    int32_t hc;
#if TAE_USE_DSP
    __asm__("smmlar %0, %1, %2, %3" : "=r"(hc) : "r"(a2), "r"(mult), "r"(c));
#else
    /* wrap-free: the generator's bound keeps h + C inside int32 */
    hc = (int32_t)(((int64_t)(int32_t)a2 * mult + ((int64_t)1 << 31)) >> 32) + c;
#endif
    return (hc + ((int32_t)a2 >> 31)) >> right;
}

int32_t tae_requantize_fast(int32_t acc, int32_t multiplier, int shift, int32_t out_zero_point)
{
    const uint32_t right = (uint32_t)(-shift);
    const int32_t c = (int32_t)((uint32_t)(2 * out_zero_point + 1) << (right - 1u));
    return tae_rq_fast((uint32_t)acc << 1, multiplier, c, right);
}

static inline int32_t tae_sat8(int32_t v)
{
#if TAE_USE_DSP
    return __ssat(v, 8);
#else
    return v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
}

/* Per-layer constants, computed once per call; the assembly block loops read them by offset
 * (offsetof operands). */
typedef struct {
    int32_t tab[8];       /* (C_d, r_d) for d = 0..3: r_d = -shift[d], C_d = 2^(r_d-1) + z_out * 2^r_d
                             (per-tensor and plain per-channel layers: d = 0 only / unused) */
    const uint32_t *xbuf;
    const uint32_t *xend;
    uint32_t corr2;       /* 2 * 128 * sum x, the paired layout's offset */
    int32_t mult;         /* per-tensor multiplier */
    uint32_t lo4;         /* act_min in each byte */
    uint32_t hi4;         /* act_max in each byte */
    int8_t *out_end;      /* end of the full blocks' outputs */
    const int8_t *lut;    /* table + 128, or NULL */
    int32_t zp2;          /* 2 * z_out + 1: C = zp2 * 2^(r-1) */
    uint32_t half;        /* the (even) group count is 4k + 2: the 4-group loop enters halfway */
} tae_rq_t;

static inline uint32_t tae_bytes4(int32_t v)
{
    return ((uint32_t)v & 0xFFu) * 0x01010101u;
}

/* Expands the input and fills the layer's constants. */
static void tae_setup(tae_rq_t *q, const tae_fc_layer_t *L, const int8_t *in, int8_t *out, uint32_t *xbuf)
{
    const uint32_t n = L->in_features;
    q->xbuf = xbuf;
    q->xend = xbuf + TAE_FC_XBUF_WORDS(n);
    /* 2 * 128 * sum x: the paired layout's offset of the even rows' weights */
    q->corr2 = (uint32_t)tae_expand(in, n, xbuf) << 8;
    q->zp2 = 2 * (int32_t)L->out_zero_point + 1;
    if (L->fast && (L->paired || !L->per_channel)) {
        /* the shift table: 1 entry per-tensor, TAE_SHIFT_TABLE for a paired per-channel layer */
        const uint32_t count = L->per_channel ? TAE_SHIFT_TABLE : 1u;
        for (uint32_t d = 0; d < count; ++d) {
            const uint32_t right = (uint32_t)(-L->shift[d]);
            q->tab[2u * d] = (int32_t)((uint32_t)q->zp2 << (right - 1u)); /* z_out * 2^r + 2^(r-1) */
            q->tab[2u * d + 1u] = (int32_t)right;
        }
        q->mult = L->per_channel ? 0 : L->multiplier[0];
    }
    q->lo4 = tae_bytes4(L->act_min);
    q->hi4 = tae_bytes4(L->act_max);
    q->out_end = out + (L->out_features & ~3u);
    q->lut = L->lut != 0 ? L->lut + 128 : 0;
    q->half = (TAE_FC_XBUF_WORDS(n) / 2u) & 2u;
}

/* Fast path store of one block: a2 holds 2 * acc of its `count` rows; pc is NULL or the block's
 * 4 multiplier words of a paired per-channel stream ((M & 0x3FFFFFFF) | d << 30). */
static void tae_store_fast(const tae_fc_layer_t *L, const tae_rq_t *q, uint32_t o, const uint32_t *a2,
                           const uint32_t *pc, uint32_t count, int8_t *out)
{
    const int32_t lo = L->act_min;
    const int32_t hi = L->act_max;
    for (uint32_t r = 0; r < count; ++r) {
        int32_t v;
        if (pc != 0) {
            const uint32_t d = pc[r] >> 30;
            const int32_t mult = (int32_t)((pc[r] & 0x3FFFFFFFu) | 0x40000000u);
            v = tae_rq_fast(a2[r], mult, q->tab[2u * d], (uint32_t)q->tab[2u * d + 1u]);
        } else if (L->per_channel) {
            const uint32_t right = (uint32_t)(-L->shift[o + r]);
            const int32_t c = (int32_t)((uint32_t)q->zp2 << (right - 1u)); /* z_out * 2^r + 2^(r-1) */
            v = tae_rq_fast(a2[r], L->multiplier[o + r], c, right);
        } else {
            v = tae_rq_fast(a2[r], q->mult, q->tab[0], (uint32_t)q->tab[1]);
        }
        v = tae_sat8(v);
        v = v < lo ? lo : (v > hi ? hi : v);
        out[o + r] = q->lut != 0 ? q->lut[v] : (int8_t)v;
    }
}

/* The general path: TFLite's MultiplyByQuantizedMultiplier for any shift and accumulator. */
static void tae_store(const tae_fc_layer_t *L, uint32_t o, const uint32_t *acc, uint32_t count, int8_t *out)
{
    const int32_t zp = L->out_zero_point;
    const int32_t lo = L->act_min;
    const int32_t hi = L->act_max;
    for (uint32_t r = 0; r < count; ++r) {
        const uint32_t q = L->per_channel ? o + r : 0u;
        int32_t v = tae_multiply_by_quantized_multiplier((int32_t)acc[r], L->multiplier[q], L->shift[q]);
        v = (int32_t)((uint32_t)v + (uint32_t)zp);
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        out[o + r] = L->lut != 0 ? L->lut[v + 128] : (int8_t)v;
    }
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

/* Two groups per iteration (the group count is even). Written in assembly because GCC -Os spills
 * an accumulator inside this loop. */
#define TAE_LOOP_ASM(GROUP)                                                                         \
    __asm__ volatile("1:\n\t" GROUP GROUP "cmp %[x], %[xend]\n\t"                                   \
                     "bne 1b\n\t"                                                                   \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x),     \
                       [w] "+r"(w), [xa] "=&r"(xa), [xb] "=&r"(xb), [w0] "=&r"(w0), [w1] "=&r"(w1), \
                       [t] "=&r"(t)                                                                 \
                     : [xend] "r"(xend)                                                             \
                     : "cc", "memory")

/* The whole-layer block loops need 14 general registers: not available when GCC keeps a frame
 * pointer (-O0); those builds take the per-block C path, which computes the same integers. */
#if defined(__OPTIMIZE__)
#define TAE_BLOCK_LOOPS 1
#else
#define TAE_BLOCK_LOOPS 0
#endif

#if TAE_BLOCK_LOOPS
/* Block loop pieces (registers: accumulators a0..a3, inputs x/xend, weights w, temporaries
 * xa, xb, w0, w1, t; q the constants, out the output pointer; o_* the offsets in tae_rq_t). */
#define TAE_BLOCK_HEAD_ASM                                                                         \
    "0:\n\t"                                                                                       \
    "ldrd %[a1], %[a3], [%[w]], #8\n\t" /* b0, b2 */                                               \
    "mov %[a0], %[a1]\n\t"                                                                         \
    "mov %[a2], %[a3]\n\t"                                                                         \
    "ldr %[x], [%[q], %[o_xbuf]]\n\t"                                                              \
    "ldr %[t], [%[q], %[o_half]]\n\t" /* 4k + 2 groups: enter at the second half */                 \
    "cbnz %[t], 2f\n\t"                                                                             \
    "1:\n\t" TAE_GROUP_PAIR_ASM TAE_GROUP_PAIR_ASM                                                 \
    "2:\n\t" TAE_GROUP_PAIR_ASM TAE_GROUP_PAIR_ASM                                                 \
    "cmp %[x], %[xend]\n\t"                                                                        \
    "bne 1b\n\t"                                                                                   \
    "ldrd %[xa], %[xb], [%[w]], #8\n\t" /* 2 b1, 2 b3 */                                           \
    "ldr %[t], [%[q], %[o_corr2]]\n\t"                                                             \
    "sub %[w0], %[a0], %[a1]\n\t"       /* A - B = 256 S_odd */                                    \
    "add %[a0], %[xa], %[w0], asr #7\n\t" /* 2 acc1 */                                             \
    "sub %[w0], %[a2], %[a3]\n\t"                                                                  \
    "add %[a2], %[xb], %[w0], asr #7\n\t" /* 2 acc3 */                                             \
    "rsb %[a1], %[t], %[a1], lsl #1\n\t"  /* 2 acc0 = 2 B - corr2 */                               \
    "rsb %[a3], %[t], %[a3], lsl #1\n\t"  /* 2 acc2; outputs 0..3 are now in a1, a0, a3, a2 */

/* per-tensor: M in w0, C in w1, r in xa (table entry 0) */
#define TAE_RQ_PT_ASM(A)                                \
    "smmlar %[t], %[" A "], %[w0], %[w1]\n\t"           \
    "add %[t], %[t], %[" A "], asr #31\n\t"             \
    "asr %[" A "], %[t], %[xa]\n\t"                     \
    "ssat %[" A "], #8, %[" A "]\n\t"
#define TAE_RQ_PT4_ASM                                                                             \
    "ldr %[w0], [%[q], %[o_mult]]\n\t"                                                             \
    "ldrd %[w1], %[xa], [%[q]]\n\t" TAE_RQ_PT_ASM("a1") TAE_RQ_PT_ASM("a0") TAE_RQ_PT_ASM("a3")    \
        TAE_RQ_PT_ASM("a2")

/* per-channel: the stream word (M & 0x3FFFFFFF) | d << 30; BFI of x = 1 restores M's top bits
 * (M is in [2^30, 2^31)), d selects (C, r) in the table at the start of q */
#define TAE_RQ_PC_ASM(A)                                \
    "ldr %[w0], [%[w]], #4\n\t"                         \
    "lsr %[t], %[w0], #30\n\t"                          \
    "bfi %[w0], %[x], #30, #2\n\t"                      \
    "add %[t], %[q], %[t], lsl #3\n\t"                  \
    "ldrd %[w1], %[xb], [%[t]]\n\t"                     \
    "smmlar %[xa], %[" A "], %[w0], %[w1]\n\t"          \
    "add %[xa], %[xa], %[" A "], asr #31\n\t"           \
    "asr %[" A "], %[xa], %[xb]\n\t"                    \
    "ssat %[" A "], #8, %[" A "]\n\t"
#define TAE_RQ_PC4_ASM                                                                             \
    "mov %[x], #1\n\t" TAE_RQ_PC_ASM("a1") TAE_RQ_PC_ASM("a0") TAE_RQ_PC_ASM("a3") TAE_RQ_PC_ASM("a2")

/* pack, clamp with SSUB8/SEL, one (possibly unaligned) STR */
#define TAE_STORE_PACK_ASM                              \
    "bfi %[a1], %[a0], #8, #8\n\t"                      \
    "bfi %[a1], %[a3], #16, #8\n\t"                     \
    "bfi %[a1], %[a2], #24, #8\n\t"                     \
    "ldrd %[xa], %[xb], [%[q], %[o_lo4]]\n\t"           \
    "ssub8 %[t], %[a1], %[xa]\n\t"                      \
    "sel %[a1], %[a1], %[xa]\n\t"                       \
    "ssub8 %[t], %[xb], %[a1]\n\t"                      \
    "sel %[a1], %[a1], %[xb]\n\t"                       \
    "str %[a1], [%[out]], #4\n\t"

/* through the table (the generator folded the activation clamp into it) */
#define TAE_STORE_LUT_ASM                               \
    "ldr %[t], [%[q], %[o_lut]]\n\t"                    \
    "ldrsb %[a1], [%[t], %[a1]]\n\t"                    \
    "ldrsb %[a0], [%[t], %[a0]]\n\t"                    \
    "ldrsb %[a3], [%[t], %[a3]]\n\t"                    \
    "ldrsb %[a2], [%[t], %[a2]]\n\t"                    \
    "strb %[a1], [%[out]], #1\n\t"                      \
    "strb %[a0], [%[out]], #1\n\t"                      \
    "strb %[a3], [%[out]], #1\n\t"                      \
    "strb %[a2], [%[out]], #1\n\t"

#define TAE_BLOCK_TAIL_ASM                              \
    "ldr %[t], [%[q], %[o_end]]\n\t"                    \
    "cmp %[out], %[t]\n\t"                              \
    "bne 0b\n\t"

/* The blocks of a paired layer from `out` up to q->out_end (at least one): MACs (4 groups per
 * iteration), pair decoding, requantization, clamp and store, about 45 instructions per block
 * (per-tensor; per-channel about 65) besides the 15 per group of the inner loop.
 * Returns the weight pointer after the blocks. */
typedef const uint32_t *(*tae_blocks_fn)(const tae_rq_t *q, const uint32_t *w, int8_t *out);
#define TAE_PAIRED_BLOCKS_FN(NAME, RQ, STORE)                                                      \
    static const uint32_t *NAME(const tae_rq_t *q, const uint32_t *w, int8_t *out)                 \
    {                                                                                              \
        uint32_t a0, a1, a2, a3, xa, xb, w0, w1, t;                                                \
        const uint32_t *x;                                                                         \
        const uint32_t *xend = q->xend;                                                            \
        __asm__ volatile(TAE_BLOCK_HEAD_ASM RQ STORE TAE_BLOCK_TAIL_ASM                            \
                         : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),         \
                           [x] "=&r"(x), [w] "+r"(w), [xa] "=&r"(xa), [xb] "=&r"(xb),              \
                           [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&l"(t), [out] "+r"(out)           \
                         : [xend] "r"(xend), [q] "r"(q), [o_xbuf] "i"(offsetof(tae_rq_t, xbuf)),   \
                           [o_half] "i"(offsetof(tae_rq_t, half)),                                 \
                           [o_corr2] "i"(offsetof(tae_rq_t, corr2)),                               \
                           [o_mult] "i"(offsetof(tae_rq_t, mult)),                                 \
                           [o_lo4] "i"(offsetof(tae_rq_t, lo4)), [o_lut] "i"(offsetof(tae_rq_t, lut)), \
                           [o_end] "i"(offsetof(tae_rq_t, out_end))                                \
                         : "cc", "memory");                                                        \
        return w;                                                                                  \
    }
TAE_PAIRED_BLOCKS_FN(tae_blocks_pt, TAE_RQ_PT4_ASM, TAE_STORE_PACK_ASM)
TAE_PAIRED_BLOCKS_FN(tae_blocks_pc, TAE_RQ_PC4_ASM, TAE_STORE_PACK_ASM)
TAE_PAIRED_BLOCKS_FN(tae_blocks_pt_lut, TAE_RQ_PT4_ASM, TAE_STORE_LUT_ASM)
TAE_PAIRED_BLOCKS_FN(tae_blocks_pc_lut, TAE_RQ_PC4_ASM, TAE_STORE_LUT_ASM)
#endif /* TAE_BLOCK_LOOPS */
#else
#define TAE_BLOCK_LOOPS 0
#endif /* TAE_USE_DSP */

/* One block of the paired layout ([b0, b2], groups, [2 b1, 2 b3]): a2[r] = 2 * acc of row r. */
static const uint32_t *tae_paired_block(const uint32_t *w, const tae_rq_t *q, uint32_t acc2[4])
{
    const uint32_t *x = q->xbuf;
    const uint32_t *xend = q->xend;
#if TAE_USE_DSP
    uint32_t A0, A1, A2, A3, xa, xb, w0, w1, t;
    A0 = A1 = w[0];
    A2 = A3 = w[1];
    w += 2;
    {
        uint32_t a0 = A0, a1 = A1, a2 = A2, a3 = A3;
        TAE_LOOP_ASM(TAE_GROUP_PAIR_ASM);
        A0 = a0;
        A1 = a1;
        A2 = a2;
        A3 = a3;
    }
    /* A - B = 256 * S_odd exactly: the generator proved |S_odd| < 2^23 */
    acc2[0] = (A1 << 1) - q->corr2;
    acc2[1] = w[0] + (uint32_t)((int32_t)(A0 - A1) >> 7);
    acc2[2] = (A3 << 1) - q->corr2;
    acc2[3] = w[1] + (uint32_t)((int32_t)(A2 - A3) >> 7);
#else
    uint32_t e0 = w[0], e2 = w[1], o1 = 0, o3 = 0;
    w += 2;
    do {
        const uint32_t xa = x[0];
        const uint32_t xb = x[1];
        x += 2;
        TAE_MAC_PAIR(e0, o1, w[0], xa);
        TAE_MAC_PAIR(e0, o1, w[1], xb);
        TAE_MAC_PAIR(e2, o3, w[2], xa);
        TAE_MAC_PAIR(e2, o3, w[3], xb);
        w += 4;
    } while (x != xend);
    acc2[0] = e0 << 1;
    acc2[1] = w[0] + (o1 << 1);
    acc2[2] = e2 << 1;
    acc2[3] = w[1] + (o3 << 1);
#endif
    return w + 2;
}

/* One block of the plain layout: acc[r] = bias'[o + r] + sum. */
static const uint32_t *tae_plain_block(const uint32_t *w, const tae_rq_t *q, const int32_t *bias, uint32_t acc[4])
{
    const uint32_t *x = q->xbuf;
    const uint32_t *xend = q->xend;
    uint32_t a0 = (uint32_t)bias[0], a1 = (uint32_t)bias[1], a2 = (uint32_t)bias[2], a3 = (uint32_t)bias[3];
#if TAE_USE_DSP
    uint32_t xa, xb, w0, w1, t;
    TAE_LOOP_ASM(TAE_GROUP_PLAIN_ASM);
#else
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
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    return w;
}

/* The per-block C path (every layout; the only one on cores without the DSP extension). */
static void tae_fc_blocks_c(const tae_fc_layer_t *L, const tae_rq_t *q, int8_t *out)
{
    const uint32_t m = L->out_features;
    const uint32_t *w = L->weights;
    /* paired per-channel layers carry their multiplier words in the stream */
    const uint32_t pc_words = (L->paired && L->per_channel) ? 4u : 0u;
    for (uint32_t o = 0; o < m; o += 4u) {
        const uint32_t count = (m - o) < 4u ? (m - o) : 4u;
        uint32_t acc[4];
        if (L->paired) {
            w = tae_paired_block(w, q, acc);
            tae_store_fast(L, q, o, acc, pc_words ? w : 0, count, out);
            w += pc_words;
        } else {
            w = tae_plain_block(w, q, L->bias + o, acc);
            if (L->fast) {
                for (uint32_t r = 0; r < 4u; ++r) {
                    acc[r] <<= 1;
                }
                tae_store_fast(L, q, o, acc, 0, count, out);
            } else {
                tae_store(L, o, acc, count, out);
            }
        }
    }
}

#if TAE_USE_DSP && TAE_BLOCK_LOOPS
/* A paired layer through one whole-layer assembly loop; a last partial block goes through a
 * 4-byte buffer. */
static void tae_paired_run(const tae_fc_layer_t *L, const int8_t *in, int8_t *out, uint32_t *xbuf,
                           tae_blocks_fn blocks)
{
    tae_rq_t q;
    const uint32_t m = L->out_features;
    const uint32_t *w = L->weights;
    tae_setup(&q, L, in, out, xbuf);
    if (m >= 4u) {
        w = blocks(&q, w, out);
    }
    if ((m & 3u) != 0u) {
        int8_t last[4];
        q.out_end = last + 4;
        (void)blocks(&q, w, last);
        memcpy(out + (m & ~3u), last, m & 3u);
    }
}

void tae_fc_paired_pt_s8(const tae_fc_layer_t *layer, const int8_t *in, int8_t *out, uint32_t *xbuf)
{
    tae_paired_run(layer, in, out, xbuf, tae_blocks_pt);
}

void tae_fc_paired_pc_s8(const tae_fc_layer_t *layer, const int8_t *in, int8_t *out, uint32_t *xbuf)
{
    tae_paired_run(layer, in, out, xbuf, tae_blocks_pc);
}

void tae_fc_paired_pt_lut_s8(const tae_fc_layer_t *layer, const int8_t *in, int8_t *out, uint32_t *xbuf)
{
    tae_paired_run(layer, in, out, xbuf, tae_blocks_pt_lut);
}

void tae_fc_paired_pc_lut_s8(const tae_fc_layer_t *layer, const int8_t *in, int8_t *out, uint32_t *xbuf)
{
    tae_paired_run(layer, in, out, xbuf, tae_blocks_pc_lut);
}
#endif

void tae_fc_s8(const tae_fc_layer_t *L, const int8_t *in, int8_t *out, uint32_t *xbuf)
{
#if TAE_USE_DSP && TAE_BLOCK_LOOPS
    if (L->paired) {
        if (L->lut != 0) {
            tae_paired_run(L, in, out, xbuf, L->per_channel ? tae_blocks_pc_lut : tae_blocks_pt_lut);
        } else {
            tae_paired_run(L, in, out, xbuf, L->per_channel ? tae_blocks_pc : tae_blocks_pt);
        }
        return;
    }
#endif
    tae_rq_t q;
    tae_setup(&q, L, in, out, xbuf);
    tae_fc_blocks_c(L, &q, out);
}

#if !(TAE_USE_DSP && TAE_BLOCK_LOOPS)
/* Without the whole-layer loops every variant is the per-block path. */
void tae_fc_paired_pt_s8(const tae_fc_layer_t *layer, const int8_t *in, int8_t *out, uint32_t *xbuf)
{
    tae_fc_s8(layer, in, out, xbuf);
}

void tae_fc_paired_pc_s8(const tae_fc_layer_t *layer, const int8_t *in, int8_t *out, uint32_t *xbuf)
{
    tae_fc_s8(layer, in, out, xbuf);
}

void tae_fc_paired_pt_lut_s8(const tae_fc_layer_t *layer, const int8_t *in, int8_t *out, uint32_t *xbuf)
{
    tae_fc_s8(layer, in, out, xbuf);
}

void tae_fc_paired_pc_lut_s8(const tae_fc_layer_t *layer, const int8_t *in, int8_t *out, uint32_t *xbuf)
{
    tae_fc_s8(layer, in, out, xbuf);
}
#endif

void tae_lut_s8(const int8_t *lut, const int8_t *in, int8_t *out, uint32_t n)
{
    for (uint32_t i = 0; i < n; ++i) {
        out[i] = lut[(int32_t)in[i] + 128];
    }
}
