/* tinyae — Arduino entry point for the PlatformIO envs (Nano 33 BLE, ESP32).
 *
 * Bytes from Serial go to the application (tae_app_on_bytes); the application answers through
 * tae_port_write (board_port.cpp -> Serial). tae_app_poll runs the sensor mode when the host selected
 * it; it reads samples through tae_port_read_sample, which only has a sensor behind it in builds with
 * -D TAE_BOARD_SENSOR (see platformio.ini). The protocol itself is the portable core's (tae_app.c). */
#include <Arduino.h>

#include "board.h"
#include "model_config.h" /* TAE_FIRMWARE_VERSION: generated, from pyproject.toml's version */

extern "C" {
#include "tae_app.h"
#include "tae_engine.h"
#include "tae_protocol.h" /* TAE_PROTO_RX_BUFFER */
}

namespace {

/* Figures the board knows: the link map is not readable at run time, so flash/RAM come from the
 * budget gate on the host; the handshake carries 0 (unknown) here. */
tae_target_info_t g_info = {0u, 0u, 0u, TAE_FIRMWARE_VERSION, TAE_BOARD_TARGET};

void print_line(const char *a, const char *b)
{
    /* A text line before the app's 0x00 delimiter and BOOT frame: the host decoder discards it,
     * a plain serial monitor shows it. */
    Serial.print("tinyae: ");
    Serial.print(a);
    Serial.println(b);
}

}  // namespace

void setup()
{
#if defined(ARDUINO_ARCH_ESP32)
    /* The protocol's receive-buffer guarantee (the host keeps up to TAE_PROTO_HOST_WINDOW bytes in
     * flight); the core's default RX buffer is 256 B. */
    Serial.setRxBufferSize(TAE_PROTO_RX_BUFFER);
#endif
    /* The Nano 33 BLE's Serial is USB CDC: what its 256 B ring cannot take stays in the USB endpoint,
     * which the host's USB stack is NAKed on (ArduinoCore-mbed PluggableUSBSerial::onInterrupt), so it
     * meets TAE_PROTO_RX_BUFFER without dropping a byte. */
    Serial.begin(TAE_SERIAL_BAUD);
#if defined(ARDUINO_ARCH_MBED)
    /* USB CDC: wait briefly for the host to open the port so the BOOT frame is not lost. */
    const unsigned long start = millis();
    while (!Serial && millis() - start < 3000UL) {
    }
#endif
    tae_board_cycles_init();
#if defined(TAE_BOARD_SENSOR)
    const char *sensor_error = tae_board_sensor_init();
    if (sensor_error != nullptr) {
        print_line("sensor: ", sensor_error);
    }
#endif
    /* Initialize the engine first so a failure can be explained in words (tae_app_init calls it
     * again, which returns the same status, and reports it in an ERROR frame). */
    if (tae_engine_init() != TAE_ENGINE_OK) {
#if defined(TAE_ENGINE_TFLM)
        print_line("engine init failed: ", tae_engine_tflm_reason());
#else
        print_line("engine init failed", "");
#endif
    }
    tae_app_set_target_info(&g_info);
    tae_app_init();
}

void loop()
{
    uint8_t buf[64];
    int avail = Serial.available();
    while (avail > 0) {
        const size_t want = (size_t)avail < sizeof buf ? (size_t)avail : sizeof buf;
        const size_t got = Serial.readBytes(reinterpret_cast<char *>(buf), want);
        if (got == 0) {
            break;
        }
        tae_app_on_bytes(buf, got);
        avail = Serial.available();
    }
    tae_app_poll();
    /* No sleep when tae_app_idle() says the app could: the emulated board sleeps there to free its
     * host's CPU (targets/mps2_an386/main.c), which a board does not share. Here a sleep would be the
     * RTOS's (mbed's delay(), FreeRTOS's vTaskDelay on the ESP32: a 1 ms tick), adding up to a tick to
     * every answer, and no board is at hand to measure what that costs the protocol's round trips. */
}
