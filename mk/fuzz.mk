# Fuzzing of the serial protocol: libFuzzer + ASan + UBSan over the frame decoder, the host-message
# decoder and the device application (firmware/tests/fuzz_protocol.c), seeded from the shared vectors.
# What it finds is kept in tests/vectors/fuzz_corpus.json; `make test` replays that file, never explores.
FUZZ_SECONDS ?= 60

.PHONY: fuzz
fuzz: $(VENV_STAMP) $(TOOLCHAIN_STAMP) ## fuzz the protocol decoder and device app for FUZZ_SECONDS (default 60)
	$(PY) -m tinyae.tools.testing.fuzz --seconds $(FUZZ_SECONDS)

.PHONY: fuzz-coverage
fuzz-coverage: $(VENV_STAMP) $(TOOLCHAIN_STAMP) ## line/branch coverage of tae_protocol.c, tae_app.c and tae_calib.c by the fuzz corpus (llvm-cov)
	$(PY) -m tinyae.tools.testing.fuzz --coverage

# Property tests in `make test` draw the same cases every run (tests/conftest.py, profile "ci").
# This lane draws new ones, EXPLORE_ROUNDS times over; failures are kept in .hypothesis/ and replayed first.
EXPLORE_ROUNDS ?= 5
.PHONY: explore
explore: $(VENV_STAMP) ## property tests with new random cases (TAE_HYPOTHESIS=explore); add what it finds as @example
	for i in $$(seq $(EXPLORE_ROUNDS)); do \
	  TAE_HYPOTHESIS=explore $(PY) -m pytest -q $$(grep -l '@given' tests/test_*.py) $(PYTEST_ARGS) || exit 1; \
	done
