// tinyae — the prefix header of the TFLM library builds (mk/tflm/library.mk precompiles it once per
// library build and compiles every C++ object with it). What it includes is what most C++ sources of
// the three pinned libraries include anyway and what dominates their compile time: the flatbuffers
// schema TFLM reads models with.
#include "tensorflow/lite/schema/schema_generated.h"
