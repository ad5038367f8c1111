"""Every config tinyae ships builds a model with the command its header documents, on data shaped like
the data it is for (configs/skab.toml once refused SKAB's own files: their rows step two seconds now and
then, and its threshold factor has no on-site form)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinyae.cli import main as tinyae

ROOT = Path(__file__).resolve().parent.parent
SKAB_COLUMNS = ["Accelerometer1RMS", "Accelerometer2RMS", "Current", "Pressure", "Temperature", "Thermocouple",
                "Voltage", "Volume Flow RateRMS"]  # fmt: skip


def _skab_like(path: Path, rows: int = 1200) -> Path:
    """SKAB's file format: `;`-separated, a datetime column, rows about 1 s apart with 2-s steps."""
    rng = np.random.default_rng(0)
    t0 = np.datetime64("2020-03-09T10:14:33")
    steps = np.where(rng.random(rows) < 0.05, 2, 1)  # SKAB's anomaly-free.csv: 556 two-second steps
    times = t0 + np.cumsum(steps).astype("timedelta64[s]")
    values = rng.normal(size=(rows, len(SKAB_COLUMNS))) * 0.1 + np.arange(1, len(SKAB_COLUMNS) + 1)
    lines = [";".join(["datetime", *SKAB_COLUMNS, "anomaly", "changepoint"])]
    for t, v in zip(times, values, strict=True):
        stamp = str(t).replace("T", " ")
        lines.append(";".join([stamp, *(f"{x:.6g}" for x in v), "0.0", "0.0"]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.training
def test_the_skab_config_builds_the_deployable_model_its_header_documents(tmp_path: Path) -> None:
    header = (ROOT / "configs" / "skab.toml").read_text().split("[data]")[0]
    assert 'data.label=""' in header and "anomaly-free.csv" in header  # the command this test runs
    csv = _skab_like(tmp_path / "anomaly-free.csv")
    code = tinyae(["model", "--config", str(ROOT / "configs" / "skab.toml"), "--set", 'data.label=""',
                   "--set", f"data.paths=['{csv}']", "--set", "train.epochs=2", "--out", str(tmp_path / "m"),
                   "--quiet"])  # fmt: skip
    assert code == 0
    assert (tmp_path / "m" / "manifest.json").is_file()
