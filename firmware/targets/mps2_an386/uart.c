/* tinyae — CMSDK APB UART0 driver for mps2-an386: interrupt-driven RX into a ring, polled TX.
 *
 * RX never drops a byte as long as the ring has room: the RX interrupt (IRQ 0) moves every
 * received byte into the ring at once, and the main loop drains it. The UART itself holds one
 * byte. Under QEMU the socket chardev only hands the UART a byte when its 1-byte buffer is empty,
 * so nothing is lost inside QEMU either; on the host side the protocol's acknowledgements are the flow
 * control: the host keeps at most TAE_PROTO_HOST_WINDOW bytes unacknowledged, and the ring holds
 * TAE_PROTO_RX_BUFFER (twice that, for a go-back-N resend behind stale copies) and at least one
 * maximum-size frame plus margin. A full ring drops the byte and counts it in tae_uart_rx_dropped(),
 * which the host sees as a sequence/CRC error, never as a hang.
 *
 * TX polls STATE.TXFULL before each byte: QEMU keeps TXFULL set while its chardev cannot take the
 * byte (socket buffer full), which is back-pressure all the way to the host's socket. */
#include <stdint.h>

#include "mps2_an386.h"

#ifndef TAE_UART_RX_RING_SIZE
#define TAE_UART_RX_RING_SIZE 4096u
#endif
#if (TAE_UART_RX_RING_SIZE & (TAE_UART_RX_RING_SIZE - 1u)) != 0
#error "TAE_UART_RX_RING_SIZE must be a power of two"
#endif
#if defined(TAE_EMU_APP_CORE)
#include "tae_protocol.h"
/* One largest encoded frame (TAE_PROTO_MAX_WIRE) plus 256 B of margin must fit: raise
 * TAE_UART_RX_RING_SIZE (a power of two) when a model with many channels makes frames bigger. */
typedef char tae_check_rx_ring_holds_a_frame[(TAE_UART_RX_RING_SIZE >= TAE_PROTO_MAX_WIRE + 256u) ? 1 : -1];
/* The protocol's receive-buffer guarantee: the host keeps up to TAE_PROTO_HOST_WINDOW bytes in flight. */
typedef char tae_check_rx_ring_holds_the_host_window[(TAE_UART_RX_RING_SIZE >= TAE_PROTO_RX_BUFFER) ? 1 : -1];
#endif

static volatile uint8_t tae_rx_ring[TAE_UART_RX_RING_SIZE];
static volatile uint32_t tae_rx_head; /* written by the ISR only */
static volatile uint32_t tae_rx_tail; /* written by the main loop only */
static volatile uint32_t tae_rx_dropped;

void tae_uart_init(void)
{
    TAE_UART0_CTRL = 0u;
    TAE_UART0_BAUDDIV = 16u; /* smallest legal divider; QEMU does not model the bit rate */
    TAE_UART0_INTSTATUS = TAE_UART_INT_RX | TAE_UART_INT_RXOVR | 1u;
    TAE_UART0_STATE = TAE_UART_STATE_RXOVR; /* clear a stale overrun */
    tae_rx_head = tae_rx_tail = 0u;
    tae_rx_dropped = 0u;
    TAE_UART0_CTRL = TAE_UART_CTRL_TXEN | TAE_UART_CTRL_RXEN | TAE_UART_CTRL_RXINT;
    TAE_NVIC_ISER0 = 1u << TAE_UART0_RX_IRQ;
}

void tae_uart_rx_isr(void)
{
    /* Clear first, then drain: a byte arriving after the last STATE read sets the flag again. */
    TAE_UART0_INTSTATUS = TAE_UART_INT_RX;
    while (TAE_UART0_STATE & TAE_UART_STATE_RXFULL) {
        uint8_t b = (uint8_t)TAE_UART0_DATA;
        uint32_t head = tae_rx_head;
        if (head - tae_rx_tail < TAE_UART_RX_RING_SIZE) {
            tae_rx_ring[head & (TAE_UART_RX_RING_SIZE - 1u)] = b;
            tae_rx_head = head + 1u;
        } else {
            tae_rx_dropped++;
        }
    }
    if (TAE_UART0_STATE & TAE_UART_STATE_RXOVR) {
        TAE_UART0_STATE = TAE_UART_STATE_RXOVR;
        tae_rx_dropped++;
    }
}

size_t tae_uart_read(uint8_t *dst, size_t max)
{
    uint32_t tail = tae_rx_tail;
    uint32_t avail = tae_rx_head - tail;
    size_t n = avail < max ? (size_t)avail : max;
    for (size_t i = 0; i < n; ++i) {
        dst[i] = tae_rx_ring[(tail + (uint32_t)i) & (TAE_UART_RX_RING_SIZE - 1u)];
    }
    __asm volatile("dmb" ::: "memory");
    tae_rx_tail = tail + (uint32_t)n;
    return n;
}

uint32_t tae_uart_rx_dropped(void) { return tae_rx_dropped; }

int tae_uart_rx_pending(void) { return tae_rx_head != tae_rx_tail; }

void tae_uart_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        while (TAE_UART0_STATE & TAE_UART_STATE_TXFULL) {
        }
        TAE_UART0_DATA = data[i];
    }
}

void tae_uart_puts(const char *s)
{
    while (*s != '\0') {
        tae_uart_write((const uint8_t *)s, 1u);
        ++s;
    }
}

void tae_format_hex32(uint32_t v, char out[TAE_HEX32_CHARS])
{
    out[0] = '0';
    out[1] = 'x';
    for (int i = 0; i < 8; ++i) {
        uint32_t nib = (v >> (28 - 4 * i)) & 0xFu;
        out[2 + i] = (char)(nib < 10u ? '0' + nib : 'a' + nib - 10u);
    }
    out[10] = '\0';
}

void tae_uart_put_hex32(uint32_t v)
{
    char buf[TAE_HEX32_CHARS];
    tae_format_hex32(v, buf);
    tae_uart_puts(buf);
}

void tae_uart_put_dec(uint32_t v)
{
    char buf[11];
    int i = 10;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    tae_uart_puts(&buf[i]);
}
