# Compiled int8 engine: generator (train/compiled) and its tests.

.PHONY: compiled
compiled: $(MANIFEST) ## regenerate $(MODEL_DIR)/model_compiled.h/.c from model_int8.tflite (compiled engine)
	$(TINYAE) compile $(call shq,$(MODEL_DIR)/model_int8.tflite) $(call shq,$(MODEL_DIR))

.PHONY: test-compiled
test-compiled: $(VENV_STAMP) ## compiled engine tests: bit-exact vs tflite_micro, ASan/UBSan, Cortex-M4 build and QEMU
	$(PY) -m pytest -q tests/test_compiled_bitexact.py tests/test_compiled_generate.py tests/test_compiled_converter.py tests/test_compiled_sanitize.py tests/test_compiled_arm.py
