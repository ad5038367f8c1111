# tinyae — the emulated board: a bare-metal Cortex-M4F image for QEMU mps2-an386 and its runner.
#
#   make firmware-emu        the real image (portable core + compiled engine + model) -> build/firmware/mps2_an386/
#   make firmware-emu ENGINE=tflm [TFLM_LIB=chirale|upstream]
#                            the same core with the TFLM engine, built from the library the nano33ble env
#                            pins (chirale, its CMSIS-NN kernels) or upstream TFLM (reference kernels), with
#                            the Nano 33 BLE's code generation flags (mk/tflm.mk says where the sources come from)
#   make emulate             run it in QEMU; prints socket://127.0.0.1:PORT for the host tool
#   make firmware-emu-fault  a test image that faults right after its banner (fault-handler test)
#
# Variables (for tests and experiments; each variant builds into its own directory):
#   EMU_ENGINE=compiled|tflm  the inference engine (default: ENGINE, else compiled)
#   EMU_APP=core|stub|calib   core: tae_app (default); stub: UART echo; calib: instruction-count calibration
#   EMU_FAULT=1|2|3           fault after the banner: undefined instruction | divide by zero | invalid state
#   EMU_BALLAST_RAM=<bytes>   add a static RAM array (the link must fail when it does not fit)
#   EMU_BALLAST_FLASH=<bytes> add a const flash array
#   EMU_CALIB_AT_BOOT=1       without a stored calibration record, calibrate from the sensor at boot
#   EMU_STORE_FAULT=1         stop QEMU inside a calibration record write (between write and rename)
#   EMU_SENSOR=paced          the synthetic sensor paced like a board's: slots the loop is late for are
#                             skipped, not delivered late (synth_source.c)
#   EMU_SENSOR_STALL=<K>      the loop stalls 2.5 sample periods after every K-th sample (a slow source:
#                             the sampling-honesty tests)
#   EMU_SPIN_POLLS=<N>        idle polls of the main loop before it sleeps (default main.c's; 0: sleep as
#                             soon as the app is idle, a wake-up per received byte: the timer tests)
#   EMU_OUT=<dir>             output directory

EMU_CC      ?= arm-none-eabi-gcc
EMU_CXX     ?= arm-none-eabi-g++
ENGINE      ?= compiled
EMU_ENGINE  ?= $(ENGINE)
TFLM_LIB    ?= chirale
EMU_OBJCOPY ?= arm-none-eabi-objcopy
EMU_SIZE    ?= arm-none-eabi-size
EMU_APP     ?= core
EMU_FAULT   ?=
EMU_BALLAST_RAM   ?= 0
EMU_BALLAST_FLASH ?= 0
EMU_CALIB_AT_BOOT ?=
EMU_STORE_FAULT   ?=
EMU_SENSOR        ?=
EMU_SENSOR_STALL  ?=
EMU_SPIN_POLLS    ?=

EMU_TARGET_DIR := firmware/targets/mps2_an386
EMU_CORE_DIR   := firmware/lib/tinyae/src
EMU_VARIANT    := $(EMU_APP)$(if $(filter tflm,$(EMU_ENGINE)),-tflm-$(TFLM_LIB))$(if $(EMU_FAULT),-fault$(EMU_FAULT))$(if $(filter-out 0,$(EMU_BALLAST_RAM)),-ram$(EMU_BALLAST_RAM))$(if $(filter-out 0,$(EMU_BALLAST_FLASH)),-flash$(EMU_BALLAST_FLASH))$(if $(EMU_CALIB_AT_BOOT),-calibboot)$(if $(EMU_STORE_FAULT),-storefault)$(if $(filter paced,$(EMU_SENSOR)),-paced)$(if $(EMU_SENSOR_STALL),-stall$(EMU_SENSOR_STALL))$(if $(EMU_SPIN_POLLS),-spin$(EMU_SPIN_POLLS))
EMU_OUT        ?= build/firmware/mps2_an386$(if $(filter-out core,$(EMU_VARIANT)),-$(EMU_VARIANT))
$(call no_spaces,EMU_OUT,$(EMU_OUT))
EMU_ELF        := $(EMU_OUT)/tinyae.elf
EMU_LDSCRIPT   := $(EMU_TARGET_DIR)/mps2_an386.ld

