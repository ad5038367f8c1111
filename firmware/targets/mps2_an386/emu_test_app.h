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
extern const char tae_emu_app_name[];

#endif /* TAE_EMU_TEST_APP_H */
