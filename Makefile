# tinyae — every workflow starts here. `make help` lists the targets.
# Targets that need Python depend on the project venv, so nothing has to be run by hand first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_SYS ?= python3
VENV       := .venv
PY         := $(VENV)/bin/python
TINYAE     := $(VENV)/bin/tinyae
VENV_STAMP := $(VENV)/.installed
CONFIG     ?= configs/default.toml
MODEL_DIR  ?= build/model
MANIFEST   := $(MODEL_DIR)/manifest.json
PYTEST_ARGS ?=

# A value that carries a path goes to the shell quoted: $(call shq,$(CONFIG)) (spaces, quotes, $ kept as
# they are: `make model CONFIG="my data/small config.toml"`). A path make itself names as a target or
# prerequisite (MODEL_DIR, EMU_OUT) cannot hold spaces in make; those are refused in one sentence.
shq = '$(subst ','"'"',$(1))'
no_spaces = $(if $(filter-out 1,$(words $(2))),$(error $(1)='$(2)' holds a space, which make cannot use in a file it builds; choose a folder without spaces, e.g. $(1)=build/my-model))
$(call no_spaces,MODEL_DIR,$(MODEL_DIR))

# Debian packages for the emulated board, the sanitizer/fuzz builds and the report's browser test
# (Chromium, driven by Playwright from the dev extras; see README.md).
APT_PACKAGES := gcc-arm-none-eabi binutils-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev qemu-system-arm clang libclang-rt-14-dev chromium fonts-dejavu-core
# The stamp's name carries the package list, so adding a package installs it on machines set up before.
TOOLCHAIN_STAMP := build/.toolchain-$(shell echo '$(APT_PACKAGES)' | cksum | cut -d' ' -f1)

TRAIN_SOURCES := $(shell find train -name '*.py' -o -name '*.j2' 2>/dev/null)

# The packages are installed by uv (pinned here, put into the venv by pip), which downloads and unpacks in
# parallel: the same packages at the same versions (`pip freeze` compared), and in two fresh clones'
# `time CI=true .ci/run` back to back the venv and `make lint` took 77 s instead of pip's 127 s.
# --prerelease allow is pip's --pre (tflite-micro publishes nightlies only); --compile-bytecode writes
# the .pyc files pip wrote, which a shell with PYTHONDONTWRITEBYTECODE set would otherwise never keep (the
# first `import tensorflow` of every command would take 20 s instead of 6 s). uv reads no pip.conf: where
# uv cannot reach the index (a pip mirror set in pip.conf only), pip installs instead.
UV_PIN := uv==0.13.9
VENV_EXTRAS := .[dev,datasets,boards,tensorboard]

