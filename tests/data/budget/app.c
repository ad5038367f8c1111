/* Test image for the budget gate (tests/test_budget_*.py): a model array, tinyae-style engine code,
 * an arena in .bss, initialised data, a libgcc helper and a newlib function. Not firmware. */
#include <stdint.h>
#include <string.h>

#ifndef MODEL_BYTES
#define MODEL_BYTES 20000
#endif
#ifndef ARENA_BYTES
#define ARENA_BYTES 4096
#endif

__attribute__((aligned(16))) const int8_t tae_model_weights[MODEL_BYTES] = {1, 2, 3, 4};
const int32_t tae_model_bias[64] = {7, 1, 2, 3};

int8_t tae_arena[ARENA_BYTES];
static uint8_t tae_rx_buffer[300];
volatile int32_t tae_counter = 5;
uint32_t app_table[16] = {1, 2, 3};

int tae_compiled_invoke(const int8_t *in, int8_t *out, uint32_t n)
{
    int32_t acc = tae_model_bias[n & 63u];
    for (uint32_t i = 0; i < n; ++i) {
        acc += (int32_t)in[i] * tae_model_weights[i % MODEL_BYTES];
        out[i] = (int8_t)(acc >> 8);
    }
    return (int)acc;
}

uint64_t tae_port_cycles64(uint64_t a, uint64_t b)
{
    return a / (b | 1u); /* pulls __aeabi_uldivmod from libgcc */
}

void app_helper(uint32_t k)
{
    memset(tae_rx_buffer, (int)k, sizeof tae_rx_buffer); /* newlib */
    app_table[k & 15u] += k;
}

int main(void)
{
    int8_t out[16];
    for (;;) {
        tae_counter += tae_compiled_invoke(tae_arena, out, 16);
        app_helper((uint32_t)tae_port_cycles64((uint64_t)tae_counter, 3u));
    }
}

extern uint32_t _estack;
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss;

void Reset_Handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (uint32_t *dst = &_sbss; dst < &_ebss;) *dst++ = 0;
    main();
}

__attribute__((section(".isr_vector"), used)) const void *const vector_table[2] = {&_estack, (void *)Reset_Handler};
