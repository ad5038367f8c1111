"""The SKAB bench (tools/bench/skab.py) on a small SKAB-format fixture written here: the file reader
and its refusals, the row scoring and metrics against hand counts, and each protocol end to end
(float and int8 models, per-row alarms, the figure). The real benchmark lives in ../shared and is
measured by `make bench`; these tests never need it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinyae.errors import UserError
from tinyae.tools.bench import skab, skab_data

HEADER = "datetime;" + ";".join(skab_data.CHANNELS)
LEVELS = np.array([0.2, 0.27, 2.1, 0.4, 70.0, 25.0, 230.0, 120.0])
SPREAD = np.array([0.004, 0.004, 0.4, 0.3, 0.3, 0.05, 10.0, 0.5])


def write(path: Path, values: np.ndarray, labels: np.ndarray | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = HEADER + (";anomaly;changepoint" if labels is not None else "")
    lines = [head]
    for i, row in enumerate(values):
        stamp = f"2020-03-09 10:{i // 60 % 60:02d}:{i % 60:02d}".replace("10:", f"{10 + i // 3600}:", 1)
        cells = [stamp, *(f"{v:.6g}" for v in row)]
        if labels is not None:
            cells += [f"{float(labels[i]):.1f}", "0.0"]
        lines.append(";".join(cells))
    path.write_text("\n".join(lines) + "\n")


def experiment(rng: np.random.Generator, rows: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    x = LEVELS + SPREAD * rng.standard_normal((rows, 8))
    labels = np.zeros(rows, np.int8)
    labels[start:stop] = 1
    x[start:stop, 7] -= 30 * SPREAD[7]  # the valve closes: the flow drops by 30 standard deviations
    x[start:stop, 0] += 10 * SPREAD[0]
    return x, labels


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("skab") / "data"
    rng = np.random.default_rng(0)
    for i, (rows, a, b) in enumerate([(700, 520, 640), (650, 450, 560)]):
        write(d / "valve1" / f"{i}.csv", *experiment(rng, rows, a, b))
    write(d / "anomaly-free" / "anomaly-free.csv", LEVELS + SPREAD * rng.standard_normal((900, 8)), None)
    return d


def test_the_reader_keeps_values_labels_and_time(data_dir: Path) -> None:
    recs = skab_data.experiments(data_dir, expect=None)
    assert [r.name for r in recs] == ["valve1/0", "valve1/1"]
    assert recs[0].values.shape == (700, 8) and recs[0].values.dtype == np.float32
    assert recs[0].labels.sum() == 120 and recs[0].sample_rate_hz == pytest.approx(1.0)
    assert skab_data.anomaly_free(data_dir).labels is None
    with pytest.raises(UserError, match=r"SKAB v0\.9 has 34"):
        skab_data.experiments(data_dir)  # the real benchmark must be complete


def test_an_experiment_without_labels_is_refused_in_one_sentence(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    write(tmp_path / "valve1" / "0.csv", *experiment(rng, 50, 20, 30))
    write(tmp_path / "valve2" / "0.csv", experiment(rng, 50, 20, 30)[0], None)
    with pytest.raises(UserError) as err:
        skab_data.experiments(tmp_path, expect=None)
    assert "valve2/0 has no anomaly column" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("time;a;b\n1;2;3\n", "does not start with the SKAB header"),
        (HEADER + ";anomaly;changepoint\n2020-03-09 10:00:00;1;2\n", "missing"),
        (HEADER + ";anomaly;changepoint\nyesterday;" + ";".join(["1"] * 10) + "\n", "malformed row"),
        (HEADER + ";anomaly;changepoint\n2020-03-09 10:00:00;" + ";".join(["nan"] * 10) + "\n", "non-finite"),
    ],
)
def test_a_damaged_file_is_refused_in_one_sentence(tmp_path: Path, text: str, words: str) -> None:
    p = tmp_path / "x.csv"
    p.write_text(text)
    with pytest.raises(UserError) as err:
        skab_data.read(p, "x")
    assert words in str(err.value) and str(p) in str(err.value) and "\n" not in str(err.value)


def test_the_calibration_bench_reads_skab_with_the_same_reader(data_dir: Path, tmp_path: Path) -> None:
    """tools/bench/skab_calibration.py reads through skab_data: the same values, and a damaged file is the
    section's one-sentence reason, not a traceback."""
    from tinyae.tools.bench import skab_calibration

    with pytest.raises(UserError, match=r"SKAB v0\.9 has 34"):
        skab_calibration.read_skab(data_dir)  # the section needs the whole benchmark
    broken = tmp_path / "data"
    write(broken / "anomaly-free" / "anomaly-free.csv", LEVELS[None, :].repeat(5, 0), None)
    (broken / "valve1").mkdir()
    (broken / "valve1" / "0.csv").write_text(
        HEADER + ";anomaly;changepoint\nyesterday;" + ";".join(["1"] * 10)
    )
    with pytest.raises(UserError) as err:
        skab_calibration.read_skab(broken)
    assert "valve1/0.csv has a malformed row" in str(err.value) and "\n" not in str(err.value)


