# tinyae — the budget-constrained model search (train/search, tinyae search).
#
#   make search BUDGET=flash=48k,ram=16k,instructions=200k [SEARCH_TARGET=nano33ble] [TRIALS=30]
#               [SEARCH_OUT=build/search] [CONFIG=configs/default.toml]
#   make bench-search [SEARCH_BENCH_TRIALS=30]   synthetic (+ SKAB when ../shared/datasets/skab exists) at the
#                                                Nano 33 BLE budget and a 4x smaller one, and 1/2/4 Ray workers
#                                                -> bench/SEARCH.md, bench/search.json (about an hour on 2 cores)

BUDGET        ?= flash=48k,ram=16k,instructions=200k
SEARCH_TARGET ?= nano33ble
TRIALS        ?= 30
SEARCH_OUT    ?= build/search
SEARCH_BENCH_TRIALS ?= 30

.PHONY: search
search: $(VENV_STAMP) ## search the best model that fits BUDGET on SEARCH_TARGET (Ray Tune + Optuna) -> build/search/
	$(TINYAE) search --config $(call shq,$(CONFIG)) --budget $(call shq,$(BUDGET)) --target $(SEARCH_TARGET) \
	    --trials $(TRIALS) --out $(call shq,$(SEARCH_OUT))

.PHONY: bench-search
bench-search: $(VENV_STAMP) $(TOOLCHAIN_STAMP) ## measure the search (synthetic, SKAB; two budgets; 1/2/4 workers) -> bench/SEARCH.md
	$(TINYAE) bench search --trials $(SEARCH_BENCH_TRIALS)
