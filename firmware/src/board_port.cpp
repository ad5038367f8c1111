/* tinyae — tae_port.h for the Arduino boards: Serial output, the cost counter, sensor samples.
 *
 * Cost counter: CPU cycles by default — the Cortex-M4 DWT cycle counter (CYCCNT) on the nRF52840
 * (64 MHz, wraps after 67 s), the Xtensa CCOUNT register on the ESP32 (ESP.getCycleCount(), 240 MHz,
 * wraps after 17.9 s); unit "cycles". With -D TAE_COST_MICROS: micros(), unit "us". A single
 * inference is far shorter than a wrap, and the pipeline subtracts with unsigned arithmetic. */
#include <Arduino.h>

#include "board.h"

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
    /* One Serial.write, never a retry loop. On the Nano 33 BLE (mbed core 4.5.0, USB CDC:
     * PluggableUSBSerial.h) it returns 0 at once while no host holds the port open (DTR low), and
     * otherwise returns when the host has taken the packets; on the ESP32 (UART) it waits for room in
     * the TX buffer, which drains at the baud rate. What it does not take is handed back to the
     * application, which drops that frame, counts it and reports the count in the next handshake:
     * sampling and inference never stop for a closed port. */
    return Serial.write(data, len);
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
