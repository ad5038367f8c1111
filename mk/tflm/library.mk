# tinyae — builds one TFLM distribution into a static library, from its own unmodified sources, with
# the flags its board gets. Invoked by mk/tflm.mk (never included: finding the sources walks a large
# tree, which only this build should pay for):
#
#   make -f mk/tflm/library.mk TFLM_LIB=chirale|esp32|upstream TFLM_ARCH=cm4|host TFLM_SRC=<dir> TFLM_OUT=<dir>
#
# TFLM_IDENTITY is the define that names the library to tinyae's glue (train/boards.py KNOWN_LIBRARIES:
# the handshake reports it); it goes into flags.txt only, the library's own objects do not need it.
# TFLM_SRC is the distribution's root: an Arduino library folder (chirale, esp32: everything under
# src/, the library's only include root) or a tflite-micro checkout (upstream: the files its
# SOURCES.txt lists, i.e. TFLM's sources.inc: core + reference kernels). Output: $(TFLM_OUT)/libtflm.a
# and $(TFLM_OUT)/flags.txt (the include and define flags a user of the library compiles with).
#
# What is compiled: the framework (interpreter, allocator, flatbuffer code) and the kernels of the ops
# tinyae's generator can emit (TFLM_KERNEL_STEMS: FULLY_CONNECTED, LOGISTIC, TANH, RESHAPE, QUANTIZE and
# what they share), each file unmodified and with the board's flags. PlatformIO compiles every file of
# the library, but a firmware links only what it references; compiling just these files (a third of
# the library) keeps the lane fast, and the link proves that nothing else is needed. Left out besides:
# what needs an Arduino core or ESP-IDF (chirale's peripherals/ and the Arduino half of
# system_setup.cpp, -DARDUINO_EXCLUDE_CODE, the emulated board supplies DebugLog; esp32's bus/ and
# screen/), the audio front-end (microfrontend, kissfft), AllOpsResolver and the test helpers.

TFLM_MK   := $(lastword $(MAKEFILE_LIST))
TFLM_LIB  ?= chirale
TFLM_ARCH ?= cm4
TFLM_SRC  ?=
TFLM_OUT  ?= build/tflm/$(TFLM_LIB)-$(TFLM_ARCH)

ifeq ($(strip $(TFLM_SRC)),)
  $(error TFLM_SRC is not set: mk/tflm.mk says where the $(TFLM_LIB) sources are)
endif
# One spelling of the sources' folder (symlinks resolved, as Python's Path.resolve): it is in every -I flag
# and so in the build id, and `../shared/third_party` from make beside `/work/shared/third_party` from
# a test would otherwise rebuild the whole library each time the other one asks.
override TFLM_SRC := $(or $(realpath $(TFLM_SRC)),$(abspath $(TFLM_SRC)))

# Kernel files kept (by file-name stem, reference and CMSIS-NN variants alike) and CMSIS-NN folders.
TFLM_KERNEL_STEMS := fully_connected logistic tanh reshape quantize dequantize activation activations \
                     kernel_util micro_tensor_utils
TFLM_KERNEL_KEEP  := $(foreach k,$(TFLM_KERNEL_STEMS),%/kernels/$(k).cpp %/kernels/$(k).cc \
                       %/kernels/$(k)_common.cpp %/kernels/$(k)_common.cc %/kernels/cmsis_nn/$(k).cpp)
TFLM_CMSIS_NN_DIRS := FullyConnectedFunctions NNSupportFunctions ConvolutionFunctions ActivationFunctions
TFLM_DROP := %/all_ops_resolver.cpp %/all_ops_resolver.cc %/test_helpers.cpp %/test_helpers.cc \
             %/test_helper_custom_ops.cpp %/test_helper_custom_ops.cc %/mock_micro_graph.cpp %/mock_micro_graph.cc
# Each source once, in the list's order (upstream's SOURCES.txt names kernels/kernel_util.cc twice; as a
# target twice, make warned on every build that its stamp rule was "given more than once").
tflm_uniq = $(if $(1),$(firstword $(1)) $(call tflm_uniq,$(filter-out $(firstword $(1)),$(1))))
tflm_select = $(call tflm_uniq,$(filter-out $(TFLM_DROP),$(filter-out tensorflow/lite/micro/kernels/% third_party/cmsis_nn/%,$(1)) \
                $(filter $(TFLM_KERNEL_KEEP),$(1)) \
                $(filter $(foreach d,$(TFLM_CMSIS_NN_DIRS),third_party/cmsis_nn/Source/$(d)/%),$(1))))

