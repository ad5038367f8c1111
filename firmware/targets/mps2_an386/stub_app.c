/* tinyae — echo stand-in for the application (EMU_APP=stub): every received byte is sent back.
 * Used to prove the UART path (RX interrupt + ring, TX) and to measure socket throughput. */
#include "emu_test_app.h"
#include "tae_port.h"

const char tae_emu_app_name[] = "echo-stub";

void tae_app_init(void) {}

void tae_app_on_bytes(const uint8_t *data, size_t len) { (void)tae_port_write(data, len); }

void tae_app_poll(void) {}
