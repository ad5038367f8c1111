# tinyae — the flash/SRAM budget gate (tools/budget, budgets.toml).
#
#   make budget                      check the emulated image and every built board env against budgets.toml:
#                                    flash and SRAM, and the time per window of MODEL_DIR's model against the
#                                    target's window_time share of the hop period (an estimate from its code
#                                    traced on the emulated Cortex-M4F; tools/budget/realtime.py)
#   make budget BUDGET_BASELINE=f    ... and show what changed against an earlier JSON (e.g. from main)
#   make budget-estimate BUDGET_TARGET=nano33ble BUDGET_ENGINE=tflm   estimate from build/model/manifest.json alone
#
# JSON for CI: build/budget/<target or env>.json.

BUDGET_DIR      ?= build/budget
BUDGET_BASELINE ?=
BUDGET_TOP      ?= 10
# the image firmware-emu builds (its EMU_OUT; mk/firmware-emu.mk is read later, so expanded at use)
BUDGET_EMU_ELF   = $(EMU_ELF)
BUDGET_TARGET   ?= mps2_an386
BUDGET_ENGINE   ?= compiled

.PHONY: budget
budget: firmware-emu $(VENV_STAMP) ## check the emulated image (and any built board env) against budgets.toml
	@mkdir -p $(call shq,$(BUDGET_DIR))
	@status=0; \
	$(TINYAE) budget check $(call shq,$(BUDGET_EMU_ELF)) --target mps2_an386 --top $(BUDGET_TOP) \
	  --model-dir $(call shq,$(MODEL_DIR)) --json $(call shq,$(BUDGET_DIR)/mps2_an386.json) \
	  $(if $(BUDGET_BASELINE),--baseline $(call shq,$(BUDGET_BASELINE))) || status=1; \
	for elf in .pio/build/*/firmware.elf; do \
	  [ -f "$$elf" ] || continue; env=$$(basename $$(dirname "$$elf")); \
	  $(TINYAE) budget check --env "$$env" --top $(BUDGET_TOP) --model-dir $(call shq,$(MODEL_DIR)) \
	    --json $(call shq,$(BUDGET_DIR))/"$$env".json || status=1; \
	done; \
	exit $$status

.PHONY: budget-estimate
budget-estimate: $(MANIFEST) $(VENV_STAMP) ## estimate flash/RAM from the manifest alone (BUDGET_TARGET=..., BUDGET_ENGINE=tflm|compiled)
	$(TINYAE) budget estimate --manifest $(call shq,$(MANIFEST)) --target $(BUDGET_TARGET) --engine $(BUDGET_ENGINE)
