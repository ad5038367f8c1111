"""Issue 24, "a model directory is written all or nothing": tinyae/atomic.py, the one mechanism every
writer uses. A directory or a group of files is replaced whole or not at all — after an exception, a
Ctrl-C or SIGTERM delivered mid-way, a full disk or a read-only folder — the error is one sentence, a
second writer of the same directory is refused naming the first, and a swap cut between its two renames
is repaired by the next run. The commands themselves are tested in tests/test_artifacts_cli.py."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinyae import atomic
from tinyae.errors import UserError


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _leftovers(parent: Path) -> list[str]:
    return sorted(
        p.name for p in parent.iterdir() if atomic.STAGE_MARK in p.name or atomic.OLD_MARK in p.name
    )


@pytest.fixture
def model(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    (d / "manifest.json").write_text("old manifest")
    (d / "model_int8.tflite").write_bytes(b"old network")
    return d


def test_a_fresh_directory_replaces_the_old_one_whole(model: Path) -> None:
    with atomic.replace_dir(model, fresh=True) as stage:
        assert stage.parent == model.parent and stage != model
        assert list(stage.iterdir()) == []  # fresh: nothing of the previous build
        (stage / "manifest.json").write_text("new manifest")
        assert (model / "manifest.json").read_text() == "old manifest"  # untouched until the end
    assert _tree(model) == {"manifest.json": b"new manifest"}
    assert _leftovers(model.parent) == []


@pytest.mark.parametrize("failure", [RuntimeError("boom"), KeyboardInterrupt(), OSError(errno.EIO, "I/O")])
def test_an_interrupted_writer_leaves_the_previous_directory(model: Path, failure: BaseException) -> None:
    before = _tree(model)
    for fresh in (True, False):
        with pytest.raises((type(failure), UserError)), atomic.replace_dir(model, fresh=fresh) as stage:
            (stage / "manifest.json").write_text("half")
            (stage / "model_int8.tflite").write_bytes(b"new network")
            raise failure
        assert _tree(model) == before
        assert _leftovers(model.parent) == []


def test_changing_some_files_keeps_the_others_and_their_times(model: Path) -> None:
    old = model / "model_int8.tflite"
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))
    with atomic.replace_dir(model) as stage:
        assert _tree(stage) == _tree(model)
        (stage / "manifest.json").write_text("threshold moved")
    assert (model / "manifest.json").read_text() == "threshold moved"
    assert (model / "model_int8.tflite").stat().st_mtime_ns == 1_000_000_000  # make sees it unchanged


def test_a_folder_that_is_not_the_commands_own_is_never_replaced(tmp_path: Path) -> None:
    mine = {"manifest.json", "model.keras"}
    d = tmp_path / "project"
    d.mkdir()
    (d / "README.md").write_text("the user's")
    (d / "manifest.json").write_text("{}")
    with pytest.raises(UserError) as e, atomic.replace_dir(d, fresh=True, owned=mine.__contains__):
        pass
    assert "README.md" in str(e.value) and "new or empty folder" in str(e.value)
    assert (d / "README.md").read_text() == "the user's"
    f = tmp_path / "a-file"
    f.write_text("x")
    with pytest.raises(UserError, match="is a file, not a directory"), atomic.replace_dir(f, fresh=True):
        pass


def test_a_second_writer_of_the_same_directory_is_refused_naming_the_first(model: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from tinyae import atomic\n"
         "with atomic.locked(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)", str(model)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError) as e, atomic.replace_dir(model, fresh=True, what="another --out"):
            pass
        text = str(e.value)
        assert f"pid {holder.pid}" in text and "wait until it has finished, or choose another --out" in text
        assert _tree(model)["manifest.json"] == b"old manifest"
    finally:
        holder.kill()
        holder.wait()
    with atomic.replace_dir(model) as stage, atomic.locked(model):  # the same process may nest
        (stage / "x").write_text("1")
    assert (model / "x").read_text() == "1"


def test_a_swap_cut_between_its_two_renames_is_repaired(model: Path) -> None:
    # what a run killed (SIGKILL, power loss) between `rename(target, old)` and `rename(stage, target)`
    # leaves, where renameat2(RENAME_EXCHANGE) is not available: the previous directory aside, a stage
    old = model.parent / f".model{atomic.OLD_MARK}abc"
    model.rename(old)
    stage = model.parent / f".model{atomic.STAGE_MARK}def"
    stage.mkdir()
    (stage / "manifest.json").write_text("unfinished")
    with atomic.replace_dir(model) as s:
        assert (s / "manifest.json").read_text() == "old manifest"  # the previous one, put back
    assert (model / "manifest.json").read_text() == "old manifest"
    assert _leftovers(model.parent) == []


def test_the_two_rename_swap_works_where_exchange_does_not(model: Path, monkeypatch) -> None:
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    with atomic.replace_dir(model, fresh=True) as stage:
        (stage / "manifest.json").write_text("new")
    assert _tree(model) == {"manifest.json": b"new"}
    assert _leftovers(model.parent) == []


def test_ctrl_c_while_files_move_into_place_is_delivered_after(tmp_path: Path) -> None:
    got: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda n, f: got.append(n))
    try:
        with atomic.signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            assert got == []  # held back
        assert got == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_files_of_a_group_replace_their_targets_together(tmp_path: Path) -> None:
    a, b = tmp_path / "capture.csv", tmp_path / "capture.csv.json"
    a.write_text("old csv")
    with pytest.raises(RuntimeError), atomic.files() as g:
        g.write_text(a, "new csv")
        with g.path(b).open("w") as f:
            f.write("{}")
        raise RuntimeError
    assert a.read_text() == "old csv" and not b.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["capture.csv"]
    with atomic.files() as g:
        g.write_text(a, "new csv")
        np_like = g.path(tmp_path / "vectors.npz")
        assert np_like.suffix == ".npz"  # writers that pick the format from the name keep working
        np_like.write_bytes(b"z")
        g.write_text(b, "{}")
    assert a.read_text() == "new csv" and b.read_text() == "{}" and (tmp_path / "vectors.npz").exists()


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (errno.EROFS, "read-only"),
        (errno.ENOSPC, "disk is full"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_a_write_error_is_one_sentence_naming_the_file(
    model: Path, monkeypatch, code: int, advice: str
) -> None:
    before = _tree(model)
    real = Path.write_bytes

    def failing(self: Path, data: bytes) -> int:
        if "model_data" in self.name:  # the file, or its temporary beside it
            raise OSError(code, os.strerror(code), str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    with pytest.raises(UserError) as e, atomic.replace_dir(model, fresh=True) as stage:
        (stage / "manifest.json").write_bytes(b"new")
        (stage / "model_data.cc").write_bytes(b"...")
    text = str(e.value)
    assert text.startswith(f"cannot write {model / 'model_data.cc'} (")  # named where it was going
    assert advice in text and f"{model} is as it was" in text
    assert _tree(model) == before
    with pytest.raises(UserError) as e:
        atomic.write_bytes(model / "model_data.cc", b"x")
    assert advice in str(e.value)


def test_an_unreadable_input_is_not_reported_as_a_write(model: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic.replace_dir(model, fresh=True):
        (tmp_path / "no-such-data.csv").read_text()  # the caller's to explain, not "cannot write"


def test_check_writable_refuses_before_any_work(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UserError, match="cannot write"):
        atomic.check_writable(f / "report.json")  # a file where a folder should be
    atomic.check_writable(tmp_path / "new" / "report.json")
    assert list((tmp_path / "new").iterdir()) == []


def _unshare_works() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


needs_mounts = pytest.mark.skipif(
    not _unshare_works(), reason="needs root and `unshare -m` (a private mount)"
)


@needs_mounts
def test_a_real_full_disk_and_read_only_folder(tmp_path: Path) -> None:
    """A 64 KiB tmpfs in a private mount namespace: a 200 KiB file fills it (ENOSPC), then the same
    folder remounted read-only (EROFS); each write is one sentence and leaves what was there."""
    script = tmp_path / "writes.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\nfrom tinyae import atomic\nfrom tinyae.errors import UserError\n"
        "d = Path(sys.argv[1]) / 'model'\n"
        "try:\n"
        "    with atomic.replace_dir(d, fresh=True) as s:\n"
        "        (s / 'model_data.cc').write_bytes(b'x' * 200_000)\n"
        "except UserError as e:\n    print('error:', e)\n"
        "names = sorted(p.name for p in d.parent.iterdir() if '.lock' not in p.name)\n"
        "print(sorted(p.name for p in d.iterdir()), names)\n"
    )
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    shell = (
        f"mount -t tmpfs -o size=64k tmpfs {mnt} && mkdir {mnt}/model && echo old > {mnt}/model/manifest.json"
        f" && {sys.executable} {script} {mnt}"
        f" && mount -o remount,ro {mnt} && {sys.executable} {script} {mnt}"
    )
    proc = subprocess.run(["unshare", "-m", "sh", "-c", shell], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    full, ro = [line for line in proc.stdout.splitlines() if line.startswith("error:")]
    assert "disk is full" in full and "model is as it was" in full, full
    assert "read-only" in ro, ro
    assert proc.stdout.count("['manifest.json'] ['model']") == 2  # old model intact, no stage left
    assert "Traceback" not in proc.stderr
