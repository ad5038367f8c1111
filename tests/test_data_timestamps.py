"""Issue 15, fault 1 and its kind: every way the sample rate can come out wrong or missing ends in the
right rate or one sentence (timestamp units, date-time strings, jitter, gaps, no timestamp at all)."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import numpy as np
import pytest

from tinyae.errors import UserError
from tinyae.train.data import load_csv

N = 400


def write(tmp_path: Path, name: str, header: str, stamps: list[str], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = [f"{t},{rng.normal():.5f},{rng.normal():.5f}" for t in stamps]
    p = tmp_path / name
    p.write_text(header + "\n" + "\n".join(rows) + "\n")
    return p


def rate(path: Path, **kw) -> float:
    (s,) = load_csv(path, **kw)
    return s.sample_rate_hz


def test_whole_millisecond_timestamps_are_refused_with_both_readings(tmp_path):
    """The issue's file: 0, 10, 20 ... for 100 Hz data gave 0.1 Hz silently."""
    p = write(tmp_path, "ms.csv", "timestamp,accX,accY", [str(10 * i) for i in range(N)])
    with pytest.raises(UserError) as exc:
        load_csv(p)
    msg = str(exc.value)
    assert "0.1 Hz in seconds" in msg and "100 Hz in milliseconds" in msg and "data.timestamp_unit" in msg
    assert rate(p, timestamp_unit="ms") == pytest.approx(100.0)
    assert rate(p, sample_rate_hz=100.0) == pytest.approx(100.0)  # the declared rate picks the unit
    with pytest.raises(UserError, match=r"not data.sample_rate_hz = 50"):
        load_csv(p, sample_rate_hz=50.0)


@pytest.mark.parametrize(
    ("header", "stamps", "hz", "origin"),
    [
        ("timestamp_ms", [str(10 * i) for i in range(N)], 100.0, "in ms (the column name)"),
        ("time [us]", [str(2000 * i) for i in range(N)], 500.0, "in us (the column name)"),
        ("millis", [str(4 * i) for i in range(N)], 250.0, "in ms"),
        ("timestamp", [str(1_700_000_000_000 + 10 * i) for i in range(N)], 100.0, "Unix time in ms"),
        (
            "timestamp",
            [str(1_700_000_000_000_000_000 + 5_000_000 * i) for i in range(N)],
            200.0,
            "Unix time in ns",
        ),
        ("time", [f"{i * 0.01:.2f}" for i in range(N)], 100.0, "in s (assumed"),
        ("t", [f"{1_700_000_000 + i * 0.02:.3f}" for i in range(N)], 50.0, "Unix time in s"),
    ],
)
def test_numeric_units_are_resolved_and_said(tmp_path, header, stamps, hz, origin):
    p = write(tmp_path, "u.csv", f"{header},a,b", stamps)
    (s,) = load_csv(p)
    assert s.sample_rate_hz == pytest.approx(hz, rel=1e-6)
    assert origin in s.meta["rate"]["origin"]


@pytest.mark.parametrize(
    ("stamps", "kw", "hz"),
    [
        ([f"2024-05-01T12:00:{i * 0.01:09.6f}Z" for i in range(N)], {}, 100.0),
        ([f"2024-05-01 12:00:{i * 0.01:09.6f}+02:00" for i in range(N)], {}, 100.0),
        ([f"2024/05/01 12:00:{i * 0.02:09.6f}" for i in range(N)], {}, 50.0),
        # a time of day that crosses midnight
        (
            [
                f"{(23 * 3600 + 59 * 60 + 59 + i * 0.01) % 86400 // 3600:02.0f}:"
                f"{(23 * 3600 + 59 * 60 + 59 + i * 0.01) % 3600 // 60:02.0f}:"
                f"{(23 * 3600 + 59 * 60 + 59 + i * 0.01) % 60:09.6f}"
                for i in range(N)
            ],
            {},
            100.0,
        ),
        (
            [f"01.05.2024 12:00:{i * 0.01:09.6f}" for i in range(N)],
            {"timestamp_format": "%d.%m.%Y %H:%M:%S.%f"},
            100.0,
        ),
    ],
)
def test_date_time_strings_give_the_rate(tmp_path, stamps, kw, hz):
    p = write(tmp_path, "d.csv", "timestamp,a,b", stamps)
    assert rate(p, **kw) == pytest.approx(hz, rel=1e-4)


@pytest.mark.parametrize(
    ("stamps", "pattern"),
    [
        ([f"01/05/2024 12:00:{i * 0.01:09.6f}" for i in range(N)], "day/month or month/day"),
        (["2024-05-01T12:00:00Z"] + [f"2024-05-01T12:00:{i * 0.01:09.6f}" for i in range(1, N)], "time zone"),
        ([f"12h{i}" for i in range(N)], "neither a number nor an ISO 8601"),
    ],
)
def test_ambiguous_or_mixed_date_times_are_one_sentence(tmp_path, stamps, pattern):
    p = write(tmp_path, "bad.csv", "timestamp,a,b", stamps)
    with pytest.raises(UserError, match=pattern) as exc:
        load_csv(p)
    assert "\n" not in str(exc.value)


