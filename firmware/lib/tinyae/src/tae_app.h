/* tinyae — the device application: the protocol state machine over the pipeline.
 * Portable, no I/O of its own: bytes come in through tae_app_on_bytes, replies leave through
 * tae_port_write, sensor samples come from tae_port_read_sample. docs/protocol.md describes the
 * behaviour the host sees. */
#ifndef TAE_APP_H
#define TAE_APP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Figures only the target knows (from its linker map / build); reported in the handshake. */
typedef struct {
    uint32_t flash_used;          /* bytes of flash the image uses */
    uint32_t ram_static;          /* bytes of static RAM (.data + .bss) */
    uint32_t stack_bytes;         /* stack reserved (or measured high-water mark) */
    const char *firmware_version; /* TAE_FIRMWARE_VERSION (model_config.h); must outlive the application */
    const char *target;           /* e.g. "qemu-mps2-an386", "nano33ble" */
} tae_target_info_t;

/* Targets call this before tae_app_init; the struct is copied (the strings are not). */
void tae_app_set_target_info(const tae_target_info_t *info);

/* Initialize the engine, the pipeline and the decoder; send a 0x00 delimiter and a BOOT frame
 * (device tx seq 0) so the host sees every reset. Mode: host-stream, verification off. */
void tae_app_init(void);

/* Feed bytes received from the host; complete frames are handled (and answered) immediately. */
void tae_app_on_bytes(const uint8_t *data, size_t len);

/* Sensor mode: read up to TAE_PROTO_MAX_BATCH due samples, push them through the pipeline and send
 * TELEMETRY / RESULT frames. Does nothing in host-stream mode. Call it from the main loop. */
void tae_app_poll(void);

/* Nonzero when the application has nothing to do until more bytes come from the host: host-stream
 * mode, where tae_app_poll does nothing and every reply has already been handed to tae_port_write.
 * A target may then sleep until its next interrupt, provided it checks for received bytes with
 * interrupts masked first (mask, check, WFI, unmask: a pending interrupt still ends WFI).
 * Zero in sensor mode: samples fall due with time, so the loop must keep calling tae_app_poll. */
int tae_app_idle(void);

#ifdef __cplusplus
}
#endif

#endif /* TAE_APP_H */
