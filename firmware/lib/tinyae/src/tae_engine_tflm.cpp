/* tinyae — the TFLM engine (boards): thin glue around tflite::MicroInterpreter.
 *
 * The model is the generated C array (model_data.h: tae_model_data, alignas(16)), the op resolver
 * holds exactly the model's ops (model_ops.h, generated), the arena is a static alignas(16) array of
 * TAE_ARENA_BYTES (model_config.h: host measurement + margin). No heap: the resolver and the
 * interpreter are constructed with placement new in static storage by tae_engine_init().
 *
 * Written against TFLM's public API as of 2023-2025 (tensorflow/lite/micro/micro_interpreter.h,
 * micro_mutable_op_resolver.h, examples/hello_world): MicroInterpreter(model, resolver, arena,
 * arena_size), AllocateTensors(), input(0)/output(0), Invoke(). TFLM itself is not in this
 * repository: it comes from the PlatformIO library pinned in platformio.ini.
 *
 * Compiled only in the PlatformIO envs that define TAE_ENGINE_TFLM (the *_compiled envs, the QEMU
 * image and the host build never see this file). TFLM's own error messages (MicroPrintf) go to the
 * library's DebugLog, which on Arduino prints to Serial: they appear before the app's BOOT frame
 * (tae_engine_init runs before it), so a plain serial monitor shows the reason. */
#ifdef TAE_ENGINE_TFLM

#include <stdint.h>
#include <string.h>

#include <new>

/* The Arduino TFLM libraries want their main header included first (Arduino-side DebugLog etc.). */
#if defined(TAE_TFLM_LIB_CHIRALE)
#include <Chirale_TensorFlowLite.h>
#elif defined(TAE_TFLM_LIB_ESP32)
#include <TensorFlowLite_ESP32.h>
#endif

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "model_config.h"
#include "model_data.h"
#include "model_ops.h"
#include "tae_engine.h"

namespace {

/* Statuses: TAE_ENGINE_OK or a TAE_ENGINE_ERR_*; this one means "tae_engine_init not called yet". */
const int kNotInitialized = 1;

alignas(16) uint8_t g_arena[TAE_ARENA_BYTES];
alignas(tae_op_resolver_t) uint8_t g_resolver_storage[sizeof(tae_op_resolver_t)];
alignas(tflite::MicroInterpreter) uint8_t g_interpreter_storage[sizeof(tflite::MicroInterpreter)];

tflite::MicroInterpreter *g_interpreter = nullptr;
TfLiteTensor *g_input = nullptr;
TfLiteTensor *g_output = nullptr;
int g_status = kNotInitialized;
const char *g_reason = "tae_engine_init() was not called";

int tae_engine_fail(int status, const char *reason)
{
    g_status = status;
    g_reason = reason;
    return status;
}

/* The tensor must be int8 with exactly `size` elements and the quantization of model_config.h. */
int tae_engine_check_tensor(const TfLiteTensor *t, size_t size, float scale, int zero_point, bool is_input)
{
    if (t == nullptr) {
        return tae_engine_fail(TAE_ENGINE_ERR_MODEL, is_input ? "the model has no input tensor"
                                                              : "the model has no output tensor");
    }
    if (t->type != kTfLiteInt8) {
        return tae_engine_fail(TAE_ENGINE_ERR_MODEL, is_input ? "the model input is not int8 (full-int8 model expected)"
                                                              : "the model output is not int8 (full-int8 model expected)");
    }
    if (t->bytes != size) {
        return tae_engine_fail(TAE_ENGINE_ERR_MODEL,
                               is_input ? "the model input size differs from TAE_INPUT_SIZE: model_config.h belongs to another model"
                                        : "the model output size differs from TAE_OUTPUT_SIZE: model_config.h belongs to another model");
    }
    if (t->params.scale != scale || t->params.zero_point != zero_point) {
        return tae_engine_fail(TAE_ENGINE_ERR_MODEL,
                               is_input ? "the model input quantization differs from model_config.h: regenerate both with make model"
                                        : "the model output quantization differs from model_config.h: regenerate both with make model");
    }
    return TAE_ENGINE_OK;
}

}  // namespace

extern "C" {

/* Why the last tae_engine_init failed (static string), or "ok". Boards print it on a text line. */
const char *tae_engine_tflm_reason(void)
{
    return g_reason;
}

int tae_engine_init(void)
{
    if (g_status != kNotInitialized) {
        return g_status; /* idempotent: the board glue and tae_app_init may both call it */
    }
    const tflite::Model *model = tflite::GetModel(tae_model_data);
    if (model->version() != TFLITE_SCHEMA_VERSION) {
        return tae_engine_fail(TAE_ENGINE_ERR_MODEL,
                               "the model's flatbuffer schema version differs from the TFLM library's");
    }
    tae_op_resolver_t *resolver = new (g_resolver_storage) tae_op_resolver_t();
    if (tae_model_register_ops(*resolver) != nullptr) {
        return tae_engine_fail(TAE_ENGINE_ERR_MODEL, "an op of model_ops.h could not be registered with TFLM");
    }
    g_interpreter = new (g_interpreter_storage) tflite::MicroInterpreter(model, *resolver, g_arena, sizeof g_arena);
    if (g_interpreter->AllocateTensors() != kTfLiteOk) {
        g_interpreter = nullptr;
        return tae_engine_fail(TAE_ENGINE_ERR_ALLOC,
                               "TFLM AllocateTensors failed: the arena (TAE_ARENA_BYTES) is too small for this "
                               "model or an op is missing from model_ops.h; raise the arena margin and run make model");
    }
    if (g_interpreter->inputs_size() != 1 || g_interpreter->outputs_size() != 1) {
        g_interpreter = nullptr;
        return tae_engine_fail(TAE_ENGINE_ERR_MODEL, "the model must have exactly one input and one output tensor");
    }
    g_input = g_interpreter->input(0);
    g_output = g_interpreter->output(0);
    int status = tae_engine_check_tensor(g_input, TAE_INPUT_SIZE, (float)TAE_IN_SCALE, TAE_IN_ZERO_POINT, true);
    if (status == TAE_ENGINE_OK) {
        status = tae_engine_check_tensor(g_output, TAE_OUTPUT_SIZE, (float)TAE_OUT_SCALE, TAE_OUT_ZERO_POINT, false);
    }
    if (status != TAE_ENGINE_OK) {
        g_interpreter = nullptr;
        return status;
    }
    g_status = TAE_ENGINE_OK;
    g_reason = "ok";
    return TAE_ENGINE_OK;
}

int tae_engine_invoke(const int8_t *in, int8_t *out)
{
    if (g_status != TAE_ENGINE_OK) {
        return g_status == kNotInitialized ? TAE_ENGINE_ERR_MODEL : g_status;
    }
    memcpy(g_input->data.int8, in, TAE_INPUT_SIZE);
    if (g_interpreter->Invoke() != kTfLiteOk) {
        return TAE_ENGINE_ERR_INVOKE;
    }
    memcpy(out, g_output->data.int8, TAE_OUTPUT_SIZE);
    return TAE_ENGINE_OK;
}

const char *tae_engine_name(void)
{
    return "tflm";
}

uint32_t tae_engine_ram_bytes(void)
{
    return (uint32_t)TAE_ARENA_BYTES;
}

}  // extern "C"

#endif /* TAE_ENGINE_TFLM */
