/* tinyae — digests of the constants a device decides with, reported in the handshake so the host can
 * compare them with the artifacts (docs/protocol.md §3, "Constants the device decides with").
 *
 * Each digest is a CRC-32/ISO-HDLC over values written little-endian (integers, IEEE-754 binary32), in
 * the order the protocol document lists, computed at run time over the very tables the pipeline reads
 * (not over a number the generator wrote), so a stale or mismatched build cannot report the artifacts'
 * figures. The host computes the same digests from manifest.json (tinyae.train.digests). */
#ifndef TAE_DIGEST_H
#define TAE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The front-end's kinds, sizes and tables (tae_frontend.h). */
uint32_t tae_digest_frontend(void);
/* The normalization: period, offsets, gains and the input zero point (tae_pipeline.h). */
uint32_t tae_digest_normalization(void);
/* The on-site calibration constants, by the recipe of the manifest's calibration.config_crc
 * (tinyae.train.calibration.spec.CONFIG_CRC_RECIPE, generated into model_config.h as
 * TAE_CALIB_CONFIG_RECIPE): settings, bounds, reference statistics, the factory threshold, the input
 * quantization, the normalization, the minimum windows and the anomalous-stretch rule. */
uint32_t tae_digest_calibration(void);

#ifdef __cplusplus
}
#endif

#endif /* TAE_DIGEST_H */
