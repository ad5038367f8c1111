# tinyae — the TFLM libraries the board envs pin, built here for the emulated board and the host:
# the board-library tests (tests/test_boardlib_*.py) and `make demo ENGINE=tflm`.
#
#   build/tflm/<lib>-<arch>/libtflm.a   lib: chirale (nano33ble's Chirale_TensorFLowLite 2.0.0),
#                                        esp32 (esp32dev's TensorFlowLite_ESP32 1.0.0), upstream (tflite-micro)
#                                        arch: cm4 (the Nano 33 BLE's flags) | host (x86-64, for ctypes)
#
# No TFLM source is in this repository. The sources are taken from, in this order:
#   1. PlatformIO's own download for the board env (build/pio/libdeps/<env>/<library>/), present once
#      `make build BOARD=nano33ble` (or esp32dev) has run on a machine with internet access;
#   2. TAE_THIRD_PARTY (default ../shared/third_party), a folder holding exact copies of the pinned
#      versions (Chirale_TensorFLowLite-2.0.0, TensorFlowLite_ESP32-1.0.0, tflite-micro-90b983c).
# The board-library tests read TAE_THIRD_PARTY from the environment too: it is their one path setting.

TAE_THIRD_PARTY ?= ../shared/third_party
export TAE_THIRD_PARTY

tflm_pio_copy = $(patsubst %/library.properties,%,$(wildcard build/pio/libdeps/$(1)/$(2)/library.properties))
TFLM_SRC_chirale  ?= $(or $(call tflm_pio_copy,nano33ble,Chirale_TensorFLowLite),$(TAE_THIRD_PARTY)/Chirale_TensorFLowLite-2.0.0)
TFLM_SRC_esp32    ?= $(or $(call tflm_pio_copy,esp32dev,TensorFlowLite_ESP32),$(TAE_THIRD_PARTY)/TensorFlowLite_ESP32-1.0.0)
TFLM_SRC_upstream ?= $(TAE_THIRD_PARTY)/tflite-micro-90b983c
TFLM_HOW_chirale  := run `make build BOARD=nano33ble` once on a machine with internet access (PlatformIO downloads Chirale_TensorFLowLite 2.0.0), or set TAE_THIRD_PARTY to a folder holding Chirale_TensorFLowLite-2.0.0
TFLM_HOW_esp32    := run `make build BOARD=esp32dev` once on a machine with internet access (PlatformIO downloads TensorFlowLite_ESP32 1.0.0), or set TAE_THIRD_PARTY to a folder holding TensorFlowLite_ESP32-1.0.0
TFLM_HOW_upstream := set TAE_THIRD_PARTY to a folder holding a tflite-micro checkout as tflite-micro-90b983c (with SOURCES.txt)

# build/tflm/<lib>-<arch>/libtflm.a: the sub-make decides what is out of date (FORCE: always asked), by
# content, not by file times (mk/tflm/content-stamps.sh): an object is recompiled when its source's bytes,
# any header under the include roots, the flags, the compilers' versions or library.mk changed, never
# because the sources got new times or another folder (a re-extracted tarball, PlatformIO downloading the
# libdeps again, TAE_THIRD_PARTY pointing at a copy). So the archive, and what links it, is rewritten
# only when its content can change. One build of a library at a time (flock on
# build/tflm/<lib>-<arch>.lock): parallel test workers, `make -j` and a second shell wait for it instead
# of writing the same objects.
build/tflm/%/libtflm.a: FORCE $(TOOLCHAIN_STAMP)
	@lib=$(word 1,$(subst -, ,$*)); src='$(TFLM_SRC_$(word 1,$(subst -, ,$*)))'; \
	if [ ! -d "$$src" ]; then \
	  echo "error: the TFLM sources for $$lib are not at $$src; "'$(TFLM_HOW_$(word 1,$(subst -, ,$*)))' >&2; exit 2; \
	fi
	@mkdir -p $(@D)
	@flock $(@D).lock $(MAKE) --no-print-directory -f mk/tflm/library.mk TFLM_LIB=$(word 1,$(subst -, ,$*)) \
	    TFLM_ARCH=$(word 2,$(subst -, ,$*)) TFLM_SRC='$(TFLM_SRC_$(word 1,$(subst -, ,$*)))' TFLM_OUT=$(@D)

# build/tflm/<lib>-<arch>/flags.txt alone: the flags a user of that build compiles with, without
# building the library (the board lane compares them with the cores' own).
build/tflm/%/flags.txt: FORCE
	@$(MAKE) --no-print-directory -f mk/tflm/library.mk TFLM_LIB=$(word 1,$(subst -, ,$*)) \
	    TFLM_ARCH=$(word 2,$(subst -, ,$*)) TFLM_SRC='$(TFLM_SRC_$(word 1,$(subst -, ,$*)))' TFLM_OUT=$(@D) $@

.PHONY: tflm-libs
tflm-libs: ## build the pinned TFLM libraries for the board-library tests (needs their sources: mk/tflm.mk)
	@$(MAKE) --no-print-directory build/tflm/chirale-cm4/libtflm.a build/tflm/upstream-cm4/libtflm.a \
	    build/tflm/esp32-host/libtflm.a
