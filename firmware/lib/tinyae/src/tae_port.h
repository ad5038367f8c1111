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

#ifdef __cplusplus
}
#endif

#endif /* TAE_PORT_H */
