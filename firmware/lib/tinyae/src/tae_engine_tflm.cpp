/* tinyae — the TFLM engine: thin glue around tflite::MicroInterpreter, portable across the TFLM
 * versions the board envs pin (platformio.ini) and upstream.
 *
 * The model is the generated C array (model_data.h: tae_model_data, alignas(16)), the op resolver
 * holds exactly the model's ops (model_ops.h, generated), the arena is a static alignas(16) array of
 * TAE_ARENA_BYTES (model_config.h: host measurement + margin). No heap: the resolvers and the
 * interpreter are constructed with placement new in static storage by tae_engine_init().
 *
 * What differs between the TFLM versions, and how this file copes (no library name is tested):
 * - MicroInterpreter took an ErrorReporter* until 2023 (TensorFlowLite_ESP32 1.0.0 still does):
 *   detected by the presence of micro_error_reporter.h.
 * - per-channel int8 FULLY_CONNECTED weights exist upstream only since 47b545074 (2024-09-27);
 *   older kernels silently use the first channel's scale. The library says which it is through
 *   tflite::OpDataFullyConnected::is_per_channel (detected at compile time). A model generated with
 *   per-channel weights (TAE_WEIGHTS_PER_CHANNEL) does not compile against a library without it, and
 *   tae_engine_init() refuses a flatbuffer whose FULLY_CONNECTED weights carry several scales.
 * - The arena. TAE_ARENA_BYTES may not be below TAE_ARENA_MIN_BYTES, the need measured with TFLM on
 *   the 64-bit host, an upper bound of the 32-bit boards' (a static_assert says so at build time):
 *   below it, TFLM's own failure paths are not safe. An arena too small for an op's persistent data
 *   makes the op's init return nullptr, which the kernels then dereference in Prepare (an abort, or
 *   a write through a null pointer where TFLITE_DCHECK is compiled out, as on Arduino); so every
 *   registration reaches TFLM through a guard whose Prepare reports kTfLiteError instead, and
 *   AllocateTensors fails with the reason kept. A few hundred bytes lower still, Chirale 2.0.0's
 *   MicroAllocator::AllocateTempTfLiteTensor writes through a null pointer when a Prepare's temporary
 *   tensor does not fit (measured on the emulated board: 720-1,100 B arenas for the default model,
 *   whose host measurement is 2,336 B); no glue can intercept that, which is what the static check
 *   is for.
 *
 * TFLM itself is not in this repository: it comes from the PlatformIO library pinned in
 * platformio.ini (boards), or from the path the build names (tests, `make demo ENGINE=tflm`).
 * TFLM's own messages go to the library's DebugLog (Serial on Arduino, the UART on the emulated
 * board); tae_engine_init runs before the app's BOOT frame, so a plain serial monitor shows them. */
#ifdef TAE_ENGINE_TFLM

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <new>

#include "tensorflow/lite/micro/kernels/fully_connected.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tensorflow/lite/schema/schema_utils.h"

#if defined(__has_include)
#if __has_include("tensorflow/lite/micro/micro_error_reporter.h")
#include "tensorflow/lite/micro/micro_error_reporter.h"
#define TAE_TFLM_ERROR_REPORTER_API 1
#endif
#endif

#include "model_config.h"
#include "model_data.h"
#include "model_ops.h"
#include "tae_engine.h"

#if !defined(TAE_TFLM_LIBRARY)
#error "tinyae: this TFLM build does not name its library: define the TAE_TFLM_LIB_* macro of the library it links (platformio.ini build_flags, mk/tflm/library.mk; train/boards.py KNOWN_LIBRARIES), so the host checks the device against that library's arithmetic"
#endif

#if !defined(TAE_WEIGHTS_PER_CHANNEL) || !defined(TAE_ARENA_MIN_BYTES)
#error "model_config.h predates this TFLM glue (no TAE_WEIGHTS_PER_CHANNEL / TAE_ARENA_MIN_BYTES): run make model"
#endif

