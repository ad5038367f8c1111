# tinyae — benchmarks (tools/bench): detection quality, device cost on the emulated Cortex-M4F,
# footprint, pipeline timings, streaming and host-reference throughput.
#
#   make bench         the full run (15-25 minutes on 2 cores: 876-1,579 s measured, SKAB from
#                      ../shared/datasets about 7 of them; plus about 20 for the SKAB selection grid, 136
#                      models, whose scores build/bench/cache keeps for later runs) -> bench/results.json +
#                      bench/RESULTS.md
#   make bench-smoke   the tiny version (one 2-epoch model, no repeats, no sweep) -> build/bench-smoke/
#
# Models and bench images go to build/bench/ (BENCH_WORK). Figures are measured, never asserted.

BENCH_OUT  ?= bench
BENCH_WORK ?= build/bench

.PHONY: bench
bench: $(VENV_STAMP) $(TOOLCHAIN_STAMP) ## measure quality, device cost, footprint and throughput -> bench/RESULTS.md
	$(TINYAE) bench --out $(call shq,$(BENCH_OUT)) --work $(call shq,$(BENCH_WORK))

.PHONY: bench-smoke
bench-smoke: $(VENV_STAMP) ## tiny bench run (seconds; checks the bench code, figures mean nothing) -> build/bench-smoke/
	$(TINYAE) bench --quick --out build/bench-smoke --work build/bench-smoke/work
