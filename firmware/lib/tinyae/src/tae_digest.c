/* tinyae — digests of the decision constants (tae_digest.h). */
#include "tae_digest.h"

#include <string.h>

#include "model_config.h"
#include "tae_calib.h"
#include "tae_frontend.h"
#include "tae_pipeline.h"
#include "tae_protocol.h" /* tae_crc32_update */

#define TAE_DIGEST_BEGIN 0xFFFFFFFFu

/* The value types of the encodings a recipe names (TAE_DIGEST_ONE casts to them). */
typedef uint8_t tae_digest_u8_t;
typedef uint16_t tae_digest_u16_t;
typedef uint32_t tae_digest_u32_t;
typedef int32_t tae_digest_i32_t;
typedef float tae_digest_f32_t;

static uint32_t tae_digest_u8(uint32_t crc, uint8_t v)
{
    return tae_crc32_update(crc, &v, 1u);
}

static uint32_t tae_digest_u16(uint32_t crc, uint16_t v)
{
    uint8_t b[2];
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    return tae_crc32_update(crc, b, sizeof b);
}

static uint32_t tae_digest_u32(uint32_t crc, uint32_t v)
{
    uint8_t b[4];
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
    return tae_crc32_update(crc, b, sizeof b);
}

static uint32_t tae_digest_i32(uint32_t crc, int32_t v)
{
    return tae_digest_u32(crc, (uint32_t)v);
}

static uint32_t tae_digest_f32(uint32_t crc, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return tae_digest_u32(crc, u);
}

static uint32_t tae_digest_f32s(uint32_t crc, const float *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        crc = tae_digest_f32(crc, v[i]);
    }
    return crc;
}

static uint32_t tae_digest_end(uint32_t crc)
{
    return crc ^ 0xFFFFFFFFu;
}

uint32_t tae_digest_frontend(void)
{
    uint32_t crc = TAE_DIGEST_BEGIN;
    crc = tae_digest_i32(crc, TAE_FE_WINDOW_LEN);
    crc = tae_digest_i32(crc, TAE_FE_CHANNELS);
    crc = tae_digest_i32(crc, TAE_FE_RAW);
    crc = tae_digest_i32(crc, TAE_FE_SPECTRAL);
    crc = tae_digest_i32(crc, TAE_FE_STATS);
    crc = tae_digest_i32(crc, TAE_FE_RAW_SIZE);
    crc = tae_digest_i32(crc, TAE_FE_SPECTRAL_SIZE);
    crc = tae_digest_i32(crc, TAE_FE_STATS_SIZE);
    crc = tae_digest_i32(crc, TAE_FEATURE_SIZE);
#if TAE_FE_SPECTRAL
    {
        uint32_t i;
        crc = tae_digest_i32(crc, TAE_FE_FFT_LEN);
        crc = tae_digest_i32(crc, TAE_FE_FRAMES);
        crc = tae_digest_i32(crc, TAE_FE_POWER);
        crc = tae_digest_i32(crc, TAE_FE_LOG);
        crc = tae_digest_i32(crc, TAE_FE_BANDS);
#if TAE_FE_LOG
        crc = tae_digest_f32s(crc, tae_fe_log_floor, TAE_FE_SPECTRAL_SIZE);
#endif
        for (i = 0; i < TAE_FE_BANDS + 1u; ++i) {
            crc = tae_digest_i32(crc, (int32_t)tae_fe_band_edges[i]);
        }
        crc = tae_digest_f32s(crc, tae_fe_window, TAE_FE_FFT_LEN);
        crc = tae_digest_f32s(crc, tae_fe_twiddle, TAE_FE_FFT_LEN);
        for (i = 0; i < TAE_FE_FFT_LEN / 2u; ++i) {
            crc = tae_digest_i32(crc, (int32_t)tae_fe_bitrev[i]);
        }
    }
#endif
#if TAE_FE_STATS
    {
        uint32_t i;
        crc = tae_digest_i32(crc, TAE_FE_STAT_COUNT);
        for (i = 0; i < TAE_FE_STAT_COUNT; ++i) {
            crc = tae_digest_i32(crc, (int32_t)tae_fe_stat_ids[i]);
        }
    }
#endif
    return tae_digest_end(crc);
}

uint32_t tae_digest_normalization(void)
{
    uint32_t crc = TAE_DIGEST_BEGIN;
    crc = tae_digest_i32(crc, TAE_NORM_PERIOD);
    crc = tae_digest_f32s(crc, tae_norm_offset, TAE_NORM_PERIOD);
    crc = tae_digest_f32s(crc, tae_norm_gain, TAE_NORM_PERIOD);
    crc = tae_digest_i32(crc, TAE_IN_ZERO_POINT);
    return tae_digest_end(crc);
}

/* One step of TAE_CALIB_CONFIG_RECIPE (model_config.h, generated from the recipe config_crc packs):
 * a constant, or a table of `n` f32, in the encoding the recipe names. */
#define TAE_DIGEST_ONE(kind, value) crc = tae_digest_##kind(crc, (tae_digest_##kind##_t)(value));
#define TAE_DIGEST_ALL(kind, table, n) crc = tae_digest_##kind##s(crc, (table), (size_t)(n));

uint32_t tae_digest_calibration(void)
{
    static const char tag[] = TAE_CALIB_CONFIG_TAG;
    uint32_t crc = tae_crc32_update(TAE_DIGEST_BEGIN, (const uint8_t *)tag, sizeof tag - 1u);
    TAE_CALIB_CONFIG_RECIPE(TAE_DIGEST_ONE, TAE_DIGEST_ALL)
    return tae_digest_end(crc);
}
