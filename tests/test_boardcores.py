"""The board lane's machinery (tests/boardcores.py) on small inputs, without the cores: a PlatformIO
build script read through the recording environment, its defines as the shell hands them to the
compiler, and the option matrix compiling once per distinct preprocessing, never sharing a result
between option sets a source can tell apart."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from boardcores import Matrix, SConsRecorder, define_flags, run_build_script, split_defines

SCRIPT = """
from os.path import join
from SCons.Script import DefaultEnvironment, SConscript

env = DefaultEnvironment()
board = env.BoardConfig()
FRAMEWORK_DIR = env.PioPlatform().get_package_dir("framework-x")
SConscript(join(FRAMEWORK_DIR, "tools", "build-%s.py" % board.get("build.mcu")))
lib = env.Clone()
lib.Append(CPPDEFINES=["ONLY_FOR_THE_CORE_LIBRARY"])
env.Prepend(LIBS=[lib.BuildLibrary("x", "y")])
env.Append(CPPPATH=[join(FRAMEWORK_DIR, "variants", board.get("build.variant"))])
env["BUILDERS"]["ElfToBin"].action = env["BUILDERS"]["ElfToBin"].action
"""
MCU_SCRIPT = """
from os.path import join
from SCons.Script import DefaultEnvironment

env = DefaultEnvironment()
env.Append(
    CXXFLAGS=["-std=gnu++11"],
    CPPPATH=[join(env.PioPlatform().get_package_dir("framework-x"), "include")],
    CPPDEFINES=["PLAIN", ("F_CPU", "$BOARD_F_CPU"), ("VER", '\\\\"v4.4\\\\"'),
                ("BOARD", '\\\\"%s\\\\"' % env.BoardConfig().get("name"))],
)
"""


def test_a_build_script_is_read_through_the_recording_environment(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "main.py").write_text(SCRIPT)
    (tmp_path / "tools" / "build-chip.py").write_text(MCU_SCRIPT)
    board = {"build.mcu": "chip", "build.variant": "v1", "build.f_cpu": "240000000L", "name": "Dev Module"}
    env = SConsRecorder({"framework-x": tmp_path}, board)
    run_build_script(tmp_path / "tools" / "main.py", env)
    assert env.vars["CXXFLAGS"] == ["-std=gnu++11"]
    assert env.vars["CPPPATH"] == [str(tmp_path / "include"), str(tmp_path / "variants" / "v1")]
    assert "ONLY_FOR_THE_CORE_LIBRARY" not in str(env.vars["CPPDEFINES"])  # the clone is the core's
    # as the shell SCons runs the compile in hands them over: \" unescaped, a value with a space one word
    assert define_flags(env.vars["CPPDEFINES"], env) == [
        "-DPLAIN", "-DF_CPU=240000000L", '-DVER="v4.4"', '-DBOARD="Dev Module"',
    ]  # fmt: skip


def test_split_defines() -> None:
    rest, defines = split_defines(["gcc", "-DA", "-DB=2", "-UC", "-D__X(c)=c", "-D", "E", "x.c"])
    assert defines == {"A": "1", "B": "2", "C": None}
    assert rest == ["gcc", "-D__X(c)=c", "-D", "E", "x.c"]


SOURCES = {
    # reads nothing the options set: one compile stands for every option set
    "blind.c": "int tae_blind(void) { return 1; }\n",
    # tests SENSOR: one compile per value
    "tests.c": "#ifdef SENSOR\nint tae_s(void) { return 1; }\n#else\nint tae_s(void) { return 0; }\n#endif\n",
    # uses BAUD as a plain identifier, a macro only in some option sets
    "token.c": "static const int BAUD_DEFAULT = 9600;\nint tae_b(void) { int BAUD = BAUD_DEFAULT; return BAUD; }\n",
    # does not compile when SENSOR is set (its result must not be taken from another option set)
    "broken.c": "#ifdef SENSOR\n#error sensor build broken\n#endif\nint tae_k(void) { return 0; }\n",
}
OPTIONS = {"plain": [], "sensor": ["-DSENSOR"], "baud": ["-DBAUD=115200"], "other": ["-DUNRELATED=1"]}


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A build cache of this test's own (the matrix reuses compiles across runs through it)."""
    monkeypatch.setenv("TAE_BUILD_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_the_matrix_shares_a_compile_only_between_identical_preprocessings(tmp_path: Path, own_cache) -> None:
    for name, text in SOURCES.items():
        (tmp_path / name).write_text(text)
    cases = {
        ("env", option, name): ["gcc", "-Wall", "-Werror", *flags, "-fsyntax-only", str(tmp_path / name)]
        for option, flags in OPTIONS.items()
        for name in SOURCES
    }
    m = Matrix(cases)
    m.run(workers=2)
    own = {(o, s) for (_, o, s), r in m.results.items() if r.shared_with is None}
    assert {o for o, s in own if s == "blind.c"} == {"plain"}
    assert {o for o, s in own if s == "tests.c"} == {"plain", "sensor"}
    assert {o for o, s in own if s == "token.c"} == {"plain", "baud"}  # BAUD=115200 makes `int 115200`
    assert {o for o, s in own if s == "broken.c"} == {"plain", "sensor"}
    assert m.compiles == len(own) and m.probes == len(SOURCES)
    failed = {(o, s) for (_, o, s), r in m.results.items() if r.returncode != 0}
    assert failed == {("baud", "token.c"), ("sensor", "broken.c")}
    assert "sensor build broken" in m.failures("env", "sensor")["broken.c"]


# ------------------------------------------------------------------ the matrix's compiles kept by content


def _tree(tmp: Path) -> tuple[Path, dict[tuple[str, str, str], list[str]]]:
    """Sources that include a header through two include folders (`first` searched before `inc`)."""
    src = tmp / "tree"
    for folder in ("src", "first", "inc"):
        (src / folder).mkdir(parents=True, exist_ok=True)
    (src / "inc" / "h.h").write_text("#define H_VALUE 1\n")
    (src / "src" / "reads.c").write_text('#include "h.h"\nint tae_r(void) { return H_VALUE + X; }\n')
    (src / "src" / "blind.c").write_text("int tae_b(void) { return 2; }\n")
    (src / "src" / "broken.c").write_text("int tae_k(void) { return undeclared; }\n")
    includes = [f"-I{src / 'first'}", f"-I{src / 'inc'}"]
    cases = {
        ("env", option, name): [
            "gcc",
            "-Wall",
            "-Werror",
            *includes,
            *flags,
            "-fsyntax-only",
            str(src / "src" / name),
        ]
        for option, flags in {"one": ["-DX=1"], "two": ["-DX=2"]}.items()
        for name in ("reads.c", "blind.c", "broken.c")
    }
    return src, cases


def _run(src: Path, cases) -> Matrix:
    m = Matrix(cases, trees=[src])
    m.run(workers=2)
    return m


def _outcomes(m: Matrix) -> dict:
    return {k: (r.returncode, r.stderr, r.shared_with) for k, r in m.results.items()}


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_the_matrix_reuses_a_compile_only_while_what_it_read_is_the_same_bytes(tmp_path, own_cache):
    """A warm run compiles nothing and gives the same results (the failing compile's message too); new
    file times change nothing; an edited header recompiles only what includes it; a header added where
    the include search finds it first recompiles everything in that tree; other flags are other keys."""
    src, cases = _tree(tmp_path)
    cold = _run(src, cases)
    assert (cold.compiles, cold.reused, cold.probes, cold.probes_reused) == (4, 0, 3, 0)  # reads.c x2
    assert "undeclared" in cold.failures("env", "two")["broken.c"]

    warm = _run(src, cases)
    assert (warm.reused, warm.probes_reused) == (4, 3) and _outcomes(warm) == _outcomes(cold)

    later = time.time() + 3600
    for path in src.rglob("*"):
        os.utime(path, (later, later))
    assert _run(src, cases).reused == 4

    (src / "inc" / "h.h").write_text("#define H_VALUE (\n")  # only reads.c reads it
    edited = _run(src, cases)
    assert (edited.reused, edited.probes_reused) == (2, 2)
    assert set(edited.failures("env", "one")) == {"reads.c", "broken.c"}

    (src / "first" / "h.h").write_text("#define H_VALUE 3\n")  # found before inc/h.h from now on
    shadowed = _run(src, cases)
    assert (shadowed.reused, shadowed.probes_reused) == (0, 0)
    assert set(shadowed.failures("env", "one")) == {"broken.c"}

    flagged = {k: [c[0], "-Wextra", *c[1:]] for k, c in cases.items()}
    assert _run(src, flagged).reused == 0


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_the_matrix_compiles_every_time_with_the_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv("TAE_BUILD_CACHE", "off")
    src, cases = _tree(tmp_path)
    first, second = _run(src, cases), _run(src, cases)
    assert first.reused == second.reused == second.probes_reused == 0
    assert _outcomes(first) == _outcomes(second)


def test_a_compile_killed_by_a_signal_is_not_kept(tmp_path, own_cache):
    """A compiler that died (returncode < 0: killed, out of memory) says nothing about the source."""
    compiler = tmp_path / "cc"
    count = tmp_path / "count"
    compiler.write_text(f'#!/bin/sh\necho x >> "{count}"\nkill -9 $$\n')
    compiler.chmod(0o755)
    (tmp_path / "a.c").write_text("int a;\n")
    cases = {("env", "one", "a.c"): [str(compiler), "-fsyntax-only", str(tmp_path / "a.c")]}
    runs = [_run(tmp_path, cases) for _ in range(2)]
    assert all(m.results["env", "one", "a.c"].returncode < 0 and m.reused == 0 for m in runs)
    assert count.read_text().count("x") >= 4  # --version, probe and compile each run: nothing kept
