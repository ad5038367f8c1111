/* tinyae — Arduino board glue shared by main.cpp, board_port.cpp and board_sensor.cpp. */
#ifndef TAE_BOARD_H
#define TAE_BOARD_H

#include <stdint.h>

#ifndef TAE_SERIAL_BAUD
#define TAE_SERIAL_BAUD 115200
#endif

#if defined(ARDUINO_ARCH_MBED)
#define TAE_BOARD_TARGET "nano33ble"
#elif defined(ARDUINO_ARCH_ESP32)
#define TAE_BOARD_TARGET "esp32dev"
#else
#error "tinyae board glue supports the Arduino mbed (Nano 33 BLE) and ESP32 cores"
#endif

#if defined(TAE_CALIB_AT_BOOT) && !defined(TAE_BOARD_SENSOR)
#error "TAE_CALIB_AT_BOOT calibrates from the board's sensor at first boot: build with -D TAE_BOARD_SENSOR (SENSOR=1)"
#endif

#if defined(TAE_ENGINE_TFLM) == defined(TAE_ENGINE_COMPILED)
#error "define exactly one of TAE_ENGINE_TFLM and TAE_ENGINE_COMPILED (platformio.ini envs do)"
#endif

/* Cost counter (board_port.cpp): start it once in setup(). */
void tae_board_cycles_init(void);

/* Sensor (board_sensor.cpp): returns 0 when the sensor answered, else a static reason. */
const char *tae_board_sensor_init(void);
/* Read one sample (TAE_CHANNELS floats) from the sensor now. */
void tae_board_sensor_read(float *sample);

#endif /* TAE_BOARD_H */