ifeq ($(TFLM_LIB),upstream)
  TFLM_ROOT     := $(TFLM_SRC)
  TFLM_SOURCES  := $(call tflm_select,$(shell cat $(TFLM_SRC)/SOURCES.txt))
  TFLM_INCLUDES := -I$(TFLM_ROOT) -I$(TFLM_ROOT)/third_party/flatbuffers/include \
                   -I$(TFLM_ROOT)/third_party/gemmlowp -I$(TFLM_ROOT)/third_party/ruy \
                   $(if $(wildcard $(TFLM_ROOT)/signal),,-I$(CURDIR)/mk/tflm/upstream-missing)
  # A bare-metal build without stdio: TFLM's own switch that turns MicroPrintf/DebugLog into nothing.
  TFLM_DEFINES  := -DTF_LITE_STATIC_MEMORY -DTF_LITE_STRIP_ERROR_STRINGS
  TFLM_IDENTITY := -DTAE_TFLM_LIB_UPSTREAM
  TFLM_CXXSTD   := -std=gnu++17
else ifeq ($(TFLM_LIB),chirale)
  TFLM_ROOT     := $(TFLM_SRC)/src
  TFLM_SOURCES  := $(call tflm_select,$(shell cd $(TFLM_ROOT) && find . \( -name '*.cpp' -o -name '*.c' \) \
                     -not -path './peripherals/*' -not -path '*/microfrontend/*' -not -path '*/kissfft/*' \
                     | sed 's|^\./||' | sort))
  TFLM_INCLUDES := -I$(TFLM_ROOT)
  # The Nano 33 BLE core's defines (ArduinoCore-mbed 4.5.0: platform.txt, variants/ARDUINO_NANO33BLE).
  TFLM_DEFINES  := -DARDUINO=10810 -DARDUINO_ARCH_MBED -DARDUINO_ARCH_NRF52840 -DARDUINO_ARDUINO_NANO33BLE \
                   -DARM_MATH_CM4 -DARDUINO_EXCLUDE_CODE
  TFLM_IDENTITY := -DTAE_TFLM_LIB_CHIRALE
  TFLM_CXXSTD   := -std=gnu++14
else ifeq ($(TFLM_LIB),esp32)
  TFLM_ROOT     := $(TFLM_SRC)/src
  TFLM_SOURCES  := $(call tflm_select,$(shell cd $(TFLM_ROOT) && find tensorflow third_party \( -name '*.cpp' -o -name '*.c' \) \
                     -not -path '*/microfrontend/*' -not -path '*/kissfft/*' | sort))
  TFLM_INCLUDES := -I$(TFLM_ROOT)
  # The ESP32 Arduino core's defines (arduino-esp32 2.0.14, which espressif32@6.5.0 brings: its
  # tools/platformio-build-esp32.py; tests/test_boardlib_sketch.py checks them against that file).
  TFLM_DEFINES  := -DARDUINO=10812 -DARDUINO_ARCH_ESP32 -DESP32
  TFLM_IDENTITY := -DTAE_TFLM_LIB_ESP32
  TFLM_CXXSTD   := -std=gnu++11
  # No precompiled header (below): its flatbuffers (flatbuffers.h) defines a variable, the weak
  # flatbuffer_version_string, and GCC (12) emits such a variable restored from a .gch after the ones
  # the source itself defines (here common.h's sigmoid_table_uint16): logistic.cpp.o and tanh.cpp.o came
  # out with the same sections, each with the same bytes, in another order (a linked image could differ).
  TFLM_PCH_DEFAULT := 0
else
  $(error TFLM_LIB must be chirale, esp32 or upstream (got '$(TFLM_LIB)'))
endif

ifeq ($(TFLM_ARCH),cm4)
  TFLM_CC  := arm-none-eabi-gcc
  TFLM_CXX := arm-none-eabi-g++
  TFLM_AR  := arm-none-eabi-ar
  # Code generation of the Nano 33 BLE (ArduinoCore-mbed 4.5.0 variants/ARDUINO_NANO33BLE/cxxflags.txt;
  # tests/test_boardlib_sketch.py checks this list against that file) plus the env's own build_flags.
  TFLM_ARCH_FLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=softfp -mfpu=fpv4-sp-d16 -Os -fdata-sections \
                     -ffunction-sections -fno-exceptions -fomit-frame-pointer -funsigned-char \
                     -fmessage-length=0 -ffp-contract=off -fno-fast-math
  TFLM_CXX_ONLY   := -fno-rtti
else ifeq ($(TFLM_ARCH),host)
  TFLM_CC  := gcc
  TFLM_CXX := g++
  TFLM_AR  := ar
  TFLM_ARCH_FLAGS := -O2 -fPIC -fdata-sections -ffunction-sections -ffp-contract=off -fno-fast-math
  TFLM_CXX_ONLY   := -fno-rtti
else
  $(error TFLM_ARCH must be cm4 or host (got '$(TFLM_ARCH)'))
endif