def test_jittery_clock_gives_the_mean_rate(tmp_path):
    rng = np.random.default_rng(3)
    t = np.cumsum(np.r_[0, 10 + rng.integers(-1, 2, N - 1)])  # millis() at 100 Hz: 9, 10 or 11 ms
    p = write(tmp_path, "j.csv", "timestamp_ms,a,b", [str(v) for v in t])
    (s,) = load_csv(p)
    assert s.sample_rate_hz == pytest.approx(1000 * (N - 1) / t[-1], rel=1e-9)
    assert 0 < s.meta["rate"]["jitter"] < 0.1


def test_files_whose_rates_differ_by_jitter_share_one_rate_and_real_differences_are_refused(tmp_path):
    a = write(tmp_path, "a.csv", "t,a,b", [f"{i * 0.01:.5f}" for i in range(N)])
    b = write(tmp_path, "b.csv", "t,a,b", [f"{i * 0.010002:.6f}" for i in range(N)])  # 99.98 Hz
    sa, sb = load_csv([a, b])
    assert sa.sample_rate_hz == sb.sample_rate_hz == pytest.approx(99.99, abs=0.02)
    c = write(tmp_path, "c.csv", "t,a,b", [f"{i * 0.02:.5f}" for i in range(N)])
    with pytest.raises(UserError, match=r"different sample rates \(a.csv: 100 Hz, c.csv: 50 Hz\)"):
        load_csv([a, c])


def test_a_gap_is_refused_with_its_row_or_split(tmp_path):
    t = [10 * i for i in range(N)]
    t[200:] = [v + 5000 for v in t[200:]]  # 5 s pause after row 201 (header is line 1)
    p = write(tmp_path, "g.csv", "timestamp_ms,a,b", [str(v) for v in t])
    with pytest.raises(UserError, match=r"row 202: the timestamps jump by 5.01 s after row 201") as exc:
        load_csv(p)
    assert 'data.gaps = "split"' in str(exc.value)
    parts = load_csv(p, gaps="split")
    assert [len(s) for s in parts] == [200, 200]
    assert all(s.sample_rate_hz == pytest.approx(100.0) for s in parts)


def test_irregular_and_decreasing_timestamps_are_refused(tmp_path):
    t = [10 * i for i in range(N)]
    t[100] = t[99] + 2
    p = write(tmp_path, "i.csv", "timestamp_ms,a,b", [str(v) for v in t])
    with pytest.raises(UserError, match="sampling is irregular"):
        load_csv(p)
    t = [10 * i for i in range(N)]
    t[50] = t[49]
    q = write(tmp_path, "r.csv", "timestamp_ms,a,b", [str(v) for v in t])
    with pytest.raises(UserError, match=r"row 52: timestamp column 'timestamp_ms' does not increase"):
        load_csv(q)


def test_declared_rate_must_agree_with_the_timestamps(tmp_path):
    p = write(tmp_path, "s.csv", "time,a,b", [f"{i * 0.01:.2f}" for i in range(N)])
    assert rate(p, sample_rate_hz=100.0) == 100.0
    with pytest.raises(
        UserError, match=r"100 Hz in seconds .* not data.sample_rate_hz = 200; fix one of them"
    ):
        load_csv(p, sample_rate_hz=200.0)


def test_no_timestamp_and_no_rate_is_refused_by_training(tmp_path):
    from tinyae.train import config
    from tinyae.train.pipeline import run

    p = tmp_path / "n.csv"
    rng = np.random.default_rng(0)
    p.write_text("a,b\n" + "\n".join(f"{x:.4f},{y:.4f}" for x, y in rng.normal(size=(600, 2))) + "\n")
    cfg = config.load(None, ["data.source=csv", f"data.paths=['{p}']", "train.epochs=1"])
    with pytest.raises(UserError, match=r"gives no sample rate .* set data.sample_rate_hz"):
        run(cfg, tmp_path / "out", "test", show_progress=False)


