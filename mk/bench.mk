# tinyae — benchmarks (tools/bench): detection quality, device cost on the emulated Cortex-M4F,
# footprint, pipeline timings, streaming and host-reference throughput.
#
#   make bench         the full run (SKAB from ../shared/datasets; plus about 20 minutes for the SKAB
#                      selection grid, 136 models, whose scores build/bench/cache keeps for later runs; the
#                      pinned TFLM libraries measured beside the compiled engine, built once by
#                      `make build/tflm/<lib>-cm4/libtflm.a` from TAE_THIRD_PARTY, mk/tflm.mk; time per
#                      window traced on QEMU, cached in build/timing/) -> bench/results.json + bench/RESULTS.md
#   make bench-smoke   the tiny version (2-epoch models, no repeats, no sweep, no TFLM library build, no
#                      emulated link): minutes, not figures -> build/bench-smoke/
#
# One section alone, merged into bench/results.json and RESULTS.md: `tinyae bench SECTION --out bench`
# (device: device cost, footprint and the TFLM engines on the emulated board; streaming, calibration,
# threshold, ingest, skab-device; `tinyae bench --help` lists them all).
#
# Models and bench images go to build/bench/ (BENCH_WORK). Figures are measured, never asserted.

BENCH_OUT  ?= bench
BENCH_WORK ?= build/bench

.PHONY: bench
bench: $(VENV_STAMP) $(TOOLCHAIN_STAMP) ## measure quality, device cost, footprint and throughput -> bench/RESULTS.md
	$(TINYAE) bench --out $(call shq,$(BENCH_OUT)) --work $(call shq,$(BENCH_WORK))

.PHONY: bench-smoke
bench-smoke: $(VENV_STAMP) ## tiny bench run (minutes; checks the bench code, figures mean nothing) -> build/bench-smoke/
	$(TINYAE) bench --quick --out build/bench-smoke --work build/bench-smoke/work
