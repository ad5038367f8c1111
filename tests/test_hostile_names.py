"""A name taken from the data never breaks a one-line message: a column, file, label, channel or config
key holding a newline, a terminal escape, reversed-text control or ten thousand characters goes into
every refusal that names it through tinyae.errors.printable (escaped, long names cut in the middle).

Each message path is fed every hostile name; the sentence must stay one line of printable characters,
show the name's escaped form (or its cut form) and stay short whatever the name's length.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tinyae.errors import NAME_LIMIT, UserError, printable, printable_list
from tinyae.train.data.csv_source import load_csv
from tinyae.train.data.labels import label_meaning
from tinyae.train.data.normalize import fit_normalization
from tinyae.train.data.settings import load_for_model
from tinyae.train.frontend.fit import check_features

HOSTILE = {
    "newline": "tilt\nangle",
    "carriage return": "a\rb",
    "escape sequence": "\x1b[2J\x1b[31mred",
    "control bytes": "\x01\x02\x7f",
    "reversed text": "temp\u202eC°",
    "line separator": "x\u2028y",
    "long": "acc_" + "x" * 10_000,
    "long with newlines": "\n".join(["ch"] * 3000),
}
CASES = pytest.mark.parametrize("name", list(HOSTILE.values()), ids=list(HOSTILE))


def one_line(message: str, name: str) -> None:
    """One line of printable text that shows `name` as printable() renders it, and stays short."""
    assert message and all(ch.isprintable() for ch in message), repr(message[:300])
    assert printable(name) in message, (printable(name), message[:300])
    assert len(message) < 1500, len(message)


def as_read(name: str) -> str:
    """The name as the CSV reader returns it: its line ends (CR, CRLF) read as a newline."""
    return name.replace("\r\n", "\n").replace("\r", "\n")


def refusal(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as err:
        fn(*args, **kwargs)
    return str(err.value)


def write(tmp_path: Path, rows: list[list[str]], name: str = "data.csv") -> Path:
    path = tmp_path / name
    with path.open("w", newline="") as f:
        import csv

        csv.writer(f).writerows(rows)
    return path


# ---------------------------------------------------------------------------- the helper
@given(st.text())
@example("\x01\n\x01")  # the quoted CSV header Hypothesis found (issue 27)
@example("\ud800")  # a lone surrogate
def test_printable_is_one_line_of_printable_text(text):
    out = printable(text)
    assert all(ch.isprintable() for ch in out)
    assert len(out) <= NAME_LIMIT
    assert printable(out) == out  # applying it twice changes nothing
    if text.isprintable() and len(text) <= NAME_LIMIT:
        assert out == text  # ordinary names are shown as they are


def test_a_long_name_keeps_its_start_and_end():
    out = printable("a" * 100 + "TAIL")
    assert out.startswith("a" * 20) and out.endswith("TAIL") and "…" in out and len(out) == NAME_LIMIT
    assert printable("x" * 1000, None) == "x" * 1000  # paths are never cut
    assert printable_list(["a\nb", "c"], 1) == "a\\nb, ..."


# ---------------------------------------------------------------------------- column names (CSV header)
@CASES
def test_a_bad_value_names_its_column(tmp_path, name):
    path = write(tmp_path, [["t", name], ["0", "1"], ["1", "oops"]])
    one_line(refusal(load_csv, path, sample_rate_hz=10, timestamp=None), as_read(name))


@CASES
def test_a_missing_value_names_its_column(tmp_path, name):
    path = write(tmp_path, [["a", name], ["0", "nan"]])
    one_line(refusal(load_csv, path, sample_rate_hz=10, timestamp=None), as_read(name))


@CASES
def test_two_columns_with_one_name(tmp_path, name):
    path = write(tmp_path, [[name, name], ["0", "1"]])
    one_line(refusal(load_csv, path, sample_rate_hz=10), as_read(name))


@CASES
def test_a_channel_that_is_not_a_column(tmp_path, name):
    path = write(tmp_path, [["a", "b"], ["0", "1"]])
    one_line(refusal(load_csv, path, channels=[name], sample_rate_hz=10), name)  # asked for, not read
    # and the columns it lists are the file's, each shown the same way
    path = write(tmp_path, [["a", name], ["0", "1"]], "other.csv")
    one_line(refusal(load_csv, path, channels=["zz"], sample_rate_hz=10), as_read(name))


@CASES
def test_files_whose_channels_differ(tmp_path, name):
    a = write(tmp_path, [["a", "b"]] + [["0", "1"]] * 5, "a.csv")
    b = write(tmp_path, [["a", name]] + [["0", "1"]] * 5, "b.csv")
    one_line(refusal(load_csv, [a, b], sample_rate_hz=10), as_read(name))


@CASES
def test_a_timestamp_column_that_does_not_parse(tmp_path, name):
    path = write(tmp_path, [[name, "x"], ["0", "1"], ["zz", "1"]])
    one_line(refusal(load_csv, path, timestamp=name), as_read(name))


@CASES
def test_a_label_column_with_a_hole(tmp_path, name):
    path = write(tmp_path, [["x", name], ["1", "0"], ["2", ""]])
    one_line(refusal(load_csv, path, label=name, sample_rate_hz=10), as_read(name))


# ---------------------------------------------------------------------------- labels
@CASES
def test_label_classes(name):
    one_line(refusal(label_meaning, [name, "other"], None, "data.csv"), name)
    one_line(refusal(label_meaning, ["a", "b"], [name], "data.csv"), repr(name))


# ---------------------------------------------------------------------------- channels and features
@CASES
def test_a_constant_channel(name):
    x = np.zeros((50, 2), np.float32)
    x[:, 0] = np.arange(50)
    one_line(refusal(fit_normalization, x, "zscore", ["ok", name]), name)


@CASES
def test_features_that_never_vary(name):
    one_line(refusal(check_features, np.zeros((20, 2), np.float32), [name, "b"], ["stats"], print), name)


@CASES
def test_host_tool_channels_not_in_the_file(tmp_path, name):
    path = write(tmp_path, [["a", "b"], ["0", "1"]])
    manifest = {"window": {"channel_names": ["a", "b"], "sample_rate_hz": 10.0}, "data": {}}
    one_line(refusal(load_for_model, str(path), manifest, channels=[name, "b"]), name)


# ---------------------------------------------------------------------------- file names
FILE_NAMES = {"newline": "run\n1.csv", "escape": "\x1b[31mred.csv", "long": "r" * 200 + ".csv"}


@pytest.mark.parametrize("name", list(FILE_NAMES.values()), ids=list(FILE_NAMES))
def test_file_names(tmp_path, name):
    path = tmp_path / name
    for content in (None, b"", b"a,b\n\0\0", b"a,b\n\xff\xfe\xfa"):  # missing, empty, binary, not UTF-8
        if content is not None:
            path.write_bytes(content)
        message = refusal(load_csv, path, sample_rate_hz=10)
        assert all(ch.isprintable() for ch in message) and printable(path, None) in message, message


# ---------------------------------------------------------------------------- config keys (TOML)
def test_an_unknown_config_key_from_the_file(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[data]\n"sample\\nrate" = 3\n')
    proc = subprocess.run(
        [sys.executable, "-m", "tinyae", "model", "--config", str(config), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "unknown key 'sample\\nrate'" in proc.stderr, proc.stderr
