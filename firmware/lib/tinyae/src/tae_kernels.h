/* tinyae — integer kernels of the compiled engine, bit-exact with TFLM's reference int8 kernels.
 *
 * The generator (train/compiled) lays out weights the way the inner loop reads them and folds the
 * input zero point into the bias, so the kernels only multiply raw int8 values:
 *   acc[o] = bias'[o] + sum_k w[o][k] * x[k],      bias' = bias - z_in * sum_k w[o][k]
 *   y[o]   = clamp(MultiplyByQuantizedMultiplier(acc[o], M[o], shift[o]) + z_out, act_min, act_max)
 *   y[o]   = lut[y[o] + 128] when an elementwise int8 op (LOGISTIC, TANH, QUANTIZE) follows the layer.
 * Weight layouts (chosen per layer by the generator): rows in blocks of 4 (padded with zero rows),
 * inputs in groups of 4 (padded with zero inputs and weights to an even number of groups G); for
 * each block, for each group, 4 uint32 words:
 *  - plain (any layer): one word per row r (0..3) holding the row's 4 weights of the group in
 *    little-endian byte order (k0, k1, k2, k3): w[((b * G) + g) * 4 + r]; `bias` holds the biases,
 *    padded with zeros to a multiple of 4 entries;
 *  - paired (layers with `fast` whose rows satisfy sum_k |w[row][k]| * 128 < 2^23): word
 *    j = 2 * pair + half for the row pairs (0,1), (2,3) and the input pairs half 0 = (k0, k2),
 *    half 1 = (k1, k3); bytes (w[even][p] + 128, w[odd][p], w[even][q] + 128, w[odd][q]) for the
 *    pair (p, q). The +128 makes the even row's bytes unsigned, so one SMLAD of the raw word and one
 *    of its UXTB16 give both rows (see tae_kernels.c). The biases are in the stream: each block is
 *    [bias'[0], bias'[2]], its G * 4 words, [2 * bias'[1], 2 * bias'[3]]; `bias` is NULL. A
 *    per-channel paired layer (at most TAE_SHIFT_TABLE distinct shifts) follows each block with
 *    one word per row, (M & 0x3FFFFFFF) | d << 30: M in [2^30, 2^31) is the row's multiplier, d
 *    the index of its shift in `shift` (TAE_SHIFT_TABLE entries); `multiplier` is then NULL. The
 *    kernel rebuilds each entry's rounding constant C = 2^(r-1) + z_out * 2^r, r = -shift, once per
 *    call.
 * When a table follows the layer the generator folds the activation clamp into it (act_min -128,
 * act_max 127).
 * On cores with the DSP extension (__ARM_FEATURE_DSP) the inner loop uses SXTB16/UXTB16/SMLAD and
 * the requantization SMMLAR/SSAT/SEL (optimized builds run each paired layer as one assembly loop);
 * elsewhere a portable C path computes the same integers.
 */
#ifndef TAE_KERNELS_H
#define TAE_KERNELS_H

#include <stdint.h>

/* Version of the weight-stream layouts and of tae_fc_layer_t; generated model_compiled.c checks it. */
#define TAE_KERNELS_LAYOUT 3

/* Entries of a paired per-channel layer's shift table (a 2-bit index per output channel). */
#define TAE_SHIFT_TABLE 4u

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const uint32_t *weights;   /* the weight stream, layout above */
    const int32_t *bias;       /* plain layout: out_features rounded up to 4, input zero point folded in */
    const int32_t *multiplier; /* Q31 multipliers: out_features entries, or 1 when per-tensor
                                  (NULL for per-channel paired layers: in the stream) */
    const int8_t *shift;       /* TFLite shifts (> 0: left), same count as multiplier; per-channel
                                  paired layers: the TAE_SHIFT_TABLE shifts the stream indexes */
    const int8_t *lut;         /* NULL, or 256 entries applied to the clamped output: lut[y + 128] */
    uint16_t in_features;
    uint16_t out_features;
    uint8_t per_channel;
    uint8_t fast;              /* 1: every shift <= -1 and the accumulator bounds of tae_kernels.c
                                  proven: branch-free SMMLAR requantization */
    int8_t out_zero_point;
    int8_t act_min;
    int8_t act_max;
    uint8_t paired;            /* weight layout: 0 plain, 1 paired (above) */
} tae_fc_layer_t;

/* Number of uint32 words of the expanded-input buffer a layer with `in_features` inputs needs. */
#define TAE_FC_XBUF_WORDS(in_features) ((((uint32_t)(in_features) + 7u) / 8u) * 4u)

/* FULLY_CONNECTED int8, any layer. `in` and `out` may be the same buffer (the input is expanded
 * into `xbuf`, TAE_FC_XBUF_WORDS(in_features) words, before any output is written). */
void tae_fc_s8(const tae_fc_layer_t *layer, const int8_t *in, int8_t *out, uint32_t *xbuf);

/* The same for paired layers only, one entry point per variant (per-tensor or per-channel
 * requantization, packed store or table), so that an image links only the whole-layer loops its
 * model uses (the generator calls these; they compute what tae_fc_s8 computes). */
void tae_fc_paired_pt_s8(const tae_fc_layer_t *layer, const int8_t *in, int8_t *out, uint32_t *xbuf);
void tae_fc_paired_pc_s8(const tae_fc_layer_t *layer, const int8_t *in, int8_t *out, uint32_t *xbuf);
void tae_fc_paired_pt_lut_s8(const tae_fc_layer_t *layer, const int8_t *in, int8_t *out, uint32_t *xbuf);
void tae_fc_paired_pc_lut_s8(const tae_fc_layer_t *layer, const int8_t *in, int8_t *out, uint32_t *xbuf);

/* Elementwise int8 -> int8 through a 256-entry table: out[i] = lut[in[i] + 128]. In-place allowed. */
void tae_lut_s8(const int8_t *lut, const int8_t *in, int8_t *out, uint32_t n);

/* TFLite's MultiplyByQuantizedMultiplier (double rounding: SaturatingRoundingDoublingHighMul, then
 * RoundingDivideByPOT), exposed for tests. */
int32_t tae_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift);

/* The kernels' fast requantization of one accumulator, before the int8 saturation: equals
 * MultiplyByQuantizedMultiplier(acc, multiplier, shift) + out_zero_point whenever shift <= -1,
 * |acc| < 2^30 and |acc| + 2 + 2^(r-1) + 128 * 2^r < 2^31 with r = -shift (the generator's `fast`
 * condition). Exposed for tests. */
int32_t tae_requantize_fast(int32_t acc, int32_t multiplier, int shift, int32_t out_zero_point);

#ifdef __cplusplus
}
#endif

#endif /* TAE_KERNELS_H */