@pytest.mark.training
def test_the_issue_file_end_to_end_with_a_spectral_front_end(tmp_path):
    """timestamp,accX,accY,accZ in whole ms at 100 Hz with freq_max_hz = 20: refused until the unit is
    given, then 100 Hz in the manifest (with its origin), the header and the spectral bands."""
    from tinyae.train import config
    from tinyae.train.pipeline import run

    rng = np.random.default_rng(5)
    t = np.arange(3000)
    x = np.c_[np.sin(2 * np.pi * 7 * t / 100), np.cos(2 * np.pi * 13 * t / 100), rng.normal(size=3000)]
    p = tmp_path / "acc.csv"
    p.write_text(
        "timestamp,accX,accY,accZ\n"
        + "\n".join(f"{10 * i},{a:.5f},{b:.5f},{c:.5f}" for i, (a, b, c) in enumerate(x))
    )
    base = ["data.source=csv", f"data.paths=['{p}']", "frontend.kinds=spectral", "frontend.freq_max_hz=20",
            "train.epochs=1"]  # fmt: skip
    with pytest.raises(UserError, match="100 Hz in milliseconds"):
        run(config.load(None, base), tmp_path / "m0", "test", show_progress=False)
    with pytest.raises(UserError, match=r"freq_max_hz = 20 is above the Nyquist frequency \(0.05 Hz"):
        run(config.load(None, [*base, "data.timestamp_unit=s"]), tmp_path / "m1", "test", show_progress=False)
    m = run(
        config.load(None, [*base, "data.timestamp_unit=ms"]), tmp_path / "m2", "test", show_progress=False
    ).to_dict()
    assert m["window"]["sample_rate_hz"] == pytest.approx(100.0)
    assert m["data"]["sample_rate_origin"] == "timestamp column 'timestamp' in ms (data.timestamp_unit)"
    assert "#define TAE_SAMPLE_RATE_HZ 100.0f" in (tmp_path / "m2" / "model_config.h").read_text()
    assert m["frontend"]["spectral"]["bands_hz"][-1][1] == pytest.approx(20.0, abs=100 / 64)


@pytest.mark.training
def test_a_test_part_that_is_all_anomalous_is_explained_without_numpy_warnings(tmp_path):
    """The time split with the last minute anomalous: every test window is anomalous."""
    import warnings

    from tinyae.train import config
    from tinyae.train.pipeline import run

    rng = np.random.default_rng(6)
    n = 3000
    lab = np.zeros(n, int)
    lab[2300:] = 1  # the test part starts at sample 2413 (60/20/20 with gaps of one window)
    x = rng.normal(size=(n, 2))
    x[2300:, 0] += 3
    p = tmp_path / "end.csv"
    p.write_text(
        "t,a,b,label\n" + "\n".join(f"{i / 100:.2f},{a:.5f},{b:.5f},{lab[i]}" for i, (a, b) in enumerate(x))
    )
    cfg = config.load(None, ["data.source=csv", f"data.paths=['{p}']", "train.epochs=1", "window.length=32",
                             "window.hop=16"])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        m = run(cfg, tmp_path / "m", "test", show_progress=False).to_dict()
    assert "int8" not in m["metrics"]
    assert m["metrics"]["missing_reason"].startswith("all 35 test windows are anomalous")
    html = (tmp_path / "m" / "report.html").read_text()
    assert "No detection metrics" in html and "lowest-scoring test window (no normal test window)" in html
    assert "test 35" in html  # the split line: what each part holds


# ---------------------------------------------------------------------------- daylight saving
def _local_clock(path, start, seconds, change, shift_hours):
    """A 1 Hz recording in local wall-clock time across a daylight-saving change at `change`."""
    from datetime import timedelta

    rows = ["time,x"]
    for i in range(seconds):
        wall = start + timedelta(seconds=i)
        if wall >= change:
            wall += timedelta(hours=shift_hours)
        rows.append(f"{wall:%Y-%m-%d %H:%M:%S},{np.sin(i / 5):.4f}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_repeated_daylight_saving_hour_is_named_with_what_to_do(tmp_path):
    from datetime import datetime

    back = _local_clock(
        tmp_path / "autumn.csv", datetime(2024, 10, 27, 1), 3 * 3600, datetime(2024, 10, 27, 3), -1
    )
    with pytest.raises(UserError) as err:
        load_csv(back)
    text = str(err.value)
    assert "goes back one hour" in text and "daylight-saving change" in text and "%z" in text
    assert "sort the rows" not in text and "\n" not in text
    fwd = _local_clock(
        tmp_path / "spring.csv", datetime(2024, 3, 31, 1), 2 * 3600, datetime(2024, 3, 31, 2), 1
    )
    with pytest.raises(UserError, match="daylight-saving change \\(the clock set forward\\)"):
        load_csv(fwd)
    # the same instants with their UTC offset are one regular series
    from datetime import timedelta, timezone

    utc = datetime(2024, 10, 27, 0, tzinfo=UTC)
    zone = [timezone(timedelta(hours=2)), timezone(timedelta(hours=1))]  # CEST, then CET from 01:00 UTC
    stamps = [(utc + timedelta(seconds=i)).astimezone(zone[i >= 3600]).isoformat() for i in range(7200)]
    rows = ["time,x"] + [f"{t},{i % 7}" for i, t in enumerate(stamps)]
    ok = tmp_path / "offset.csv"
    ok.write_text("\n".join(rows) + "\n")
    (s,) = load_csv(ok)
    assert s.sample_rate_hz == pytest.approx(1.0)
