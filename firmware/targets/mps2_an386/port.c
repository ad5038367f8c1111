/* tinyae — tae_port for mps2-an386 under QEMU: cost counter = instructions (SysTick under
 * `-icount shift=6`, see timer.c), output = UART0 (polled: it always takes every byte, like a board's
 * UART draining at its baud rate). tae_port_read_sample lives in synth_source.c. */
#include "tae_port.h"

#include "mps2_an386.h"

uint32_t tae_port_cycles(void) { return (uint32_t)tae_timer_instructions(); }

const char *tae_port_cycles_unit(void) { return "instructions"; }

size_t tae_port_write(const uint8_t *data, size_t len)
{
    tae_uart_write(data, len);
    return len;
}
