/* tinyae — tae_port storage for the boards: the on-site calibration record (tae_calib.h) in flash.
 *
 * Nano 33 BLE (Arduino mbed core): mbed's TDBStore, a power-fail-safe key-value store (every set is
 * written whole with its own CRC before it replaces the old value), over a FlashIAPBlockDevice in the
 * last TAE_STORE_SIZE bytes of the nRF52840's internal flash (4 erase pages of 4 KiB at 0xFC000). The
 * sketch starts at 0x10000 after the bootloader; the flash budget (budgets.toml: 90 % of the 983,040 B
 * application flash) keeps the image far below the store. Compiled in CI against the core's own
 * headers (tests/test_boardlib_sketch.py); the core's libmbed.a is not available here, so it is not
 * linked or run in CI.
 *
 * ESP32 (Arduino core 2.0.14, ESP-IDF 4.4): a blob in NVS, namespace "tinyae", key "calib" (the
 * layout Preferences uses; NVS replaces a blob whole: a power loss leaves the old value or the new
 * one). The IDF's nvs.h rather than Preferences: Preferences hides the esp_err_t, so a missing record
 * and a failing flash would both look empty, and its getBytes returns 0 for a record longer than the
 * buffer. Type-checked in CI against the core's own headers (tests/test_boardlib_sketch.py); there is
 * no Xtensa compiler here, so it is not built, linked or run in CI.
 *
 * Either way the record carries its own CRC-32 and is checked against the model at boot (tae_calib.c):
 * whatever the flash holds, a damaged or foreign record is never used. */
#include <Arduino.h>

#include "board.h"

extern "C" {
#include "tae_port.h"
}

#if defined(ARDUINO_ARCH_MBED)
#include <FlashIAPBlockDevice.h>
#include <TDBStore.h>

#ifndef TAE_STORE_ADDRESS
#define TAE_STORE_ADDRESS 0xFC000u /* nRF52840: 1 MiB of flash; the last 16 KiB */
#endif
#ifndef TAE_STORE_SIZE
#define TAE_STORE_SIZE 0x4000u
#endif

namespace {

const char kKey[] = "tinyae_calib";
FlashIAPBlockDevice g_block(TAE_STORE_ADDRESS, TAE_STORE_SIZE);
mbed::TDBStore g_store(&g_block);
bool g_ready = false;

bool store_ready()
{
    if (!g_ready) {
        g_ready = g_store.init() == MBED_SUCCESS;
    }
    return g_ready;
}

}  // namespace

extern "C" {

int tae_port_store_read(uint8_t *buf, size_t cap, size_t *len)
{
    mbed::KVStore::info_t info;
    size_t got = 0;
    *len = 0;
    if (!store_ready()) {
        return TAE_STORE_ERROR;
    }
    const int found = g_store.get_info(kKey, &info);
    if (found == MBED_ERROR_ITEM_NOT_FOUND) {
        return TAE_STORE_EMPTY;
    }
    if (found != MBED_SUCCESS) {
        return TAE_STORE_ERROR;
    }
    if (g_store.get(kKey, buf, cap < info.size ? cap : info.size, &got, 0) != MBED_SUCCESS) {
        return TAE_STORE_ERROR;
    }
    *len = info.size;
    return TAE_STORE_OK;
}

int tae_port_store_write(const uint8_t *data, size_t len)
{
    if (!store_ready()) {
        return TAE_STORE_ERROR;
    }
    return g_store.set(kKey, data, len, 0) == MBED_SUCCESS ? TAE_STORE_OK : TAE_STORE_ERROR;
}

int tae_port_store_erase(void)
{
    if (!store_ready()) {
        return TAE_STORE_ERROR;
    }
    const int rc = g_store.remove(kKey);
    return (rc == MBED_SUCCESS || rc == MBED_ERROR_ITEM_NOT_FOUND) ? TAE_STORE_OK : TAE_STORE_ERROR;
}

}  // extern "C"

#elif defined(ARDUINO_ARCH_ESP32)
#include <nvs.h>

namespace {

const char kNamespace[] = "tinyae";
const char kKey[] = "calib";

}  // namespace

extern "C" {

int tae_port_store_read(uint8_t *buf, size_t cap, size_t *len)
{
    nvs_handle_t handle;
    size_t n = 0;
    *len = 0;
    esp_err_t err = nvs_open(kNamespace, NVS_READONLY, &handle);
    if (err == ESP_ERR_NVS_NOT_FOUND) {
        return TAE_STORE_EMPTY; /* a read-only open of a namespace that was never written */
    }
    if (err != ESP_OK) {
        return TAE_STORE_ERROR;
    }
    err = nvs_get_blob(handle, kKey, NULL, &n); /* the stored length (ESP_ERR_NVS_NOT_FOUND: no record) */
    if (err == ESP_OK && n > 0u && n <= cap) {
        size_t got = n;
        err = nvs_get_blob(handle, kKey, buf, &got);
        if (err == ESP_OK && got != n) {
            err = ESP_FAIL;
        }
    }
    nvs_close(handle);
    if (err == ESP_ERR_NVS_NOT_FOUND) {
        return TAE_STORE_EMPTY;
    }
    if (err != ESP_OK) {
        return TAE_STORE_ERROR;
    }
    /* A record longer than cap: NVS reads a blob only whole, so nothing is copied, and its full length
     * tells the core it is not a record of this build (corrupt), as tae_port.h asks. */
    *len = n;
    return TAE_STORE_OK;
}

int tae_port_store_write(const uint8_t *data, size_t len)
{
    nvs_handle_t handle;
    if (nvs_open(kNamespace, NVS_READWRITE, &handle) != ESP_OK) {
        return TAE_STORE_ERROR;
    }
    esp_err_t err = nvs_set_blob(handle, kKey, data, len);
    if (err == ESP_OK) {
        err = nvs_commit(handle);
    }
    nvs_close(handle);
    return err == ESP_OK ? TAE_STORE_OK : TAE_STORE_ERROR;
}

int tae_port_store_erase(void)
{
    nvs_handle_t handle;
    esp_err_t err = nvs_open(kNamespace, NVS_READONLY, &handle);
    if (err == ESP_ERR_NVS_NOT_FOUND) {
        return TAE_STORE_OK; /* the namespace was never written: nothing to erase */
    }
    if (err != ESP_OK) {
        return TAE_STORE_ERROR;
    }
    nvs_close(handle);
    if (nvs_open(kNamespace, NVS_READWRITE, &handle) != ESP_OK) {
        return TAE_STORE_ERROR;
    }
    err = nvs_erase_key(handle, kKey);
    if (err == ESP_OK) {
        err = nvs_commit(handle);
    }
    nvs_close(handle);
    return (err == ESP_OK || err == ESP_ERR_NVS_NOT_FOUND) ? TAE_STORE_OK : TAE_STORE_ERROR;
}

}  // extern "C"
#endif
