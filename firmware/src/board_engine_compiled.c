/* tinyae — compiles the compiled engine (and its generated network, build/model/model_compiled.c)
 * in the *_compiled envs only; library.json keeps the engine files out of the library build. */
#if defined(TAE_ENGINE_COMPILED)
#include "tae_engine_compiled.c"
#include "model_compiled.c"
#else
typedef int tae_board_engine_compiled_unused; /* ISO C: a translation unit must not be empty */
#endif
