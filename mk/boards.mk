# tinyae — PlatformIO boards (platformio.ini): Arduino Nano 33 BLE and ESP32, TFLM or compiled engine.
#
#   make build   BOARD=nano33ble|nano33ble_compiled|esp32dev|esp32dev_compiled [SENSOR=1|synth] [EXTRA_FLAGS="-D ..."]
#   make flash   BOARD=... [PORT=/dev/ttyACM0] [SENSOR=1]
#   make serial-monitor [PORT=/dev/ttyACM0] [BAUD=115200]   the raw serial text (PlatformIO's monitor)
#
# PlatformIO needs its registry the first time it builds an env (platform, toolchain, TFLM library);
# without network access tools/boards/pio.py says so in one sentence and the target fails.
# The boards read the model from build/model (platformio.ini: -I$PROJECT_DIR/build/model).
# With SENSOR=1 the build refuses a sample rate the board cannot keep in sensor mode (the sensor's rate,
# its read time, the window's computation and the serial writes at the hop: tools/budget/sampling.py;
# `tinyae budget sampling --env BOARD` shows the figures).

BOARD ?= nano33ble
PORT  ?=
BAUD  ?= 115200
SENSOR ?=
BOARD_ENVS := nano33ble nano33ble_compiled esp32dev esp32dev_compiled
BOARD_MODEL_DIR := build/model
PIO_RUN := $(TINYAE) pio
BOARD_MODEL_FILES := $(addprefix $(BOARD_MODEL_DIR)/,model_config.h model_data.h model_data.cc model_ops.h model_compiled.h model_compiled.c)
# SENSOR=1: the board's sensor behind sensor mode; SENSOR=synth: the core's synthetic source;
# EXTRA_FLAGS="-D ...": any other build option of platformio.ini's list, added to the env's build_flags.
EXTRA_FLAGS ?=
BOARD_BUILD_FLAGS := $(strip $(if $(SENSOR),-D TAE_BOARD_SENSOR$(if $(filter synth,$(SENSOR)), -D TAE_BOARD_SYNTH)) $(EXTRA_FLAGS))
BOARD_ENV_VARS := $(if $(BOARD_BUILD_FLAGS),PLATFORMIO_BUILD_FLAGS=$(call shq,$(BOARD_BUILD_FLAGS)))

.PHONY: board-check-args
board-check-args:
	@case " $(BOARD_ENVS) " in *" $(BOARD) "*) ;; *) echo "error: BOARD must be one of: $(BOARD_ENVS) (got '$(BOARD)')" >&2; exit 2;; esac
	@if [ "$(abspath $(MODEL_DIR))" != "$(abspath $(BOARD_MODEL_DIR))" ]; then echo "error: the board builds read the model from $(BOARD_MODEL_DIR); run make model without MODEL_DIR (or copy the artifacts there)" >&2; exit 2; fi

.PHONY: board-model
board-model: $(VENV_STAMP) board-check-args $(MANIFEST)
	@for f in $(BOARD_MODEL_FILES); do test -f $$f || { echo "error: $$f is missing; run 'make model' to generate the model artifacts" >&2; exit 2; }; done

.PHONY: build
build: board-model ## build the firmware for a board with PlatformIO (BOARD=nano33ble|nano33ble_compiled|esp32dev|esp32dev_compiled, SENSOR=1|synth)
	$(BOARD_ENV_VARS) $(PIO_RUN) run -e $(BOARD)

.PHONY: flash
flash: board-model ## build and upload to a connected board (BOARD=..., PORT=/dev/ttyACM0)
	$(BOARD_ENV_VARS) $(PIO_RUN) run -e $(BOARD) -t upload $(if $(PORT),--upload-port $(call shq,$(PORT)))

.PHONY: serial-monitor
serial-monitor: $(VENV_STAMP) ## PlatformIO's raw serial monitor on the board (PORT=..., BAUD=115200; `make live-scores` is tinyae's view); Ctrl-C quits
	$(PIO_RUN) device monitor -b $(BAUD) $(if $(PORT),-p $(call shq,$(PORT)))
