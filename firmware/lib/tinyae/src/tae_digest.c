/* tinyae — digests of the decision constants (tae_digest.h). */
#include "tae_digest.h"

#include <string.h>

#include "model_config.h"
#include "tae_calib.h"
#include "tae_frontend.h"
#include "tae_pipeline.h"
#include "tae_protocol.h" /* tae_crc32_update */

#define TAE_DIGEST_BEGIN 0xFFFFFFFFu

static uint32_t tae_digest_u8(uint32_t crc, uint8_t v)
{
    return tae_crc32_update(crc, &v, 1u);
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

uint32_t tae_digest_calibration(void)
{
    static const char tag[] = "tinyae-calibration";
    uint32_t crc = tae_crc32_update(TAE_DIGEST_BEGIN, (const uint8_t *)tag, sizeof tag - 1u);
    crc = tae_digest_u8(crc, (uint8_t)TAE_CALIB_VERSION);
    crc = tae_digest_u8(crc, (uint8_t)TAE_CHANNELS);
    crc = tae_digest_u8(crc, (uint8_t)TAE_CALIB_OFFSETS);
    crc = tae_digest_u8(crc, (uint8_t)TAE_CALIB_SCALES);
    crc = tae_digest_u8(crc, (uint8_t)TAE_CALIB_METHOD);
    crc = tae_digest_u32(crc, TAE_CALIB_RANK_NUM);
    crc = tae_digest_u32(crc, TAE_CALIB_RANK_DEN);
    crc = tae_digest_f32(crc, TAE_CALIB_K_STD);
    crc = tae_digest_u32(crc, TAE_CALIB_OVER_NUM);
    crc = tae_digest_u32(crc, TAE_CALIB_OVER_DEN);
    crc = tae_digest_f32s(crc, tae_calib_ref_mean, TAE_CHANNELS);
    crc = tae_digest_f32s(crc, tae_calib_ref_std, TAE_CHANNELS);
    crc = tae_digest_f32s(crc, tae_calib_max_shift, TAE_CHANNELS);
    crc = tae_digest_f32(crc, TAE_CALIB_SCALE_MIN);
    crc = tae_digest_f32(crc, TAE_CALIB_SCALE_MAX);
    crc = tae_digest_f32(crc, TAE_CALIB_THRESHOLD_MIN);
    crc = tae_digest_f32(crc, TAE_CALIB_THRESHOLD_MAX);
    crc = tae_digest_f32(crc, TAE_THRESHOLD);
    crc = tae_digest_f32(crc, TAE_IN_SCALE);
    crc = tae_digest_i32(crc, TAE_IN_ZERO_POINT);
    crc = tae_digest_f32s(crc, tae_norm_offset, TAE_NORM_PERIOD);
    crc = tae_digest_f32s(crc, tae_norm_gain, TAE_NORM_PERIOD);
    return tae_digest_end(crc);
}