# A precompiled prefix header for the C++ sources. Most of them parse the flatbuffers schema
# (tensorflow/lite/schema/schema_generated.h, 20,000 lines of templates), which is most of their compile
# time. mk/tflm/prefix.h (ours) includes it; mk/tflm/pch-compile.sh compiles it once per library build,
# with exactly the C++ flags of the objects, into $(TFLM_PCH_DIR)/tae_tflm_prefix.h.gch and compiles
# each C++ source that includes every header the prefix pulls in with `-include` of it (a source that
# includes fewer, e.g. micro_log.cpp, is compiled without: loading the .gch costs more than it saves).
# The tae_tflm_prefix.h beside the .gch is a stub holding an #error: GCC reads it when it rejects the
# .gch (other flags, another compiler: the library's -w would hide -Winvalid-pch), so a rejected PCH
# fails the build, with GCC's reason. The objects are byte-identical to the ones compiled without it
# (tests/test_tflm_pch.py recompiles representative ones of the real libraries without it).
# TFLM_PCH=0 compiles without it (the default for the esp32 library: see above), TFLM_PCH=1 with it.
TFLM_PCH        ?= $(or $(TFLM_PCH_DEFAULT),1)
ifneq ($(filter-out 0 1,$(TFLM_PCH))$(words $(TFLM_PCH)),1)
  $(error TFLM_PCH must be 0 or 1 (got '$(TFLM_PCH)'))
endif
TFLM_PCH_ON     := $(filter 1,$(TFLM_PCH))
TFLM_PREFIX     := $(dir $(TFLM_MK))prefix.h
TFLM_PCH_SCRIPT := $(dir $(TFLM_MK))pch-compile.sh
TFLM_PCH_DIR    := $(TFLM_OUT)/pch
TFLM_PCH_H      := $(TFLM_PCH_DIR)/tae_tflm_prefix.h
TFLM_PCH_DEP    := $(if $(TFLM_PCH_ON),$(TFLM_PCH_H).gch)

TFLM_ARCHIVE := $(TFLM_OUT)/libtflm.a
TFLM_OBJS    := $(addprefix $(TFLM_OUT)/obj/,$(addsuffix .o,$(TFLM_SOURCES)))
# Library code is not ours: compiled without -Werror, warnings silenced (-w) so the log shows ours. The
# prefix maps keep the sources' folder out of the objects (__FILE__ in the library's asserts): the same
# sources at another path give the same bytes, so the build id below may leave that path out.
TFLM_CFLAGS  := $(TFLM_ARCH_FLAGS) $(TFLM_DEFINES) $(TFLM_INCLUDES) -w
TFLM_PATH_MAP := -ffile-prefix-map=$(TFLM_SRC)=tflm-$(TFLM_LIB) -ffile-prefix-map=$(CURDIR)=tinyae

.PHONY: all FORCE
all: $(TFLM_ARCHIVE) $(TFLM_OUT)/flags.txt

# Keyed by content, not by file times (mk/tflm/content-stamps.sh): each object depends on its source's
# content stamp, on the headers' stamp and on the build id, stamps that are rewritten only when their
# content changes. So the same sources with new times (a re-extracted tarball, PlatformIO downloading
# the libdeps again, a copy elsewhere) compile nothing; an edited source recompiles its object, an edited,
# added or removed header, other flags, another compiler or an edit of this file (but for its comments)
# recompile them all. The build id: the compilers' versions, every flag, with the sources' folder and this
# checkout written as <src> and <repo>, and whether the PCH is used (then with the content of the prefix
# header and of pch-compile.sh; the .gch is rebuilt with the objects, from the same stamps).
TFLM_STAMPS := $(TFLM_OUT)/stamps
TFLM_HASH   := \#
TFLM_BUILD_ID := $(strip $(shell $(TFLM_CXX) --version | head -1) $(shell $(TFLM_CC) --version | head -1) \
                   $(TFLM_CXXSTD) $(TFLM_CXX_ONLY) -std=gnu11 \
                   $(subst $(CURDIR),<repo>,$(subst $(TFLM_SRC),<src>,$(TFLM_CFLAGS) $(TFLM_PATH_MAP))) \
                   library.mk:$(firstword $(shell sed '/^[[:space:]]*$(TFLM_HASH)/d' $(TFLM_MK) | sha256sum)) \
                   $(if $(TFLM_PCH_ON),pch:$(firstword $(shell cat $(TFLM_PREFIX) $(TFLM_PCH_SCRIPT) | sha256sum)),pch:off))
# Include roots hashed for the headers' stamp: the library's root (every other -I of it is inside) and
# any root outside it (upstream's mk/tflm/upstream-missing), each by a label, not its path.
TFLM_HEADER_ROOTS := src=$(TFLM_ROOT) $(foreach d,$(filter-out $(TFLM_ROOT) $(TFLM_ROOT)/%,\
                       $(patsubst -I%,%,$(filter -I%,$(TFLM_INCLUDES)))),repo/$(notdir $(d))=$(d))

