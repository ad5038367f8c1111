/* tinyae — a simulated device for the host: the real application (tae_app.c), protocol codec and
 * pipeline over an in-memory port. Built as a shared library (tools/simdevice/native.py) and driven
 * through ctypes by the protocol and host-CLI tests:
 *
 *   sim_boot()                 reset the device (emits a 0x00 and a BOOT frame)
 *   sim_feed(data, len)        bytes from the host
 *   sim_read(buf, cap)         drain up to cap bytes the device wrote; returns the count
 *   sim_pending()              bytes waiting to be read
 *   sim_poll()                 one main-loop iteration (sensor mode reads queued sensor samples); returns
 *                              tae_app_idle(): nonzero when a board could now sleep until the host sends more
 *   sim_push_sensor(xs, n)     queue n sensor samples (TAE_CHANNELS floats each); returns n queued
 *   sim_sensor_pace(period, catch_up, flags)  pace the sensor like a board (tae_pace.h): sample slots
 *                              every `period` ticks of a clock the test moves with sim_sensor_advance; the
 *                              queue is the sensor's timeline, one value per slot (a skipped slot's value
 *                              is dropped); flags = the TAE_CLOCK_* the port reports. period 0: unpaced,
 *                              every queued sample is due at once (the default)
 *   sim_sensor_advance(ticks)  move the sensor clock (a stalled main loop: advance several periods)
 *   sim_tx_overflow()          bytes lost because the host did not read (should stay 0)
 *   sim_set_link_budget(n)     the link takes n more bytes, then none (as USB CDC with no host
 *                              holding the port open); n < 0: unlimited (the default)
 *   sim_set_engine_fail_every(n)  (sim_engine.c) every n-th inference fails, 0 = never
 *   sim_store_put(data, len)   what the device's non-volatile storage holds (len < 0: nothing)
 *   sim_store_get(buf, cap)    copy it out; returns its length, -1 when nothing is stored
 *   sim_store_fail(mode)       storage faults: SIM_STORE_* bits (reads, writes or erases fail; a
 *                              write tears: half the bytes are stored, then it reports an error)
 * The storage survives sim_boot (a reset), like a board's flash. Not part of the firmware. */
#include <string.h>

#include "tae_app.h"
#include "tae_pace.h"
#include "tae_port.h"
#include "model_config.h"

#define SIM_TX_CAP (1u << 20)
#define SIM_SENSOR_CAP 4096u

static uint8_t sim_tx[SIM_TX_CAP];
static size_t sim_tx_head, sim_tx_tail;
static uint32_t sim_tx_lost;
static int32_t sim_link_budget = -1;
static float sim_sensor[SIM_SENSOR_CAP][TAE_CHANNELS];
#define SIM_STORE_CAP 8192u
#define SIM_STORE_READ_FAILS 1u
#define SIM_STORE_WRITE_FAILS 2u
#define SIM_STORE_ERASE_FAILS 4u
#define SIM_STORE_WRITE_TEARS 8u
static uint8_t sim_store[SIM_STORE_CAP];
static int32_t sim_store_len = -1;
static uint32_t sim_store_faults;
static uint32_t sim_sensor_head, sim_sensor_count;
static tae_pace_t sim_pace;
static uint32_t sim_pace_period; /* 0: unpaced */
static uint8_t sim_pace_flags;
static uint32_t sim_sensor_now;
uint32_t sim_clock;

uint32_t tae_port_cycles(void)
{
    return sim_clock++;
}

const char *tae_port_cycles_unit(void)
{
    return "ticks";
}

void sim_set_link_budget(int32_t bytes)
{
    sim_link_budget = bytes;
}

size_t tae_port_write(const uint8_t *data, size_t len)
{
    size_t i;
    if (sim_link_budget >= 0 && len > (size_t)sim_link_budget) {
        len = (size_t)sim_link_budget;
    }
    if (sim_link_budget >= 0) {
        sim_link_budget -= (int32_t)len;
    }
    if (sim_tx_head == sim_tx_tail) {
        sim_tx_head = sim_tx_tail = 0;
    }
    for (i = 0; i < len; ++i) {
        if (sim_tx_tail < SIM_TX_CAP) {
            sim_tx[sim_tx_tail++] = data[i];
        } else {
            sim_tx_lost++;
        }
    }
    return len;
}

static void sim_sensor_drop(uint32_t n)
{
    for (; n > 0u && sim_sensor_count > 0u; --n) {
        sim_sensor_head = (sim_sensor_head + 1u) % SIM_SENSOR_CAP;
        sim_sensor_count--;
    }
}

void sim_sensor_pace(uint32_t period, int32_t catch_up, uint32_t flags)
{
    sim_pace_period = period;
    sim_pace_flags = (uint8_t)flags;
    if (period > 0u) {
        tae_pace_init(&sim_pace, period, catch_up);
    }
}

