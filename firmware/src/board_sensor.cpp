/* tinyae — the board's sensor for sensor mode (-D TAE_BOARD_SENSOR).
 *
 * Channel c of a sample is source channel c of the list below (missing ones read 0), so train the
 * model on the same channel order:
 *   Nano 33 BLE (Sense): acceleration x, y, z [g], angular rate x, y, z [deg/s] from the on-board IMU,
 *     Rev1 LSM9DS1 (Arduino_LSM9DS1) or, with -D TAE_NANO33BLE_REV2, BMI270 (Arduino_BMI270_BMM150);
 *     both official Arduino libraries expose the same `IMU` object.
 *   ESP32: analog inputs (raw 12-bit counts) on TAE_ESP32_ADC_PINS, one pin per channel; or, with
 *     -D TAE_ESP32_MPU6050, an MPU6050 on I2C (SDA 21, SCL 22, address 0x68): acceleration x, y, z [g]
 *     and angular rate x, y, z [deg/s] at the power-on full scales (+-2 g, +-250 deg/s).
 *   Any board, with -D TAE_BOARD_SYNTH: the deterministic synthetic vibration source of the core
 *     (tae_synth.h, the C mirror of the training data generator: acc x, y, z in g), machine seed
 *     TAE_BOARD_SYNTH_SEED (default 1) — a board demo without any sensor wired. */
#include "board.h"

#if defined(TAE_BOARD_SENSOR)

#include <Arduino.h>

extern "C" {
#include "model_config.h"
}

namespace {
const int kImuChannels = 6;

void tae_board_fill(float *sample, const float *source, int n)
{
    for (int c = 0; c < TAE_CHANNELS; ++c) {
        sample[c] = c < n ? source[c] : 0.0f;
    }
}
}  // namespace

#if defined(TAE_BOARD_SYNTH)

extern "C" {
#include "tae_synth.h"
}

#ifndef TAE_BOARD_SYNTH_SEED
#define TAE_BOARD_SYNTH_SEED 1u
#endif

namespace {
tae_synth_t g_synth;
}

const char *tae_board_sensor_init(void)
{
    tae_synth_init(&g_synth, TAE_BOARD_SYNTH_SEED, (float)TAE_SAMPLE_RATE_HZ);
    return nullptr;
}

void tae_board_sensor_read(float *sample)
{
    float v[TAE_SYNTH_CHANNELS];
    tae_synth_next(&g_synth, v);
    tae_board_fill(sample, v, TAE_SYNTH_CHANNELS);
}

#elif defined(ARDUINO_ARCH_MBED)

#if defined(TAE_NANO33BLE_REV2)
#include <Arduino_BMI270_BMM150.h>
#else
#include <Arduino_LSM9DS1.h>
#endif

const char *tae_board_sensor_init(void)
{
    return IMU.begin() ? nullptr : "the on-board IMU did not answer (Rev1 vs Rev2: see TAE_NANO33BLE_REV2)";
}

void tae_board_sensor_read(float *sample)
{
    static float last[kImuChannels];
    /* The IMU's own output rate is at least TAE_SAMPLE_RATE_HZ for typical models (104-119 Hz);
     * when no new value is ready the previous one is repeated. */
    if (IMU.accelerationAvailable()) {
        IMU.readAcceleration(last[0], last[1], last[2]);
    }
    if (IMU.gyroscopeAvailable()) {
        IMU.readGyroscope(last[3], last[4], last[5]);
    }
    tae_board_fill(sample, last, kImuChannels);
}

#elif defined(ARDUINO_ARCH_ESP32) && defined(TAE_ESP32_MPU6050)

#include <Wire.h>

namespace {
const uint8_t kMpuAddress = 0x68;
}

const char *tae_board_sensor_init(void)
{
    Wire.begin();
    Wire.beginTransmission(kMpuAddress);
    Wire.write(0x6B); /* PWR_MGMT_1: leave sleep mode, internal oscillator */
    Wire.write(0x00);
    return Wire.endTransmission() == 0 ? nullptr : "no MPU6050 answered at I2C address 0x68 (SDA 21, SCL 22)";
}

void tae_board_sensor_read(float *sample)
{
    float v[kImuChannels] = {0};
    uint8_t raw[14];
    Wire.beginTransmission(kMpuAddress);
    Wire.write(0x3B); /* ACCEL_XOUT_H: accel x/y/z, temperature, gyro x/y/z, big-endian int16 */
    if (Wire.endTransmission(false) == 0 && Wire.requestFrom((int)kMpuAddress, 14) == 14) {
        for (int i = 0; i < 14; ++i) {
            raw[i] = (uint8_t)Wire.read();
        }
        for (int i = 0; i < 3; ++i) {
            v[i] = (float)(int16_t)((raw[2 * i] << 8) | raw[2 * i + 1]) / 16384.0f;
            v[3 + i] = (float)(int16_t)((raw[8 + 2 * i] << 8) | raw[9 + 2 * i]) / 131.0f;
        }
    }
    tae_board_fill(sample, v, kImuChannels);
}

#elif defined(ARDUINO_ARCH_ESP32)

/* -D TAE_ESP32_ADC_PINS=34,35,32: a comma list without braces. A shell that brace-expands (bash as
 * /bin/sh, zsh) turns -DTAE_ESP32_ADC_PINS={34,35,32} into three definitions of which the last wins. */
#ifndef TAE_ESP32_ADC_PINS
#define TAE_ESP32_ADC_PINS 34, 35, 32
#endif
#define TAE_ADC_PINS_TEXT_(...) #__VA_ARGS__
#define TAE_ADC_PINS_TEXT(...) TAE_ADC_PINS_TEXT_(__VA_ARGS__)
static_assert(TAE_ADC_PINS_TEXT(TAE_ESP32_ADC_PINS)[0] != '{',
              "TAE_ESP32_ADC_PINS takes a comma list without braces: -D TAE_ESP32_ADC_PINS=34,35,32");

namespace {
const uint8_t kAdcPins[] = {TAE_ESP32_ADC_PINS};
const int kAdcCount = (int)(sizeof kAdcPins / sizeof kAdcPins[0]);
}  // namespace

const char *tae_board_sensor_init(void)
{
    analogReadResolution(12);
    return nullptr;
}

void tae_board_sensor_read(float *sample)
{
    for (int c = 0; c < TAE_CHANNELS; ++c) {
        sample[c] = (float)analogRead(kAdcPins[c % kAdcCount]);
    }
}

#endif

#endif /* TAE_BOARD_SENSOR */
