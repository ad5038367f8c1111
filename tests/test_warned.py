"""Issue 26: the warnings of a run come from one source (train/warned.py): printed once, recorded in order,
shared by nested collections, and `tinyae threshold` swaps the threshold's own for the new ones."""

from __future__ import annotations

from tinyae.train.warned import collected, collecting, replace, warn


def test_warnings_are_printed_and_recorded_once_in_order(capsys):
    with collecting() as record:
        warn("warning: first")  # a caller's own prefix is not doubled
        with collecting() as inner:  # e.g. pipeline.run inside `tinyae model`
            warn("second")
            warn("first")
            assert inner is record
        assert collected() == ["first", "second"]
    assert record == ["first", "second"] and collected() == []
    err = capsys.readouterr().err
    assert err.count("warning: first") == 1 and "warning: warning:" not in err and "warning: second" in err


def test_outside_a_run_a_warning_is_only_printed(capsys):
    warn("alone")
    assert collected() == [] and "warning: alone" in capsys.readouterr().err


def test_threshold_warnings_are_swapped():
    assert replace(["outliers", "few windows"], ["few windows"], ["rough"]) == ["outliers", "rough"]
    assert replace(["a", "b"], [], ["b"]) == ["a", "b"]