$(TFLM_STAMPS)/.checked: FORCE
	@sh $(dir $(TFLM_MK))content-stamps.sh $(TFLM_STAMPS) $(TFLM_ROOT) '$(TFLM_BUILD_ID)' \
	    '$(TFLM_HEADER_ROOTS)' $(TFLM_SOURCES)
# The stamps are written by that one run: make reads their times after it (an empty recipe).
TFLM_SUMS := $(addprefix $(TFLM_STAMPS)/src/,$(addsuffix .sum,$(TFLM_SOURCES)))
TFLM_COMMON_STAMPS := $(TFLM_STAMPS)/headers.sum $(TFLM_STAMPS)/build-id.txt
$(TFLM_SUMS) $(TFLM_COMMON_STAMPS) $(TFLM_STAMPS)/sources.txt: $(TFLM_STAMPS)/.checked ;

TFLM_CXX_CMD = $(TFLM_CXX) $(TFLM_CXXSTD) $(TFLM_CXX_ONLY) $(TFLM_CFLAGS) $(TFLM_PATH_MAP)
TFLM_PCH_SH := sh $(TFLM_PCH_SCRIPT)
TFLM_PCH_FOLDERS := src=$(TFLM_SRC) repo=$(CURDIR)

$(TFLM_PCH_H).gch: $(TFLM_COMMON_STAMPS)
	@$(TFLM_PCH_SH) pch $(TFLM_PCH_H) '$(TFLM_PCH_FOLDERS)' $(TFLM_PREFIX) $(TFLM_CXX_CMD)

$(TFLM_OUT)/obj/%.cpp.o: $(TFLM_STAMPS)/src/%.cpp.sum $(TFLM_COMMON_STAMPS) $(TFLM_PCH_DEP)
	@mkdir -p $(dir $@)
	@$(if $(TFLM_PCH_ON),$(TFLM_PCH_SH) cc $(TFLM_PCH_H) '$(TFLM_PCH_FOLDERS)' $(TFLM_ROOT)/$*.cpp $@ $(TFLM_CXX_CMD),rm -f $@.with-pch && $(TFLM_CXX_CMD) -c $(TFLM_ROOT)/$*.cpp -o $@)

$(TFLM_OUT)/obj/%.cc.o: $(TFLM_STAMPS)/src/%.cc.sum $(TFLM_COMMON_STAMPS) $(TFLM_PCH_DEP)
	@mkdir -p $(dir $@)
	@$(if $(TFLM_PCH_ON),$(TFLM_PCH_SH) cc $(TFLM_PCH_H) '$(TFLM_PCH_FOLDERS)' $(TFLM_ROOT)/$*.cc $@ $(TFLM_CXX_CMD),rm -f $@.with-pch && $(TFLM_CXX_CMD) -c $(TFLM_ROOT)/$*.cc -o $@)

$(TFLM_OUT)/obj/%.c.o: $(TFLM_STAMPS)/src/%.c.sum $(TFLM_COMMON_STAMPS)
	@mkdir -p $(dir $@)
	@$(TFLM_CC) -std=gnu11 $(TFLM_CFLAGS) $(TFLM_PATH_MAP) -c $(TFLM_ROOT)/$*.c -o $@

# Also rewritten when a source left the list (SOURCES.txt, a file removed): no object of it stays inside.
# The objects from $^.
$(TFLM_ARCHIVE): $(TFLM_OBJS) $(TFLM_STAMPS)/sources.txt
	@rm -f $@
	@$(TFLM_AR) rcs $@ $(filter-out $(TFLM_STAMPS)/sources.txt,$^)
	@echo "TFLM $(TFLM_LIB) for $(TFLM_ARCH): $(words $(filter-out $(TFLM_STAMPS)/sources.txt,$^)) sources -> $@"

# flags.txt names the sources' folder (a user of the build compiles against its headers): rewritten
# whenever that text changes (another TAE_THIRD_PARTY, another library.mk), and only then.
TFLM_USER_FLAGS := $(TFLM_CXXSTD) $(TFLM_CXX_ONLY) $(TFLM_ARCH_FLAGS) $(TFLM_DEFINES) $(TFLM_IDENTITY) \
                   $(patsubst -I%,-isystem %,$(TFLM_INCLUDES))
$(TFLM_OUT)/flags.txt: FORCE
	@mkdir -p $(dir $@) && printf '%s\n' '$(TFLM_USER_FLAGS)' > $@.$$$$.tmp && \
	  if cmp -s $@.$$$$.tmp $@; then rm -f $@.$$$$.tmp; else mv -f $@.$$$$.tmp $@; fi
