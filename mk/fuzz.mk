# Fuzzing of the serial protocol: libFuzzer + ASan + UBSan over the frame decoder, the host-message
# decoder and the device application (firmware/tests/fuzz_protocol.c), seeded from the shared vectors.
FUZZ_SECONDS ?= 60

.PHONY: fuzz
fuzz: $(VENV_STAMP) $(TOOLCHAIN_STAMP) ## fuzz the protocol decoder and device app for FUZZ_SECONDS (default 60)
	$(PY) -m tinyae.tools.testing.fuzz --seconds $(FUZZ_SECONDS)

.PHONY: fuzz-coverage
fuzz-coverage: $(VENV_STAMP) $(TOOLCHAIN_STAMP) ## line/branch coverage of tae_protocol.c, tae_app.c and tae_calib.c by the fuzz corpus (llvm-cov)
	$(PY) -m tinyae.tools.testing.fuzz --coverage
