# tinyae — the host CLI against a device (`tinyae device ...`; tools/commands/).
#
#   make verify [PORT=/dev/ttyACM0|socket://127.0.0.1:PORT]   without PORT: starts QEMU with the emulated image
#   make stream PORT=... [CSV=data.csv] [OUT=results.csv]      without CSV: the model's test split
#   make device-info PORT=...
#   make record PORT=... OUT=capture.csv [SAMPLES=5000] [LABEL=0]
#   make live-scores PORT=... [SECONDS=30]                     sensor mode, live scores vs threshold (Ctrl-C stops)
#
# PORT is a device path or any pyserial URL; BAUD defaults to 115200 (boards.mk). Without PORT the
# targets build build/firmware/mps2_an386/tinyae.elf for MODEL_DIR and run it under QEMU.

CSV      ?=
OUT      ?=
SAMPLES  ?= 5000
LABEL    ?=
SECONDS  ?=
HOST_REPORT_DIR := build/verify
HOST_CLI := $(TINYAE) device
HOST_EMU_ELF  = $(EMU_ELF)
HOST_DEVICE = $(if $(PORT),--port $(call shq,$(PORT)) --baud $(BAUD),--emulator $(call shq,$(HOST_EMU_ELF))) \
              --model-dir $(call shq,$(MODEL_DIR))
HOST_EMU_DEP = $(if $(PORT),,firmware-emu)

.PHONY: verify
verify: $(VENV_STAMP) $(MANIFEST) $(HOST_EMU_DEP) ## verify the device against the host reference (PORT=...; without PORT it starts the emulator)
	@mkdir -p $(HOST_REPORT_DIR)
	$(HOST_CLI) verify $(HOST_DEVICE) $(if $(CSV),--csv $(call shq,$(CSV))) --json $(HOST_REPORT_DIR)/verify.json --markdown $(HOST_REPORT_DIR)/verify.md

.PHONY: stream
stream: $(VENV_STAMP) $(HOST_EMU_DEP) ## stream a CSV (CSV=..., default the test split) to the device (PORT=..., OUT=results.csv)
	$(HOST_CLI) stream $(HOST_DEVICE) $(if $(CSV),--csv $(call shq,$(CSV))) $(if $(OUT),--out $(call shq,$(OUT)))

.PHONY: device-info
device-info: $(VENV_STAMP) $(HOST_EMU_DEP) ## show the device's handshake and whether it runs MODEL_DIR's model (PORT=...)
	$(HOST_CLI) info $(HOST_DEVICE)

.PHONY: record
record: $(VENV_STAMP) $(HOST_EMU_DEP) ## capture sensor samples to a training CSV (PORT=..., OUT=capture.csv, SAMPLES=5000, LABEL=0)
	@test -n "$(OUT)" || { echo "error: say where to write the capture: make record OUT=capture.csv" >&2; exit 2; }
	$(HOST_CLI) record $(HOST_DEVICE) --out $(call shq,$(OUT)) --samples $(SAMPLES) $(if $(LABEL),--label $(call shq,$(LABEL)))

.PHONY: live-scores
live-scores: $(VENV_STAMP) $(HOST_EMU_DEP) ## sensor mode: tinyae's live view of scores vs threshold (PORT=..., SECONDS=...); Ctrl-C stops
	$(HOST_CLI) monitor $(HOST_DEVICE) $(if $(SECONDS),--duration $(SECONDS))
