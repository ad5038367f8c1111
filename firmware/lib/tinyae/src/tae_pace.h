/* tinyae — the sample clock of sensor mode: when a sample is due, and an honest count of what the
 * reader missed. A port calls tae_pace_due(now) from tae_port_read_sample; the application reports the
 * counts in every TELEMETRY frame (docs/protocol.md), so a late or skipped sample is never silent.
 *
 * Sample n is due at tick start + n * period (a fixed grid: no drift). Called at `now`, `behind` =
 * now - due:
 *   - behind < 0: nothing is due;
 *   - a real-time reader (catch_up = 0: a sensor read *now* gives today's value, not the slot's): the
 *     slots behind by a whole period or more are SKIPPED (counted, never read), the reader takes the
 *     slot it is in;
 *   - a catch-up source (catch_up = 1: the synthetic machine computes any slot's value): every slot is
 *     delivered, late ones back to back, none skipped;
 *   - a sample taken half a period or more after its slot is LATE (its value belongs to a later time
 *     than its index says).
 * Ticks are any unsigned 32-bit clock (micros(), SysTick ticks); differences wrap correctly while the
 * reader is less than 2^31 ticks behind. No heap, no floats. */
#ifndef TAE_PACE_H
#define TAE_PACE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t period;   /* clock ticks per sample (>= 1) */
    uint32_t next_due; /* tick at which the next slot is due */
    uint32_t skipped;  /* slots passed without a sample since the last restart */
    uint32_t late;     /* samples taken half a period or more after their slot since the last restart */
    uint8_t started;   /* the grid starts at the first call after a restart */
    uint8_t catch_up;  /* 1: deliver missed slots late instead of skipping them */
} tae_pace_t;

void tae_pace_init(tae_pace_t *p, uint32_t period_ticks, int catch_up);
/* A new stream: the grid starts at the next call, the counts at 0. */
void tae_pace_restart(tae_pace_t *p);
/* 1 when a sample is due at `now` (take it now), else 0; updates the counts. */
int tae_pace_due(tae_pace_t *p, uint32_t now);

#ifdef __cplusplus
}
#endif

#endif /* TAE_PACE_H */
