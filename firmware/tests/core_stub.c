/* tinyae — test doubles for the host build of the pipeline: a deterministic stub engine and a
 * host port. Used by tests/test_core_*.py (through ctypes) and by core_driver.c (ASan/UBSan). */
#include "core_stub.h"

#include "tae_engine.h"
#include "tae_port.h"

static uint32_t tae_stub_clock;
static uint32_t tae_stub_invocations;
uint32_t tae_stub_fail_every; /* when > 0, every n-th invocation fails with TAE_ENGINE_ERR_INVOKE */

/* Stub network: out[i] = (int8)((in[(7 i + 3) mod N] * 3 + i) mod 256). The Python tests mirror it. */
int tae_engine_init(void)
{
    tae_stub_invocations = 0;
    return TAE_ENGINE_OK;
}

int tae_engine_invoke(const int8_t *in, int8_t *out)
{
    uint32_t i;
    tae_stub_clock += TAE_STUB_ENGINE_COST;
    tae_stub_invocations++;
    if (tae_stub_fail_every > 0 && tae_stub_invocations % tae_stub_fail_every == 0) {
        return TAE_ENGINE_ERR_INVOKE;
    }
    for (i = 0; i < (uint32_t)TAE_OUTPUT_SIZE; ++i) {
        const int32_t v = (int32_t)in[(7u * i + 3u) % (uint32_t)TAE_INPUT_SIZE] * 3 + (int32_t)i;
        out[i] = (int8_t)(uint8_t)((uint32_t)v & 0xffu);
    }
    return TAE_ENGINE_OK;
}

const char *tae_engine_name(void)
{
    return "stub";
}

const char *tae_engine_library(void)
{
    return "";
}

uint32_t tae_engine_ram_bytes(void)
{
    return 0;
}

/* Host port: every read of the counter advances it by one tick. */
uint32_t tae_port_cycles(void)
{
    return tae_stub_clock++;
}

const char *tae_port_cycles_unit(void)
{
    return "ticks";
}

size_t tae_port_write(const uint8_t *data, size_t len)
{
    (void)data;
    return len;
}

int tae_port_read_sample(float *sample)
{
    (void)sample;
    return 0;
}

size_t tae_stub_pipeline_size(void)
{
    return sizeof(tae_pipeline_t);
}

size_t tae_stub_result_size(void)
{
    return sizeof(tae_result_t);
}

uint32_t tae_stub_run(tae_pipeline_t *p, const float *samples, uint32_t n_samples, uint32_t max_windows,
                      tae_stub_record_t *records, int8_t *inputs, int8_t *outputs)
{
    uint32_t s, w = 0, i;
    tae_result_t r;
    for (s = 0; s < n_samples; ++s) {
        if (!tae_pipeline_push(p, samples + (size_t)s * TAE_CHANNELS, &r)) {
            continue;
        }
        if (w < max_windows) {
            records[w].seq = r.seq;
            records[w].score = r.score;
            records[w].anomaly = r.anomaly;
            records[w].alarm = r.alarm;
            records[w].status = r.status;
            records[w].cost = r.cost;
            for (i = 0; i < (uint32_t)TAE_INPUT_SIZE; ++i) {
                inputs[(size_t)w * TAE_INPUT_SIZE + i] = r.input_q[i];
            }
            for (i = 0; i < (uint32_t)TAE_OUTPUT_SIZE; ++i) {
                outputs[(size_t)w * TAE_OUTPUT_SIZE + i] = r.output_q[i];
            }
        }
        w++;
    }
    return w;
}
