/* tinyae — tae_port.h for the Arduino boards: Serial output, the cost counter, sensor samples.
 *
 * Cost counter: CPU cycles by default — the Cortex-M4 DWT cycle counter (CYCCNT) on the nRF52840
 * (64 MHz, wraps after 67 s), the Xtensa CCOUNT register on the ESP32 (ESP.getCycleCount(), 240 MHz,
 * wraps after 17.9 s); unit "cycles". With -D TAE_COST_MICROS: micros(), unit "us". A single
 * inference is far shorter than a wrap, and the pipeline subtracts with unsigned arithmetic. */
#include <Arduino.h>

#include "board.h"

#if defined(ARDUINO_ARCH_MBED)
#include <USB/PluggableUSBSerial.h>
#elif defined(ARDUINO_ARCH_ESP32)
#include <driver/uart.h>
#endif

extern "C" {
#include "model_config.h"
#include "tae_pace.h"
#include "tae_port.h"
}

#if defined(ARDUINO_ARCH_MBED) && !defined(TAE_COST_MICROS)
/* ARMv7-M debug registers (Architecture Reference Manual C1.6, DWT): DEMCR.TRCENA enables the DWT,
 * DWT_CTRL.CYCCNTENA starts the counter. */
#define TAE_DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define TAE_DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define TAE_DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#endif

void tae_board_cycles_init(void)
{
#if defined(ARDUINO_ARCH_MBED) && !defined(TAE_COST_MICROS)
    TAE_DEMCR |= (1u << 24);
    TAE_DWT_CYCCNT = 0;
    TAE_DWT_CTRL |= 1u;
#endif
}

extern "C" {

uint32_t tae_port_cycles(void)
{
#if defined(TAE_COST_MICROS)
    return (uint32_t)micros();
#elif defined(ARDUINO_ARCH_MBED)
    return TAE_DWT_CYCCNT;
#else
    return (uint32_t)ESP.getCycleCount();
#endif
}

const char *tae_port_cycles_unit(void)
{
#if defined(TAE_COST_MICROS)
    return "us";
#else
    return "cycles";
#endif
}

size_t tae_port_write(const uint8_t *data, size_t len)
{
    /* One pass, never a retry loop, returning what the link took (tae_port.h); what it did not take is
     * handed back to the application, which drops that frame, counts it and reports the count in the
     * next handshake: sampling and inference never stop for a closed port. Serial.write is not used
     * for the count because on both cores it can return `len` for bytes that never left:
     *   Nano 33 BLE (mbed core 4.5.0): Serial is the USB CDC port, _SerialUSB (Arduino.h, Serial.cpp:
     *   229-233). Its write (PluggableUSBSerial.h:256-267) returns 0 at once while no host holds the
     *   port open (DTR low), but otherwise counts every 64-byte packet as sent even when USBCDC::send
     *   reports it was cut off (the host closed the port); so the packets are sent here and counted up
     *   to the first that fails.
     *   ESP32 (core 2.0.14, UART0): HardwareSerial::write (HardwareSerial.cpp:551-555) drops the result
     *   of uart_write_bytes, which waits for room in the TX buffer (it drains at the baud rate) and
     *   returns how many bytes it queued, or -1 without a UART driver. */
#if defined(ARDUINO_ARCH_MBED)
    if (!_SerialUSB.connected()) {
        return 0;
    }
    size_t sent = 0;
    while (sent < len) {
        const size_t n = len - sent < (size_t)CDC_MAX_PACKET_SIZE ? len - sent : (size_t)CDC_MAX_PACKET_SIZE;
        if (!_SerialUSB.send(const_cast<uint8_t *>(data + sent), (uint32_t)n)) {
            break;
        }
        sent += n;
    }
    return sent;
#else
    const int queued = uart_write_bytes(UART_NUM_0, data, len);
    return queued > 0 ? (size_t)queued : 0u;
#endif
}

#if defined(TAE_BOARD_SENSOR)
/* Samples are due every period on a fixed grid of micros() (tae_pace.h). A sensor gives its value at
 * the time it is read, so a slot the loop was too late for (an inference, a telemetry frame the serial
 * port took long to accept) is skipped, not read late and passed off as the slot's: the skipped and
 * late samples are counted and reported in every TELEMETRY frame (docs/protocol.md). The build refuses a
 * rate the sensor or the loop cannot keep (tools/boards/sampling.py). */
namespace {
tae_pace_t g_pace;
bool g_pace_ready = false;

void tae_board_pace_init(void)
{
    if (!g_pace_ready) {
        tae_pace_init(&g_pace, (uint32_t)(1000000.0f / (float)TAE_SAMPLE_RATE_HZ + 0.5f), 0);
        g_pace_ready = true;
    }
}
}  // namespace
#endif

int tae_port_read_sample(float *sample)
{
#if defined(TAE_BOARD_SENSOR)
    tae_board_pace_init();
    if (!tae_pace_due(&g_pace, (uint32_t)micros())) {
        return 0;
    }
    tae_board_sensor_read(sample);
    return 1;
#else
    (void)sample;
    return 0; /* host-stream build: no sensor behind the sensor mode */
#endif
}

void tae_port_sample_restart(void)
{
#if defined(TAE_BOARD_SENSOR)
    tae_board_pace_init();
    tae_pace_restart(&g_pace);
#endif
}

void tae_port_sample_counts(tae_clock_counts_t *out)
{
#if defined(TAE_BOARD_SENSOR)
    tae_board_pace_init();
    out->skipped = g_pace.skipped;
    out->late = g_pace.late;
#else
    out->skipped = 0u;
    out->late = 0u;
#endif
#if defined(TAE_BOARD_SYNTH)
    out->flags = (uint8_t)TAE_CLOCK_SYNTHETIC; /* paced like a sensor: skipped when late */
#else
    out->flags = 0u;
#endif
}

}  // extern "C"