namespace {

/* ---- what the library can compute ---- */
template <typename T>
char tae_probe_per_channel(decltype(&T::is_per_channel));
template <typename T>
long tae_probe_per_channel(...);
/* True when this TFLM's FULLY_CONNECTED kernels read one weight scale per output channel. */
constexpr bool kLibraryPerChannelFc = sizeof(tae_probe_per_channel<tflite::OpDataFullyConnected>(nullptr)) == 1;

static_assert(!TAE_WEIGHTS_PER_CHANNEL || kLibraryPerChannelFc,
              "tinyae: this model has per-channel FULLY_CONNECTED weights, which this TFLM library computes "
              "with the first channel's scale (wrong results); regenerate it with quantize.weights = "
              "\"auto\" or \"per_tensor\" (make model), or use the compiled engine");

static_assert(TAE_ARENA_BYTES >= TAE_ARENA_MIN_BYTES,
              "tinyae: TAE_ARENA_BYTES is below TAE_ARENA_MIN_BYTES, this model's arena need measured with TFLM "
              "(model_config.h); TFLM cannot fail safely there: regenerate with make model (arena.margin_bytes)");

/* Statuses: TAE_ENGINE_OK or a TAE_ENGINE_ERR_*; this one means "tae_engine_init not called yet". */
const int kNotInitialized = 1;

/* ---- guarded op registrations (see the file comment) ---- */
template <typename T>
T &tae_declval(); /* never defined: only for decltype, like std::declval */
template <typename T>
struct tae_pointee;
template <typename T>
struct tae_pointee<const T *> {
    typedef T type;
};
/* TFLMRegistration (TFLM 2023+) or TfLiteRegistration (before): whatever FindOp hands out. */
typedef tae_pointee<decltype(tae_declval<const tae_op_resolver_t>().FindOp(tflite::BuiltinOperator_ADD))>::type
    tae_registration_t;

const int kMaxGuardedOps = 8;
static_assert(TAE_MODEL_OP_COUNT <= kMaxGuardedOps, "tinyae: more distinct ops than guard slots");

tae_registration_t g_original[kMaxGuardedOps];
tae_registration_t g_guarded[kMaxGuardedOps];
tflite::BuiltinOperator g_guarded_op[kMaxGuardedOps];
int g_guarded_count = 0;
int g_starved_op = -1; /* the builtin code whose init found no arena, or -1 */

template <int I>
TfLiteStatus tae_guard_prepare(TfLiteContext *context, TfLiteNode *node)
{
    if (g_original[I].init != nullptr && node->user_data == nullptr) {
        g_starved_op = static_cast<int>(g_guarded_op[I]);
        return kTfLiteError; /* the op's init could not allocate its data from the arena */
    }
    return g_original[I].prepare != nullptr ? g_original[I].prepare(context, node) : kTfLiteOk;
}

typedef TfLiteStatus (*tae_prepare_fn)(TfLiteContext *, TfLiteNode *);
const tae_prepare_fn kGuardPrepare[kMaxGuardedOps] = {
    tae_guard_prepare<0>, tae_guard_prepare<1>, tae_guard_prepare<2>, tae_guard_prepare<3>,
    tae_guard_prepare<4>, tae_guard_prepare<5>, tae_guard_prepare<6>, tae_guard_prepare<7>,
};

/* Hands TFLM a guarded copy of each registration of the generated resolver. */
class tae_guarded_resolver : public tflite::MicroOpResolver {
  public:
    explicit tae_guarded_resolver(const tae_op_resolver_t &inner) : inner_(inner) {}

    const tae_registration_t *FindOp(tflite::BuiltinOperator op) const override
    {
        const tae_registration_t *found = inner_.FindOp(op);
        if (found == nullptr) {
            return nullptr;
        }
        for (int i = 0; i < g_guarded_count; ++i) {
            if (g_guarded_op[i] == op) {
                return &g_guarded[i];
            }
        }
        if (g_guarded_count >= kMaxGuardedOps) {
            return found; /* unreachable: the resolver holds at most TAE_MODEL_OP_COUNT ops */
        }
        const int i = g_guarded_count++;
        g_original[i] = *found;
        g_guarded[i] = *found;
        g_guarded_op[i] = op;
        g_guarded[i].prepare = kGuardPrepare[i];
        return &g_guarded[i];
    }

    const tae_registration_t *FindOp(const char *op) const override { return inner_.FindOp(op); }

    auto GetOpDataParser(tflite::BuiltinOperator op) const
        -> decltype(tae_declval<const tae_op_resolver_t>().GetOpDataParser(op)) override
    {
        return inner_.GetOpDataParser(op);
    }

  private:
    const tae_op_resolver_t &inner_;
    TF_LITE_REMOVE_VIRTUAL_DELETE
};

/* ---- the engine's static state ---- */
alignas(16) uint8_t g_arena[TAE_ARENA_BYTES];
alignas(tae_op_resolver_t) uint8_t g_resolver_storage[sizeof(tae_op_resolver_t)];
alignas(tae_guarded_resolver) uint8_t g_guard_storage[sizeof(tae_guarded_resolver)];
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
    g_interpreter = nullptr;
    return status;
}

