// tinyae — the prefix header of the TFLM library builds: mk/tflm/pch-compile.sh precompiles it once per
// library build, with the flags of its C++ objects, and compiles each C++ source that includes every
// library header this one pulls in with it (so it adds nothing to what the source parses; only the
// order changes, and the objects are byte-identical: tests/test_tflm_pch.py). It holds what dominates
// their compile time: the flatbuffers schema TFLM reads models with (schema_generated.h and the
// flatbuffers headers under it, 2.4 s of the 2.5 s a typical kernel takes on its own at -Os for the
// Cortex-M4). A header added here recompiles every library (the build id holds this file's content)
// and narrows the sources it is used for.
#include "tensorflow/lite/schema/schema_generated.h"
