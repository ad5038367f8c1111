"""tinyae benchmarks (`make bench`): detection quality, device cost on the emulated Cortex-M4F,
footprint, pipeline timings, streaming and host-reference throughput -> bench/results.json + RESULTS.md.

Public API: `tinyae.tools.bench.cli.measure(out: Path, *, quick: bool = False, work: Path = WORK) -> dict`
and the CLI `tinyae bench [--quick] [--out bench/] [--work build/bench]`.
"""