/* True when any FULLY_CONNECTED op of the flatbuffer has a weight tensor with several scales. */
bool tae_model_has_per_channel_fc(const tflite::Model *model)
{
    const auto *codes = model->operator_codes();
    const auto *subgraphs = model->subgraphs();
    if (codes == nullptr || subgraphs == nullptr) {
        return false;
    }
    for (unsigned s = 0; s < subgraphs->size(); ++s) {
        const tflite::SubGraph *graph = subgraphs->Get(s);
        if (graph->operators() == nullptr || graph->tensors() == nullptr) {
            continue;
        }
        for (unsigned o = 0; o < graph->operators()->size(); ++o) {
            const tflite::Operator *op = graph->operators()->Get(o);
            if (op->opcode_index() >= codes->size() ||
                tflite::GetBuiltinCode(codes->Get(op->opcode_index())) != tflite::BuiltinOperator_FULLY_CONNECTED) {
                continue;
            }
            if (op->inputs() == nullptr || op->inputs()->size() < 2) {
                continue;
            }
            const int32_t weights = op->inputs()->Get(1);
            if (weights < 0 || static_cast<unsigned>(weights) >= graph->tensors()->size()) {
                continue;
            }
            const tflite::QuantizationParameters *q = graph->tensors()->Get(weights)->quantization();
            if (q != nullptr && q->scale() != nullptr && q->scale()->size() > 1) {
                return true;
            }
        }
    }
    return false;
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

/* "TFLM ran out of arena setting up <OP>: ..." in a static buffer (no heap, no stdio). */
const char *tae_starved_reason(void)
{
    static char text[192];
    static const char head[] = "TFLM ran out of arena setting up ";
    static const char tail[] = ": TAE_ARENA_BYTES is below this model's need on this target; raise "
                               "arena.margin_bytes and run make model";
    const char *op = tflite::EnumNameBuiltinOperator(static_cast<tflite::BuiltinOperator>(g_starved_op));
    const char *const parts[3] = {head, op != nullptr ? op : "an op", tail};
    size_t n = 0;
    for (const char *part : parts) {
        for (; *part != '\0' && n + 1 < sizeof text; ++part) {
            text[n++] = *part;
        }
    }
    text[n] = '\0';
    return text;
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
    const bool per_channel = tae_model_has_per_channel_fc(model);
    if (per_channel && !kLibraryPerChannelFc) {
        return tae_engine_fail(TAE_ENGINE_ERR_MODEL,
                               "the model has per-channel FULLY_CONNECTED weights, which this TFLM library computes "
                               "with the first channel's scale; regenerate it with quantize.weights = per_tensor");
    }
    if (per_channel != (TAE_WEIGHTS_PER_CHANNEL != 0)) {
        return tae_engine_fail(TAE_ENGINE_ERR_MODEL,
                               "model_data.cc and model_config.h disagree on the weight quantization: they come "
                               "from different models; regenerate both with make model");
    }
    tae_op_resolver_t *resolver = new (g_resolver_storage) tae_op_resolver_t();
    if (tae_model_register_ops(*resolver) != nullptr) {
        return tae_engine_fail(TAE_ENGINE_ERR_MODEL, "an op of model_ops.h could not be registered with TFLM");
    }
    tae_guarded_resolver *guard = new (g_guard_storage) tae_guarded_resolver(*resolver);
#if defined(TAE_TFLM_ERROR_REPORTER_API)
    g_interpreter = new (g_interpreter_storage)
        tflite::MicroInterpreter(model, *guard, g_arena, sizeof g_arena, tflite::GetMicroErrorReporter());
#else
    g_interpreter = new (g_interpreter_storage) tflite::MicroInterpreter(model, *guard, g_arena, sizeof g_arena);
#endif
    if (g_interpreter->AllocateTensors() != kTfLiteOk) {
        return tae_engine_fail(TAE_ENGINE_ERR_ALLOC,
                               g_starved_op >= 0
                                   ? tae_starved_reason()
                                   : "TFLM AllocateTensors failed: the arena (TAE_ARENA_BYTES) is too small for this "
                                     "model or an op is missing from model_ops.h; raise the arena margin and run make model");
    }
    if (g_interpreter->inputs_size() != 1 || g_interpreter->outputs_size() != 1) {
        return tae_engine_fail(TAE_ENGINE_ERR_MODEL, "the model must have exactly one input and one output tensor");
    }
    g_input = g_interpreter->input(0);
    g_output = g_interpreter->output(0);
    int status = tae_engine_check_tensor(g_input, TAE_INPUT_SIZE, (float)TAE_IN_SCALE, TAE_IN_ZERO_POINT, true);
    if (status == TAE_ENGINE_OK) {
        status = tae_engine_check_tensor(g_output, TAE_OUTPUT_SIZE, (float)TAE_OUT_SCALE, TAE_OUT_ZERO_POINT, false);
    }
    if (status != TAE_ENGINE_OK) {
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

const char *tae_engine_library(void)
{
    return TAE_TFLM_LIBRARY;
}

uint32_t tae_engine_ram_bytes(void)
{
    return (uint32_t)TAE_ARENA_BYTES;
}

}  // extern "C"

#endif /* TAE_ENGINE_TFLM */
