"""The protocol decoder and the device application under libFuzzer + ASan + UBSan.

`make test` replays the same inputs every run: the seeds and the corpus kept in the repository
(tests/vectors/fuzz_corpus.json). Exploring new inputs is `make fuzz`, which adds what it finds to that
file; a property test that draws new cases in CI would fail landings at random."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tinyae.tools.testing import fuzz

pytestmark = pytest.mark.skipif(shutil.which("clang-14") is None, reason="clang-14 is not installed")


def test_the_seeds_and_the_kept_corpus_replay_cleanly(tmp_path):
    proc = fuzz.replay(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    kept = len(json.loads(fuzz.KEPT.read_text())["inputs"])
    assert kept >= 100  # what `make fuzz` found: inputs reaching coverage the seeds do not
    seeds = len(list((tmp_path / "seeds").iterdir()))
    # every input ran: libFuzzer's "Done N runs" counts one empty input besides the files, and now and
    # then one more (seen 2 runs in ~10 beside other tests; libFuzzer runs an input again, e.g. for its
    # leak check, when that input's mallocs and frees do not pair up)
    assert f"{kept} files found in {tmp_path / 'kept'}" in proc.stderr, proc.stderr[-2000:]
    done = re.search(r"Done (\d+) runs", proc.stderr)
    assert done and int(done.group(1)) >= kept + seeds + 1, proc.stderr[-2000:]


def test_make_fuzz_keeps_a_failing_input_and_new_coverage_once(tmp_path, monkeypatch):
    monkeypatch.setattr(fuzz, "KEPT", tmp_path / "kept.json")
    work = tmp_path / "work"
    (work / "corpus").mkdir(parents=True)
    (work / "crash-0a1b").write_bytes(b"\xa5\x80\x81 a failing input")
    (work / "corpus" / "x").write_bytes(
        bytes.fromhex(fuzz.json.loads(fuzz.VECTORS_PATH.read_text())["vectors"][0]["wire"]) * 3
    )
    added = fuzz.keep_findings(work)
    assert any(n.startswith("crash-") for n in added), added
    assert fuzz.keep_findings(work) == []  # the same finds again: nothing new
    written = {q.name: q.read_bytes() for q in fuzz.kept_corpus(tmp_path / "out").iterdir()}
    assert set(written) == set(added) and b"\xa5\x80\x81 a failing input" in written.values()


@pytest.mark.skipif(shutil.which("llvm-cov-14") is None, reason="llvm-14 is not installed")
def test_structured_seeds_reach_the_message_handlers(tmp_path):
    # the seeds alone (empty corpus): the structured mode's valid-CRC sessions must complete windows,
    # apply settings and switch modes, so most of tae_app.c runs, not only its error paths
    cov = fuzz.coverage_report(tmp_path / "empty_corpus")
    app, proto = cov["files"]["tae_app.c"], cov["files"]["tae_protocol.c"]
    assert app["lines"]["percent"] >= 85.0, cov["text"]
    assert app["functions"]["percent"] == 100.0, cov["text"]
    assert proto["lines"]["percent"] >= 80.0, cov["text"]
    # on-site calibration: a calibration accepted, refused, aborted, a record written, storage faults
    # (the host-only ctypes helpers of tae_calib.c are the functions the device never calls)
    assert cov["files"]["tae_calib.c"]["lines"]["percent"] >= 75.0, cov["text"]
