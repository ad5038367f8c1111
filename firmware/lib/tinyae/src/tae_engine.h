/* tinyae — the inference engine interface. Two implementations: the compiled engine
 * (tae_engine_compiled.c, generated network + kernels) and TFLM (tae_engine_tflm.cpp, boards). */
#ifndef TAE_ENGINE_H
#define TAE_ENGINE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    TAE_ENGINE_OK = 0,
    TAE_ENGINE_ERR_ALLOC = -1,   /* TFLM: arena too small or AllocateTensors failed */
    TAE_ENGINE_ERR_MODEL = -2,   /* model schema/shape does not match model_config.h */
    TAE_ENGINE_ERR_INVOKE = -3,
};

int tae_engine_init(void);
/* in: TAE_INPUT_SIZE int8 values; out: TAE_OUTPUT_SIZE int8 values. */
int tae_engine_invoke(const int8_t *in, int8_t *out);
const char *tae_engine_name(void);
/* The TFLM library the engine links, name and version (train/boards.py KNOWN_LIBRARIES: the host picks its
 * reference by it); "" for the compiled engine. */
const char *tae_engine_library(void);
/* Engine working memory: TFLM arena bytes, or the compiled engine's scratch bytes. */
uint32_t tae_engine_ram_bytes(void);

#if defined(TAE_ENGINE_TFLM)
/* Why the last tae_engine_init() failed, in one sentence (static string), or "ok". */
const char *tae_engine_tflm_reason(void);
#endif

#ifdef __cplusplus
}
#endif

#endif /* TAE_ENGINE_H */
