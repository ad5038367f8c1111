/* tinyae — the compiled engine: tae_engine.h over the generated network (model_compiled.h/.c). */
#include "tae_engine.h"

#include "model_compiled.h"

#if defined(__has_include)
#if __has_include("model_config.h")
#include "model_config.h"
#endif
#endif

#if defined(TAE_INPUT_SIZE) && (TAE_INPUT_SIZE != TAE_COMPILED_INPUT_SIZE)
#error "model_compiled.h and model_config.h disagree on the input size: regenerate both from one model"
#endif
#if defined(TAE_OUTPUT_SIZE) && (TAE_OUTPUT_SIZE != TAE_COMPILED_OUTPUT_SIZE)
#error "model_compiled.h and model_config.h disagree on the output size: regenerate both from one model"
#endif

int tae_engine_init(void)
{
    return TAE_ENGINE_OK;
}

int tae_engine_invoke(const int8_t *in, int8_t *out)
{
    if (in == 0 || out == 0) {
        return TAE_ENGINE_ERR_INVOKE;
    }
    return tae_compiled_invoke(in, out) == 0 ? TAE_ENGINE_OK : TAE_ENGINE_ERR_INVOKE;
}

const char *tae_engine_name(void)
{
    return "compiled";
}

const char *tae_engine_library(void)
{
    return "";
}

uint32_t tae_engine_ram_bytes(void)
{
    return TAE_COMPILED_SCRATCH_BYTES;
}
