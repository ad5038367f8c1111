/* tinyae — compiles the TFLM model array (build/model/model_data.cc, alignas(16)) in the TFLM envs. */
#if defined(TAE_ENGINE_TFLM)
#include "model_data.cc"
#endif