EMU_TARGET_SRCS := $(addprefix $(EMU_TARGET_DIR)/,startup.c uart.c timer.c fault.c semihost.c port.c main.c)
EMU_CXX_SRCS :=
EMU_TFLM_ARCHIVE :=
EMU_FLOAT_ABI := hard
ifeq ($(EMU_APP),core)
  ifneq ($(filter-out paced,$(EMU_SENSOR)),)
    $(error EMU_SENSOR must be empty or paced (got '$(EMU_SENSOR)'))
  endif
  EMU_APP_DEFS := -DTAE_EMU_APP_CORE \
                  $(if $(EMU_CALIB_AT_BOOT),-DTAE_CALIB_AT_BOOT) $(if $(EMU_STORE_FAULT),-DTAE_EMU_STORE_FAULT) \
                  $(if $(filter paced,$(EMU_SENSOR)),-DTAE_EMU_SENSOR_PACED) \
                  $(if $(EMU_SENSOR_STALL),-DTAE_EMU_SENSOR_STALL=$(EMU_SENSOR_STALL))
  EMU_APP_DEPS := $(MANIFEST)
  ifeq ($(EMU_ENGINE),compiled)
    # The portable core (every C file of the library), the compiled engine's generated network and the
    # synthetic sensor source. tae_engine_tflm.cpp is C++, so the *.c wildcard skips it.
    EMU_APP_SRCS := $(EMU_TARGET_DIR)/synth_source.c $(EMU_TARGET_DIR)/store.c $(wildcard $(EMU_CORE_DIR)/*.c) \
                    $(MODEL_DIR)/model_compiled.c
  else ifeq ($(EMU_ENGINE),tflm)
    # The same core with the TFLM glue, the model's C array and the TFLM library, all with the board's
    # float ABI (softfp: the Nano 33 BLE core's) so that the library is compiled exactly as it is there.
    ifeq ($(filter chirale upstream,$(TFLM_LIB)),)
      $(error TFLM_LIB must be chirale or upstream for the emulated board (got '$(TFLM_LIB)'))
    endif
    EMU_FLOAT_ABI := softfp
    EMU_TFLM_DIR := build/tflm/$(TFLM_LIB)-cm4
    EMU_TFLM_ARCHIVE := $(EMU_TFLM_DIR)/libtflm.a
    EMU_APP_SRCS := $(EMU_TARGET_DIR)/synth_source.c $(EMU_TARGET_DIR)/store.c \
                    $(filter-out %/tae_engine_compiled.c,$(wildcard $(EMU_CORE_DIR)/*.c))
    EMU_CXX_SRCS := $(EMU_CORE_DIR)/tae_engine_tflm.cpp $(MODEL_DIR)/model_data.cc $(EMU_TARGET_DIR)/tflm_support.cpp
    EMU_APP_DEFS += -DTAE_ENGINE_TFLM $(if $(filter chirale,$(TFLM_LIB)),-DTAE_EMU_TFLM_DEBUGLOG)
  else
    $(error EMU_ENGINE (or ENGINE) must be compiled or tflm (got '$(EMU_ENGINE)'))
  endif
else ifeq ($(EMU_APP),stub)
  EMU_APP_SRCS := $(EMU_TARGET_DIR)/stub_app.c
else ifeq ($(EMU_APP),calib)
  EMU_APP_SRCS := $(EMU_TARGET_DIR)/calib_app.c
else
  $(error EMU_APP must be core, stub or calib (got '$(EMU_APP)'))
endif

EMU_ARCH    := -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=$(EMU_FLOAT_ABI)
EMU_CFLAGS  := $(EMU_ARCH) -std=c99 -Os -g -ffunction-sections -fdata-sections -fno-common \
               -Wall -Wextra -Werror -Wshadow -Wdouble-promotion -ffp-contract=off -fno-fast-math \
               -I$(EMU_TARGET_DIR) -I$(EMU_CORE_DIR) -I$(MODEL_DIR) $(EMU_APP_DEFS) \
               $(if $(EMU_FAULT),-DTAE_EMU_FAULT=$(EMU_FAULT)) \
               -DTAE_EMU_BALLAST_RAM=$(EMU_BALLAST_RAM) -DTAE_EMU_BALLAST_FLASH=$(EMU_BALLAST_FLASH) \
               $(if $(EMU_SPIN_POLLS),-DTAE_EMU_SPIN_POLLS=$(EMU_SPIN_POLLS)u)
# No crt0 (startup.c is the reset handler), newlib-nano for memcpy/memset/libm, no libnosys:
# nothing provides _sbrk, so anything that pulls malloc or stdio fails the link (there is no heap).
EMU_LDFLAGS := $(EMU_ARCH) -T $(EMU_LDSCRIPT) -nostartfiles --specs=nano.specs -Wl,--gc-sections \
               -Wl,-Map=$(EMU_OUT)/tinyae.map -Wl,--no-warn-rwx-segments
EMU_LDLIBS  := -Wl,--start-group -lc_nano -lm -lgcc -Wl,--end-group
EMU_HEADERS := $(wildcard $(EMU_TARGET_DIR)/*.h $(EMU_CORE_DIR)/*.h)

# C++ of the TFLM image (glue, model array, target support): the board's C++ dialect and code generation,
# TFLM's headers as system headers (its own warnings are not ours), -Werror for the project's files.
EMU_CXX_OBJS  := $(addprefix $(EMU_OUT)/cxx/,$(addsuffix .o,$(notdir $(EMU_CXX_SRCS))))
EMU_CXXFLAGS   = $(EMU_ARCH) -Os -g -ffunction-sections -fdata-sections -fno-exceptions -fno-rtti -funsigned-char \
                 -Wall -Wextra -Werror -Wshadow -ffp-contract=off -fno-fast-math $$(cat $(EMU_TFLM_DIR)/flags.txt) \
                 -I$(EMU_TARGET_DIR) -I$(EMU_CORE_DIR) -I$(MODEL_DIR) $(EMU_APP_DEFS)

# Rebuild when the flags change (switching EMU_* in the same EMU_OUT). The file is written when a build
# runs, never when make only reads this file (make help must not write).
EMU_FLAGS_FILE := $(EMU_OUT)/flags.txt
EMU_FLAGS_TEXT := $(strip $(EMU_CC) $(EMU_CFLAGS) $(EMU_LDFLAGS) $(EMU_LDLIBS) $(EMU_TARGET_SRCS) $(EMU_APP_SRCS) \
                  $(EMU_CXX_SRCS) $(EMU_TFLM_ARCHIVE))
EMU_FLAGS_OLD   = $(strip $(file <$(EMU_FLAGS_FILE)))

.PHONY: FORCE
$(EMU_FLAGS_FILE): FORCE
	@: $(shell mkdir -p $(EMU_OUT))$(if $(subst $(EMU_FLAGS_TEXT),,$(EMU_FLAGS_OLD))$(subst $(EMU_FLAGS_OLD),,$(EMU_FLAGS_TEXT)),$(file >$@,$(EMU_FLAGS_TEXT)))

$(EMU_OUT)/cxx/%.cpp.o: $(EMU_CORE_DIR)/%.cpp $(EMU_TFLM_ARCHIVE) $(EMU_APP_DEPS) $(EMU_HEADERS) $(EMU_FLAGS_FILE)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) -c $< -o $@
$(EMU_OUT)/cxx/%.cpp.o: $(EMU_TARGET_DIR)/%.cpp $(EMU_TFLM_ARCHIVE) $(EMU_HEADERS) $(EMU_FLAGS_FILE)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) -c $< -o $@
$(EMU_OUT)/cxx/%.cc.o: $(MODEL_DIR)/%.cc $(EMU_TFLM_ARCHIVE) $(EMU_APP_DEPS) $(EMU_FLAGS_FILE)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) -c $< -o $@

$(EMU_ELF): $(TOOLCHAIN_STAMP) $(EMU_APP_DEPS) $(EMU_TARGET_SRCS) $(EMU_APP_SRCS) $(EMU_CXX_OBJS) $(EMU_TFLM_ARCHIVE) \
            $(EMU_HEADERS) $(EMU_LDSCRIPT) $(EMU_FLAGS_FILE) mk/firmware-emu.mk
	@mkdir -p $(EMU_OUT)
	$(EMU_CC) $(EMU_CFLAGS) $(EMU_LDFLAGS) -o $@ $(EMU_TARGET_SRCS) $(EMU_APP_SRCS) $(EMU_CXX_OBJS) \
	    $(EMU_TFLM_ARCHIVE) $(EMU_LDLIBS)
	$(EMU_OBJCOPY) -O binary $@ $(EMU_OUT)/tinyae.bin
	@$(EMU_SIZE) $@

# The compiled engine's network is written by `make model` together with the manifest.
$(MODEL_DIR)/model_compiled.c: $(MANIFEST)
	@test -f $@ || { echo "error: $@ is missing; run 'make model' (it writes the compiled engine's network)" >&2; exit 1; }

.PHONY: firmware-emu
firmware-emu: $(EMU_ELF) ## build the Cortex-M4 image for QEMU mps2-an386 (build/firmware/mps2_an386/tinyae.elf)

.PHONY: firmware-emu-fault
firmware-emu-fault: ## build a test image that faults after its banner (EMU_FAULT=1|2|3, default 1)
	$(MAKE) --no-print-directory firmware-emu TAE_SUBMAKE=1 EMU_APP=stub EMU_FAULT=$(or $(EMU_FAULT),1)

.PHONY: emulate
emulate: $(EMU_ELF) $(VENV_STAMP) ## run the image in QEMU; prints the socket:// URL for the host tool; Ctrl-C stops it
	$(TINYAE) emulate --elf $(call shq,$(EMU_ELF))
