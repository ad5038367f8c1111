/* tinyae — test doubles for the host build of the pipeline (see core_stub.c). */
#ifndef TAE_CORE_STUB_H
#define TAE_CORE_STUB_H

#include <stddef.h>
#include <stdint.h>

#include "tae_pipeline.h"

#define TAE_STUB_ENGINE_COST 1000u /* ticks the stub engine adds to the clock per invocation */

typedef struct {
    uint32_t seq;
    float score;
    uint8_t anomaly;
    uint8_t alarm;
    int32_t status;
    uint32_t cost;
} tae_stub_record_t;

extern uint32_t tae_stub_fail_every;

size_t tae_stub_pipeline_size(void);
size_t tae_stub_result_size(void);
/* Push n_samples samples (time-major, TAE_CHANNELS each); copy up to max_windows completed windows
 * into records / inputs [w][TAE_INPUT_SIZE] / outputs [w][TAE_OUTPUT_SIZE]. Returns the windows
 * completed (may exceed max_windows). */
uint32_t tae_stub_run(tae_pipeline_t *p, const float *samples, uint32_t n_samples, uint32_t max_windows,
                      tae_stub_record_t *records, int8_t *inputs, int8_t *outputs);

#endif /* TAE_CORE_STUB_H */