$(VENV_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet $(UV_PIN)
	$(PY) -m uv pip install --quiet --python $(PY) --prerelease allow --compile-bytecode -e '$(VENV_EXTRAS)' \
	  || { echo "uv could not install the packages; pip installs them instead"; \
	       $(PY) -m pip install --quiet --pre -e '$(VENV_EXTRAS)'; }
	@touch $@

.PHONY: setup
setup: $(VENV_STAMP) toolchain ## create .venv, install the pinned Python packages and the Debian toolchain

.PHONY: toolchain
toolchain: $(TOOLCHAIN_STAMP) ## install arm-none-eabi-gcc, QEMU and clang from Debian when missing

# A package counts as present only when dpkg says "install ok installed": one removed with its config
# files left (`apt-get remove`) still answers `dpkg -s` with exit 0, and its binaries are gone.
$(TOOLCHAIN_STAMP):
	@mkdir -p $(dir $@)
	@missing=""; for p in $(APT_PACKAGES); do \
	  [ "$$(dpkg-query -W -f='$${Status}' $$p 2>/dev/null)" = "install ok installed" ] || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@touch $@

# A model depends on more than file times make can see: the config's content (whichever CONFIG names),
# the data files it names and the C front-end training runs. `tinyae inputs` compares them
# with what the model directory records it was built from (manifest.json "built_from") and touches
# the stamp when they differ (train/inputs.py); `+` runs the check under `make -n` too.
# make never replaces a model it did not build: a directory built by another command (`tinyae model
# --set ...`, `tinyae search`, changed by `tinyae threshold`) is used as it is while its own inputs are
# unchanged; otherwise, or when CONFIG names another config, `tinyae inputs` stops make with one sentence
# naming the command that rebuilds it. --config-origin tells it whether CONFIG is make's default;
# TAE_SUBMAKE=1 marks tinyae's own sub-makes, which do not repeat the top make's note.
MODEL_STAMP := $(MODEL_DIR)/.inputs-changed

.PHONY: FORCE
FORCE:

$(MODEL_STAMP): FORCE $(VENV_STAMP)
	+@$(TINYAE) inputs --config $(call shq,$(CONFIG)) --config-origin '$(origin CONFIG)' \
	    --model-dir $(call shq,$(MODEL_DIR)) --stamp $(call shq,$@) $(if $(TAE_SUBMAKE),--no-note)

$(MANIFEST): $(MODEL_STAMP) $(VENV_STAMP) $(TRAIN_SOURCES)
	$(TINYAE) model --config $(call shq,$(CONFIG)) --out $(call shq,$(MODEL_DIR)) --from-make

.PHONY: model
model: $(MANIFEST) ## train, quantize, calibrate and export artifacts to build/model/ (CONFIG=..., MODEL_DIR=...)

# The demo's board storage: emptied at every `make demo`, so a calibration record another run left on
# the emulated board (build/emulator/storage, what `tinyae device ... --emulator` uses) never changes it.
DEMO_STORAGE := build/verify/storage

.PHONY: demo
demo: $(MANIFEST) ## the whole job on the embedded data: model -> Cortex-M4 image -> budget gate -> verify on QEMU
	@$(MAKE) --no-print-directory firmware-emu TAE_SUBMAKE=1
	@$(MAKE) --no-print-directory budget TAE_SUBMAKE=1
	@mkdir -p build/verify
	@rm -rf $(DEMO_STORAGE) && echo "demo: the emulated board starts with empty storage ($(DEMO_STORAGE)): the model's own values, no calibration record"
	$(TINYAE) device verify --emulator $(call shq,$(EMU_ELF)) --emulator-storage $(DEMO_STORAGE) \
	    --model-dir $(call shq,$(MODEL_DIR)) \
	    --json build/verify/report.json --markdown build/verify/report.md
	@echo "report: $(MODEL_DIR)/report.html  verification: build/verify/report.md"

.PHONY: lint
lint: $(VENV_STAMP) ## ruff over the Python code, mypy over the package (pyproject.toml [tool.mypy])
	$(VENV)/bin/ruff check tinyae train tools tests
	$(VENV)/bin/ruff format --check tinyae train tools tests
	$(VENV)/bin/mypy

.PHONY: clean
clean: ## remove build/ (artifacts, host and firmware builds)
	rm -rf build

-include mk/*.mk

# Tests run on every core (pytest-xdist): a module and its module fixtures stay on one worker, the longest
# modules start first (tests/schedule.py), models and firmware images are built once per content and
# shared by the workers (tinyae/buildcache.py, tests/modelcache.py). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= auto
TEST_PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder)
# Python's compiled bytecode (and pytest's rewritten test modules) are kept even where
# PYTHONDONTWRITEBYTECODE is set (as on some shared machines), in __pycache__ beside the sources as Python
# does by default (git ignores them): without it every worker rewrites and compiles the ~110 test modules
# again (collecting the fast lane: 5 s of CPU, not 1.7 s). Not PYTHONPYCACHEPREFIX: that ignores the
# bytecode pip installed beside the packages, and a fresh clone then compiled all of TensorFlow, Ray and
# SciPy again (139 MB; 20 s instead of 6 s for the first `import tensorflow`).
TEST_ENV := $(if $(PYTHONDONTWRITEBYTECODE),PYTHONDONTWRITEBYTECODE=)

.PHONY: test
test: $(VENV_STAMP) $(TOOLCHAIN_STAMP) ## run every test CI runs (pytest: Python, host C, emulator, budget, fuzz)
	$(TEST_ENV) $(PY) -m pytest $(TEST_PARALLEL) $(PYTEST_ARGS)

# The edit-run loop: no QEMU or arm-none-eabi-gcc, no training, nothing slow, no board-library sources.
# tests/lanes.py keeps the markers true (from fixtures, and a PATH guard against unmarked emulator use).
FAST_LANE := not emulator and not training and not slow and not board_libs

.PHONY: test-fast
test-fast: $(VENV_STAMP) ## the fast lane: every test that needs no QEMU, no training and nothing slow
	$(TEST_ENV) $(PY) -m pytest -q $(TEST_PARALLEL) -m "$(FAST_LANE)" $(PYTEST_ARGS)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort -u | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'
