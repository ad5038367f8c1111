"""Reading a large CSV: wall time and peak memory of the loader and of a whole `train model` run.

A recording of SIZE_MB (3 accelerometer axes at 100 Hz with a timestamp column, written here, not
downloaded) is read by `tinyae.train.data.load_csv` in a fresh process (time, rows per second, peak RSS above
the process after its imports, as a multiple of the float32 values), then trained on for one epoch
with `tinyae model` (wall time, peak RSS of the whole run including TensorFlow).
`tinyae bench ingest [--size-mb N]` runs this section alone; `make bench` includes it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from tinyae import peakrss
from tinyae.steps import run_step
from tinyae.tools.bench.common import TINYAE, command_text, rel, run_note

SIZE_MB = 200
QUICK_MB = 4
BYTES_PER_ROW = 37  # "12345.67,-0.123456,1.234567,-0.765432\n"

LOADER = """
import resource, sys, time
from pathlib import Path
from tinyae.train.data import load_csv
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
(s,) = load_csv(Path(sys.argv[1]))
dt = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(s), s.values.nbytes, (after - before) * 1024, dt, s.sample_rate_hz)
"""


def write_recording(path: Path, size_mb: int) -> int:
    """A 100 Hz 3-axis recording of about size_mb MB; returns its row count."""
    rows = size_mb * 1_000_000 // BYTES_PER_ROW
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        f.write("timestamp,ax,ay,az\n")
        for a in range(0, rows, 200_000):
            n = min(200_000, rows - a)
            t = (a + np.arange(n)) / 100.0
            x = np.c_[np.sin(2 * np.pi * 9.5 * t), np.cos(2 * np.pi * 19 * t), np.ones(n)] + 0.1 * rng.normal(
                size=(n, 3)
            )
            f.write(
                "".join(f"{ti:.2f},{u:.6f},{v:.6f},{w:.6f}\n" for ti, (u, v, w) in zip(t, x, strict=True))
            )
    return rows


def section(quick: bool, work: Path, say=print, size_mb: int | None = None) -> dict:  # type: ignore[no-untyped-def]
    size = size_mb or (QUICK_MB if quick else SIZE_MB)
    path = work / "ingest" / f"recording-{size}mb.csv"
    if not path.is_file():
        say(f"ingest: writing a {size} MB recording")
        write_recording(path, size)
    say(f"ingest: reading {rel(path)}")
    _, said = run_step(peakrss.fresh([sys.executable, "-c", LOADER, path]), timeout=3600)
    rows, f32, extra, secs, hz = said.splitlines()[0].split()  # its one stdout line comes first
    out: dict = {
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "rows": int(rows),
        "float32_mb": round(int(f32) / 1e6, 1),
        "load_s": round(float(secs), 1),
        "rows_per_s": round(int(rows) / float(secs)),
        "load_peak_extra_mb": round(int(extra) / 1e6),
        "load_peak_extra_x_float32": round(int(extra) / int(f32), 1),
        "sample_rate_hz": float(hz),
        "load_command": f".venv/bin/tinyae bench ingest --size-mb {size} (load_csv in a fresh process)",
    }
    say("ingest: training one epoch on it")
    model = work / "ingest" / "model"
    train_argv = [TINYAE, "model", "--quiet", "--set", "data.source=csv", "--set",
                  f"data.paths=['{rel(path)}']", "--set", "train.epochs=1", "--out", rel(model)]  # fmt: skip
    t0 = time.perf_counter()
    # this one training's own peak (RUSAGE_CHILDREN here would be the largest of every child the bench ran)
    _, said = run_step(
        peakrss.measured([sys.executable, "-m", "tinyae", *train_argv[1:]], python=sys.executable),
        timeout=3600,
    )
    out["train_model_s"] = round(time.perf_counter() - t0, 1)
    out["train_model_peak_rss_mb"] = round(peakrss.peak_bytes(said) / 1e6)
    out["train_command"] = command_text(train_argv)
    return out


def render(s: dict | None) -> list[str]:
    if not s:
        return []
    if s.get("status") == "not measured":
        return ["", "## Reading a large CSV", "", f"Not measured: {s['reason']}"]
    return [
        "",
        "## Reading a large CSV",
        "",
        *run_note(s),
        f"A {s['file_mb']} MB recording ({s['rows']:,} rows, 3 "
        f"axes + timestamp; {s['float32_mb']} MB as float32):",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| `load_csv` time | {s['load_s']} s ({s['rows_per_s']:,} rows/s) |",
        f"| `load_csv` peak memory above the process | {s['load_peak_extra_mb']} MB "
        f"({s['load_peak_extra_x_float32']}x the float32 values) |",
        f"| `train model`, 1 epoch, wall time | {s['train_model_s']} s |",
        f"| `train model` peak RSS (with TensorFlow) | {s['train_model_peak_rss_mb']} MB |",
        "",
        f"Commands: `{s['load_command']}`; `{s['train_command']}`.",
    ]
