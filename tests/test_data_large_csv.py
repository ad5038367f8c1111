"""Issue 15, smaller things: a large CSV shows progress while it is read and costs a small multiple of
its float32 values in memory (the whole file used to become lists of Python strings: 4 GB for 200 MB)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from tinyae import peakrss
from tinyae.train.data import load_csv

ROWS = 600_000


def big_csv(path: Path, rows: int = ROWS) -> Path:
    rng = np.random.default_rng(0)
    with path.open("w") as f:
        f.write("timestamp,ax,ay,az\n")
        for a in range(0, rows, 100_000):
            x = rng.normal(size=(min(100_000, rows - a), 3))
            f.write(
                "".join(f"{(a + i) * 0.01:.2f},{u:.6f},{v:.6f},{w:.6f}\n" for i, (u, v, w) in enumerate(x))
            )
    return path


MEASURE = """
import resource, sys
from pathlib import Path
from tinyae.train.data import load_csv
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
(s,) = load_csv(Path(sys.argv[1]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(s.values.nbytes, (after - before) * 1024, len(s))
"""


@pytest.mark.slow  # writes and reads a large CSV in a subprocess
def test_reading_reports_progress_and_stays_within_a_small_multiple_of_the_data(tmp_path):
    from tinyae.train.progress import MIN_BYTES, file_progress

    p = big_csv(tmp_path / "big.csv")
    size = p.stat().st_size
    assert size > MIN_BYTES  # large enough for a progress bar
    calls: list[tuple[int, int]] = []
    (s,) = load_csv(p, progress=lambda path: lambda done, total: calls.append((done, total)))
    assert len(s) == ROWS and s.values.dtype == np.float32 and s.sample_rate_hz == 100.0
    assert len(calls) > 5 and all(t == size for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == size
    with file_progress(True) as factory:
        assert factory(p) is not None
        small = tmp_path / "small.csv"
        small.write_text("t,a\n0,1\n")
        assert factory(small) is None
    proc = subprocess.run(
        peakrss.fresh([sys.executable, "-c", MEASURE, p]),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    f32, extra, n = (int(v) for v in proc.stdout.split())
    assert n == ROWS
    assert extra >= f32, "the child's peak memory cannot have grown less than the values it holds"
    # values + line numbers + timestamps + one chunk of text; the old reader took about 60x
    assert extra < 6 * f32 + 48 * 2**20, (extra / f32, f32)
