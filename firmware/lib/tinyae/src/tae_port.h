/* tinyae — the port: what the portable core needs from a target (board, QEMU, host build).
 * Each target provides these functions; the core never touches hardware itself. */
#ifndef TAE_PORT_H
#define TAE_PORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Monotonic counter used for the per-inference cost (cycles, SysTick ticks or instructions). */
uint32_t tae_port_cycles(void);

/* Unit of tae_port_cycles() reported in the handshake, e.g. "cycles", "instructions", "us". */
const char *tae_port_cycles_unit(void);

/* Send bytes to the host; returns how many the link took. A port may block briefly while its
 * buffer drains (a UART at its baud rate), but never indefinitely: where the link cannot take bytes
 * (USB CDC with no host holding the port open) it returns fewer than `len`, possibly 0, at once.
 * The application then counts the frame as dropped and reports the count in the handshake. */
size_t tae_port_write(const uint8_t *data, size_t len);

/* Sensor mode: fill `sample` (TAE_CHANNELS floats) and return 1 when a new sample is due, else 0. */
int tae_port_read_sample(float *sample);

/* Sensor mode's sample clock (tae_pace.h), reported in every TELEMETRY frame (docs/protocol.md) so that a
 * sample the device read late or never read is never silent. */
#define TAE_CLOCK_SYNTHETIC 1u /* the source is the built-in synthetic machine (tae_synth.h), not a sensor */
#define TAE_CLOCK_CATCH_UP 2u  /* missed slots are delivered late, back to back, never skipped */
typedef struct {
    uint32_t skipped; /* sample slots passed without a sample since the last restart */
    uint32_t late;    /* samples taken half a period or more after their slot since the last restart */
    uint8_t flags;    /* TAE_CLOCK_* */
} tae_clock_counts_t;
/* A new sensor stream starts (boot, RESET, a mode switch): the schedule starts at the next read, the
 * counts at 0. */
void tae_port_sample_restart(void);
/* The counts since the last restart. */
void tae_port_sample_counts(tae_clock_counts_t *out);

/* Non-volatile storage of one small record (the on-site calibration, TAE_CALIB_RECORD_BYTES) that
 * survives a reset and a power loss: flash (mbed TDBStore on FlashIAPBlockDevice, ESP32 NVS through
 * Preferences), a host file through semihosting on the emulated board.
 *
 * read:  copy up to `cap` bytes of the stored record into `buf` and set *len to its full stored length
 *        (which may exceed cap); returns TAE_STORE_OK, TAE_STORE_EMPTY (nothing stored) or TAE_STORE_ERROR.
 * write: replace the stored record with `len` bytes, atomically: a reset or power loss during the write
 *        leaves either the old record or the new one, never a mix (the record's CRC-32 catches a port
 *        that cannot promise it). Returns TAE_STORE_OK or TAE_STORE_ERROR.
 * erase: remove the stored record (TAE_STORE_OK also when there was none) or TAE_STORE_ERROR.
 * The application calls these only at boot and at the end of a calibration, never per sample. */
#define TAE_STORE_OK 0
#define TAE_STORE_EMPTY 1
#define TAE_STORE_ERROR (-1)
int tae_port_store_read(uint8_t *buf, size_t cap, size_t *len);
int tae_port_store_write(const uint8_t *data, size_t len);
int tae_port_store_erase(void);

#ifdef __cplusplus
}
#endif

#endif /* TAE_PORT_H */
