/* tinyae — the application interface main.c drives, as the stand-in apps of this target implement
 * it (stub_app.c: echo; calib_app.c: instruction-count calibration). The real build uses the core's
 * tae_app.h instead. These apps exist to prove the target (UART, SysTick, semihosting, faults)
 * without the core; they are never part of `make firmware-emu`'s default image. */
#ifndef TAE_EMU_TEST_APP_H
#define TAE_EMU_TEST_APP_H

#include <stddef.h>
#include <stdint.h>

void tae_app_init(void);
void tae_app_on_bytes(const uint8_t *data, size_t len);
void tae_app_poll(void);
/* The stand-in apps have no work of their own: they act on received bytes only (or finish inside
 * tae_app_init), so they are always idle, as tae_app.h's tae_app_idle allows, and main.c's loop sleeps
 * once no byte has come for TAE_EMU_SPIN_POLLS polls. Except the streaming bench's link image
 * (bench_app.c, TAE_BENCH_LINK): it is the bound a run is held to, so it never sleeps (not even between
 * frames, where the core image pays one wake-up per frame's first byte). */
#if defined(TAE_BENCH_LINK)
static inline int tae_app_idle(void) { return 0; }
#else
static inline int tae_app_idle(void) { return 1; }
#endif
extern const char tae_emu_app_name[];

#endif /* TAE_EMU_TEST_APP_H */
