/* tinyae — compiles the TFLM engine in the TFLM envs only (library.json keeps both engine files out
 * of the library build; the env's define picks one here). */
#if defined(TAE_ENGINE_TFLM)
#include "tae_engine_tflm.cpp"
#endif
