/* tinyae — a deterministic stand-in engine for the simulated device (sim_device.c):
 * out[i] = clamp(in[i] + ((i % 3) - 1) * 4), so scores are small but non-zero. The Python tests
 * mirror it. Replace this file by the compiled engine + model_compiled.c to simulate a real model. */
#include "tae_engine.h"
#include "model_config.h"

extern uint32_t sim_clock;
static uint32_t sim_engine_calls;
static uint32_t sim_engine_fail_every;

void sim_set_engine_fail_every(uint32_t n)
{
    sim_engine_fail_every = n;
}

int tae_engine_init(void)
{
    sim_engine_calls = 0;
    return TAE_ENGINE_OK;
}

int tae_engine_invoke(const int8_t *in, int8_t *out)
{
    uint32_t i;
    sim_clock += 1000u;
    sim_engine_calls++;
    if (sim_engine_fail_every > 0u && sim_engine_calls % sim_engine_fail_every == 0u) {
        return TAE_ENGINE_ERR_INVOKE;
    }
    for (i = 0; i < (uint32_t)TAE_OUTPUT_SIZE; ++i) {
        int32_t v = (int32_t)in[i] + ((int32_t)(i % 3u) - 1) * 4;
        v = v > 127 ? 127 : (v < -128 ? -128 : v);
        out[i] = (int8_t)v;
    }
    return TAE_ENGINE_OK;
}

const char *tae_engine_name(void)
{
    return "sim-stub";
}

const char *tae_engine_library(void)
{
    return "";
}

uint32_t tae_engine_ram_bytes(void)
{
    return 0u;
}
