"""The board lane's machinery (tests/boardcores.py) on small inputs, without the cores: a PlatformIO
build script read through the recording environment, its defines as the shell hands them to the
compiler, and the option matrix compiling once per distinct preprocessing, never sharing a result
between option sets a source can tell apart."""

from __future__ import annotations

import shutil
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


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_the_matrix_shares_a_compile_only_between_identical_preprocessings(tmp_path: Path) -> None:
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