void sim_sensor_advance(uint32_t ticks)
{
    sim_sensor_now += ticks;
}

void tae_port_sample_restart(void)
{
    if (sim_pace_period > 0u) {
        tae_pace_restart(&sim_pace);
    }
}

void tae_port_sample_counts(tae_clock_counts_t *out)
{
    out->skipped = sim_pace_period > 0u ? sim_pace.skipped : 0u;
    out->late = sim_pace_period > 0u ? sim_pace.late : 0u;
    out->flags = sim_pace_flags;
}

int tae_port_read_sample(float *sample)
{
    if (sim_sensor_count == 0) {
        return 0;
    }
    if (sim_pace_period > 0u) {
        const uint32_t before = sim_pace.skipped;
        if (!tae_pace_due(&sim_pace, sim_sensor_now)) {
            return 0;
        }
        sim_sensor_drop(sim_pace.skipped - before); /* the values of the slots nobody read */
        if (sim_sensor_count == 0) {
            return 0;
        }
    }
    memcpy(sample, sim_sensor[sim_sensor_head], sizeof sim_sensor[0]);
    sim_sensor_head = (sim_sensor_head + 1u) % SIM_SENSOR_CAP;
    sim_sensor_count--;
    return 1;
}

void sim_store_put(const uint8_t *data, int32_t len)
{
    if (len < 0) {
        sim_store_len = -1;
        return;
    }
    if ((uint32_t)len > SIM_STORE_CAP) {
        len = (int32_t)SIM_STORE_CAP;
    }
    memcpy(sim_store, data, (size_t)len);
    sim_store_len = len;
}

int32_t sim_store_get(uint8_t *buf, size_t cap)
{
    if (sim_store_len >= 0) {
        memcpy(buf, sim_store, (size_t)sim_store_len < cap ? (size_t)sim_store_len : cap);
    }
    return sim_store_len;
}

void sim_store_fail(uint32_t mode)
{
    sim_store_faults = mode;
}

int tae_port_store_read(uint8_t *buf, size_t cap, size_t *len)
{
    *len = 0;
    if (sim_store_faults & SIM_STORE_READ_FAILS) {
        return TAE_STORE_ERROR;
    }
    if (sim_store_len < 0) {
        return TAE_STORE_EMPTY;
    }
    memcpy(buf, sim_store, (size_t)sim_store_len < cap ? (size_t)sim_store_len : cap);
    *len = (size_t)sim_store_len;
    return TAE_STORE_OK;
}

int tae_port_store_write(const uint8_t *data, size_t len)
{
    if (sim_store_faults & SIM_STORE_WRITE_TEARS) {
        sim_store_put(data, (int32_t)(len / 2u)); /* a port without atomic writes, power lost midway */
        return TAE_STORE_ERROR;
    }
    if ((sim_store_faults & SIM_STORE_WRITE_FAILS) || len > SIM_STORE_CAP) {
        return TAE_STORE_ERROR;
    }
    sim_store_put(data, (int32_t)len);
    return TAE_STORE_OK;
}

int tae_port_store_erase(void)
{
    if (sim_store_faults & SIM_STORE_ERASE_FAILS) {
        return TAE_STORE_ERROR;
    }
    sim_store_len = -1;
    return TAE_STORE_OK;
}

void sim_boot(void)
{
    static const tae_target_info_t info = {23456u, 3456u, 2048u, TAE_FIRMWARE_VERSION, "sim"};
    sim_tx_head = sim_tx_tail = 0;
    sim_tx_lost = 0;
    sim_link_budget = -1;
    sim_sensor_head = sim_sensor_count = 0; /* the pacing (hardware) survives a reset */
    tae_app_set_target_info(&info);
    tae_app_init();
}

void sim_feed(const uint8_t *data, size_t len)
{
    tae_app_on_bytes(data, len);
}

size_t sim_pending(void)
{
    return sim_tx_tail - sim_tx_head;
}

size_t sim_read(uint8_t *buf, size_t cap)
{
    size_t n = sim_tx_tail - sim_tx_head;
    if (n > cap) {
        n = cap;
    }
    memcpy(buf, sim_tx + sim_tx_head, n);
    sim_tx_head += n;
    return n;
}

int sim_poll(void)
{
    tae_app_poll();
    return tae_app_idle();
}

uint32_t sim_push_sensor(const float *samples, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n && sim_sensor_count < SIM_SENSOR_CAP; ++i) {
        const uint32_t slot = (sim_sensor_head + sim_sensor_count) % SIM_SENSOR_CAP;
        memcpy(sim_sensor[slot], samples + (size_t)i * TAE_CHANNELS, sizeof sim_sensor[0]);
        sim_sensor_count++;
    }
    return i;
}

uint32_t sim_tx_overflow(void)
{
    return sim_tx_lost;
}
