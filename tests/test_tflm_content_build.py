"""The TFLM library builds (mk/tflm/library.mk) are keyed by content, not by file times: the same bytes
under new times or at another path compile nothing; an edited source recompiles its object; an edited,
added or removed header, other flags or an edit of library.mk recompile them all. On a tiny library of
the chirale layout built for the host (seconds), and once on the real pinned library (board_libs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from boardlibs import ROOT, build_tflm, library

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs gcc and g++")


def build(src: Path, out: Path, *extra: str, lib: str = "chirale", arch: str = "host") -> str:
    proc = subprocess.run(
        ["make", "--no-print-directory", "-j2", "-f", "mk/tflm/library.mk", f"TFLM_LIB={lib}", f"TFLM_ARCH={arch}",
         f"TFLM_SRC={src}", f"TFLM_OUT={out}", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def outputs(out: Path) -> dict[str, int]:
    """Every object, the precompiled header (when the build has one) and the archive -> its modification
    time (ns): what a rebuild would rewrite."""
    files = [*out.joinpath("obj").rglob("*.o"), *out.joinpath("pch").glob("*.gch"), out / "libtflm.a"]
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in files}


def rebuilt(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {name for name, t in after.items() if before.get(name) != t}


def copy_with_new_times(src: Path, dst: Path) -> Path:
    """`cp -r` (no -p): the same bytes, every file with a new time."""
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    return dst


def later(folder: Path) -> None:
    stamp = time.time() + 3600
    for path in folder.rglob("*"):
        os.utime(path, (stamp, stamp))


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    src = tmp_path / "lib" / "src"
    (src / "tensorflow").mkdir(parents=True)
    (src / "tensorflow" / "a.cpp").write_text('#include "h.h"\nconst char *tae_a() { return __FILE__; }\n'
                                              "int tae_h() { return H_VALUE; }\n"
                                              '#include "tensorflow/lite/schema/schema_generated.h"\n'
                                              "int tae_s() { return tae_schema(); }\n")  # fmt: skip
    schema = src / "tensorflow" / "lite" / "schema"  # what mk/tflm/prefix.h precompiles
    schema.mkdir(parents=True)
    (schema / "schema_generated.h").write_text("#pragma once\ninline int tae_schema() { return 5; }\n")
    (src / "b.c").write_text("int tae_b(void) { return 2; }\n")
    kernels = src / "tensorflow" / "lite" / "kernels"  # selected twice by library.mk's rules: archived once
    kernels.mkdir(parents=True)
    (kernels / "kernel_util.cpp").write_text("int tae_k() { return 4; }\n")
    (src / "h.h").write_text("#define H_VALUE 1\n")
    return tmp_path / "lib"


def test_only_a_change_of_content_rebuilds_the_library(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert "3 sources" in build(tiny, out)
    first = outputs(out)
    assert len(first) == 5  # three objects, the precompiled header and the archive
    # a.cpp includes what the prefix header does: compiled with it; kernel_util.cpp includes nothing
    assert sorted(p.name for p in (out / "obj").rglob("*.with-pch")) == ["a.cpp.o.with-pch"]

    build(tiny, out)
    later(tiny)  # every source and header newer than every object
    build(tiny, out)
    assert rebuilt(first, outputs(out)) == set()

    moved = copy_with_new_times(tiny, tmp_path / "elsewhere")
    shutil.rmtree(tiny)  # the precompiled header came from there
    build(moved, out)
    assert rebuilt(first, outputs(out)) == set()
    assert f"-isystem {moved}/src" in (out / "flags.txt").read_text()  # a user compiles against the copy

    a_cpp = moved / "src" / "tensorflow" / "a.cpp"
    a_cpp.write_text(a_cpp.read_text() + "int tae_a2() { return 7; }\n")
    build(moved, out)
    edited = outputs(out)
    assert rebuilt(first, edited) == {"obj/tensorflow/a.cpp.o", "libtflm.a"}
    first = edited
    assert (out / "obj" / "tensorflow" / "a.cpp.o.with-pch").is_file()  # the .gch serves the copy too
    build(moved, tmp_path / "plain", "TFLM_PCH=0")
    assert (tmp_path / "plain" / "libtflm.a").read_bytes() == (out / "libtflm.a").read_bytes()

    (moved / "src" / "b.c").write_text("int tae_b(void) { return 3; }\n")
    build(moved, out)
    step = outputs(out)
    assert rebuilt(first, step) == {"obj/b.c.o", "libtflm.a"}

    (moved / "src" / "tensorflow" / "lite" / "schema" / "schema_generated.h").write_text(
        "#pragma once\ninline int tae_schema() { return 6; }\n"
    )  # a header the precompiled one holds: that too is rebuilt, and used
    build(moved, out)
    assert rebuilt(step, outputs(out)) == set(step)
    step = outputs(out)
    assert (out / "obj" / "tensorflow" / "a.cpp.o.with-pch").is_file()

    (moved / "src" / "h.h").write_text("#define H_VALUE 2\n")
    build(moved, out)
    assert rebuilt(step, outputs(out)) == set(step)
    step = outputs(out)

    (moved / "src" / "new.h").write_text("#define UNUSED 1\n")  # a header added can shadow another
    build(moved, out)
    assert rebuilt(step, outputs(out)) == set(step)
    step = outputs(out)

    build(moved, out, "TFLM_ARCH_FLAGS=-O1 -fPIC")
    assert rebuilt(step, outputs(out)) == set(step)
    step = outputs(out)

    (moved / "src" / "b.c").unlink()  # its object must leave the archive
    assert "2 sources" in build(moved, out, "TFLM_ARCH_FLAGS=-O1 -fPIC")
    members = subprocess.run(["ar", "t", str(out / "libtflm.a")], capture_output=True, text=True, check=True)
    assert sorted(members.stdout.split()) == ["a.cpp.o", "kernel_util.cpp.o"]


def test_the_prefix_header_and_the_pch_switch_decide_a_rebuild(tiny: Path, tmp_path: Path) -> None:
    """The precompiled header is part of the key: another prefix header (its content) or TFLM_PCH=0
    recompiles everything, the same ones with new times nothing; with or without it, the same bytes."""
    out = tmp_path / "out"
    build(tiny, out)
    first, archive = outputs(out), (out / "libtflm.a").read_bytes()

    (tmp_path / "ours").mkdir()
    prefix = tmp_path / "ours" / "prefix.h"
    prefix.write_text((ROOT / "mk" / "tflm" / "prefix.h").read_text() + "#include <cstdint>\n")
    build(tiny, out, f"TFLM_PREFIX={prefix}")
    assert rebuilt(first, outputs(out)) == set(first)
    step = outputs(out)
    later(tiny)
    later(prefix.parent)
    build(tiny, out, f"TFLM_PREFIX={prefix}")
    assert rebuilt(step, outputs(out)) == set()

    build(tiny, out, "TFLM_PCH=0")
    assert rebuilt(step, outputs(out)) == set(step) - {"pch/tae_tflm_prefix.h.gch"}
    assert not list((out / "obj").rglob("*.with-pch"))
    assert (out / "libtflm.a").read_bytes() == archive


def test_a_rejected_precompiled_header_fails_the_build(tiny: Path, tmp_path: Path) -> None:
    """The library is compiled with -w, which hides -Winvalid-pch: a .gch GCC does not use must not pass
    unseen (GCC would parse the headers itself, slowly). The stub beside it fails the compile and the
    recipe prints GCC's reason."""
    out = tmp_path / "out"
    build(tiny, out)
    (out / "pch" / "tae_tflm_prefix.h.gch").write_bytes(b"not a precompiled header\n")
    proc = subprocess.run(
        ["make", "--no-print-directory", "-f", "mk/tflm/library.mk", "TFLM_LIB=chirale", "TFLM_ARCH=host",
         f"TFLM_SRC={tiny}", f"TFLM_OUT={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "did not use the precompiled prefix header" in proc.stderr
    assert "tae_tflm_prefix.h.gch: not a PCH file" in proc.stderr


def test_the_same_sources_at_another_path_give_the_same_library(tiny: Path, tmp_path: Path) -> None:
    """Why the key may leave the sources' folder out: nothing of it is in the objects (__FILE__ is mapped)."""
    build(tiny, tmp_path / "one")
    build(copy_with_new_times(tiny, tmp_path / "other"), tmp_path / "two")
    assert (tmp_path / "one" / "libtflm.a").read_bytes() == (tmp_path / "two" / "libtflm.a").read_bytes()


@pytest.mark.board_libs
def test_a_fresh_copy_of_the_pinned_library_rebuilds_nothing(tmp_path: Path) -> None:
    """TensorFlowLite_ESP32 1.0.0 as a re-extracted tarball or a re-downloaded libdeps folder would be: the
    same bytes at another path, every file newer than the build's objects. The build is a copy of the
    lane's own (build/tflm/esp32-host, times kept), so that other tests keep reading theirs meanwhile."""
    built = build_tflm("esp32", "host")
    out = tmp_path / "esp32-host"
    shutil.copytree(built, out, symlinks=True)  # copy2: the objects keep their times
    before = outputs(out)
    sources = set((out / "stamps" / "sources.txt").read_text().split())
    assert len(before) == len(sources) + 1  # every object and the archive
    fresh = copy_with_new_times(library("esp32"), tmp_path / "TensorFlowLite_ESP32-1.0.0")
    build(fresh, out, lib="esp32")
    assert rebuilt(before, outputs(out)) == set()
    assert f"-isystem {fresh}/src" in (out / "flags.txt").read_text()