def test_metrics_and_row_alarms_count_like_the_leaderboard() -> None:
    c = skab.confusion(np.array([1, 1, 0, 0, 1, 0]), np.array([1, 0, 1, 0, 1, 0]))
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (2, 1, 1, 2)
    assert c["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1), abs=1e-4)
    assert c["far_pct"] == pytest.approx(100 / 3, abs=0.01) and c["mar_pct"] == pytest.approx(
        100 / 3, abs=0.01
    )
    # windows of 3 rows ending at rows 2..7; 2 of the last 2 windows above 1.0 raise the alarm
    scores = np.array([0.0, 2.0, 2.0, 0.0, 2.0, 2.0], np.float32)
    assert skab.row_alarms(scores, 1.0, 2, 2, 8, 3).astype(int).tolist() == [0, 0, 0, 0, 1, 0, 0, 1]


def test_commissioning_expresses_a_recording_in_units_of_its_first_rows() -> None:
    x = np.r_[
        np.full((skab.TRAIN_ROWS, 2), [5.0, 1.0]) + np.arange(skab.TRAIN_ROWS)[:, None] % 2, [[9.0, 1.0]]
    ]
    c = skab.commissioned(x.astype(np.float32))
    assert np.allclose(c[: skab.TRAIN_ROWS].mean(axis=0), 0) and np.allclose(
        c[: skab.TRAIN_ROWS].std(axis=0), 1
    )
    assert c[-1, 0] == pytest.approx((9.0 - 5.5) / 0.5)


@pytest.mark.training
@pytest.mark.parametrize("protocol", ["per-file", "deployment", "deployment-commissioned"])
def test_a_protocol_scores_every_test_row_with_float_and_int8_models(data_dir: Path, protocol: str) -> None:
    # a 10-row window: the false alarms after the anomaly's end last about one window
    r = skab.run_protocol(
        protocol, ["train.epochs=30", "window.length=10"], data_dir, lambda m: None, expect=None
    )
    assert r["command"].startswith(".venv/bin/tinyae bench skab --protocol " + protocol)
    assert [f["name"] for f in r["per_file"]] == ["valve1/0", "valve1/1"]
    assert [f["rows"] for f in r["per_file"]] == [300, 250]  # every row after row 400
    for q in ("float", "int8"):
        m = r[q]
        assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == 550
        # a 30-sigma flow drop cannot be missed; the alarm lasts a window past its end (false alarms)
        assert m["f1"] > 0.9 and m["far_pct"] < 10 and m["mar_pct"] < 5
    assert r["model"]["shape"] == "12-16-4-16-12" and r["model"]["macs"] == 512
    if protocol == "per-file":
        assert r["models_trained"] == 2 and len(r["sensitivity"]) == 2 * 4 * 3
    out = skab.figure({protocol: r}, data_dir.parent / f"{protocol}.png")
    assert out.stat().st_size > 10_000


def test_the_protocols_need_one_row_windows(data_dir: Path) -> None:
    with pytest.raises(UserError, match=r"window\.hop = 2"):
        skab.run_protocol("per-file", ["window.hop=2"], data_dir, lambda m: None, expect=None)


def test_without_the_shared_data_the_bench_says_in_one_line_what_it_left_out(tmp_path: Path) -> None:
    from tinyae.tools.bench import report, skab_bench

    said: list[str] = []
    sec = skab_bench.section(False, tmp_path / "no-datasets", tmp_path, tmp_path, tmp_path, True, said.append)
    assert sec["status"] == "not measured" and len(said) == 1
    assert "not found: left out the SKAB section" in said[0] and "\n" not in said[0]
    text = "\n".join(report._skab(sec))
    assert "## SKAB" in text and "not measured: " in text


def test_logo_searches_its_own_grid_and_refuses_overrides(capsys) -> None:
    assert skab.main(["--protocol", "logo", "--set", "window.length=5"]) == 2
    err = capsys.readouterr().err
    assert "leave out --config/--set" in err and err.count("error:") == 1 and "Traceback" not in err


def test_the_published_rows_carry_far_and_mar() -> None:
    """Every detector of SKAB's strict leaderboard with its published FAR and MAR (none left blank)."""
    names = [m for m, *_ in skab.LEADERBOARD]
    assert {"Vanilla LSTM", "Isolation forest", "MSCRED", "Conv-AE"} <= set(names)
    assert all(far is not None and mar is not None for _, _, far, mar in skab.LEADERBOARD)
