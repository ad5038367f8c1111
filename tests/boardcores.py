"""How each board's Arduino core compiles a sketch, read from the core's own build description (never
retyped), so that the board lane type-checks firmware/src with the include paths, defines and flags a
user of that core gets.

- nano33ble: ArduinoCore-mbed 4.5.0, variants/ARDUINO_NANO33BLE/{cxxflags,cflags,defines,includes}.txt
  and mbed_config.h, the same files the Arduino IDE and PlatformIO compile with.
- esp32dev: the ESP32 Arduino core 2.0.14 as PlatformIO packages it (framework-arduinoespressif32
  3.20014.231204). Its tools/platformio-build.py, which runs tools/platformio-build-<mcu>.py, is what
  PlatformIO executes to set the build environment. It is executed here against a recording stand-in
  for PlatformIO's SCons environment (SConsRecorder), so every include path, define and flag comes from
  those scripts: when they change, the lane compiles with the change.

Debian has no compiler for the ESP32's Xtensa LX6 (only the ESP8266's lx106 one), so the ESP32 files
are type-checked with arm-none-eabi-g++ -fsyntax-only -D__XTENSA__ (the headers then take their Xtensa
branches), the core's Xtensa code-generation switches (-m...) left out, and int32_t/uint32_t made
int/unsigned int as in the core's xtensa-esp32-elf-gcc 8.4 (IDF 4.4; arm-none-eabi's are long). It
proves the sources agree with the core's and libraries' declarations; it cannot generate Xtensa code
or link the image (the core's precompiled IDF libraries are not in the copy either).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boardlibs import ROOT, library, require

from tinyae import buildcache
from tinyae.paths import THIRD_PARTY
from tinyae.tools.boards.pio import pio_executable

# ----------------------------------------------------------------- PlatformIO's build scripts, recorded


class _Inert:
    """Stands in for what the scripts build beyond the flags (builders, nodes, actions): accepts any
    use and records nothing. The flags the lane needs are only ever set through Append/Prepend/Replace
    on the environment itself."""

    def __getattr__(self, name: str) -> _Inert:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert()

    def __call__(self, *args: object, **kwargs: object) -> _Inert:
        return _Inert()

    def __getitem__(self, key: object) -> _Inert:
        return _Inert()

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def __deepcopy__(self, memo: dict[int, object]) -> _Inert:
        return self

    def __str__(self) -> str:
        return ""


class _Platform:
    def __init__(self, packages: dict[str, Path]) -> None:
        self.packages = packages

    def get_package_dir(self, name: str) -> str:
        return str(self.packages[name])


class _BoardConfig:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.values


@dataclass
class SConsRecorder:
    """The part of PlatformIO's SCons environment a framework build script uses to set flags."""

    packages: dict[str, Path]
    board: dict[str, str]
    vars: dict[str, list[Any]] = field(default_factory=dict)

    def Append(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            self.vars.setdefault(key, []).extend(value if isinstance(value, list) else [value])

    def Prepend(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            self.vars[key] = (value if isinstance(value, list) else [value]) + self.vars.get(key, [])

    def Replace(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            self.vars[key] = value if isinstance(value, list) else [value]

    def Clone(self) -> _Inert:  # the core library's own environment, not the sketch's
        return _Inert()

    def PioPlatform(self) -> _Platform:
        return _Platform(self.packages)

    def BoardConfig(self) -> _BoardConfig:
        return _BoardConfig(self.board)

    def subst(self, text: str) -> str:
        """$BOARD_F_CPU and the like; anything else (build dirs) is left as written."""
        return str(text).replace("$BOARD_F_CPU", self.board.get("build.f_cpu", "$BOARD_F_CPU"))

    def __getitem__(self, key: str) -> Any:
        return self.vars[key] if key in self.vars else _Inert()

    def __getattr__(self, name: str) -> _Inert:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert()


def run_build_script(path: Path, env: SConsRecorder) -> None:
    """Execute a PlatformIO framework build script with `env` as its DefaultEnvironment (its
    `from SCons.Script import ...` line is the only one left out; SConscript runs the named script
    the same way, as SCons does)."""
    tree = ast.parse(path.read_text(), str(path))
    tree.body = [n for n in tree.body if not (isinstance(n, ast.ImportFrom) and n.module == "SCons.Script")]
    scope = {
        "__file__": str(path),
        "__name__": "platformio_build",
        "DefaultEnvironment": lambda: env,
        "SConscript": lambda script: run_build_script(Path(script), env),
    }
    exec(compile(tree, str(path), "exec"), scope)  # the pinned core's own build script


def arduino_boards_txt(core: Path, board: str) -> dict[str, str]:
    """`<board>.*` entries of the core's boards.txt (the Arduino IDE's board definitions)."""
    prefix = board + "."
    out = {}
    for line in (core / "boards.txt").read_text().splitlines():
        if line.startswith(prefix) and "=" in line:
            key, value = line[len(prefix) :].split("=", 1)
            out[key.strip()] = value.strip()
    return out


def shell_words(arg: str) -> list[str]:
    """What the shell SCons runs a compile in makes of one argument: SCons wraps an argument that
    holds a space in double quotes; the scripts write quotes in values shell-escaped (\\")."""
    return shlex.split(f'"{arg}"' if " " in arg else arg)


def define_flags(defines: list[Any], env: SConsRecorder) -> list[str]:
    flags = []
    for item in defines:
        if isinstance(item, (tuple, list)):
            name, value = item[0], env.subst(str(item[1]))
            flags += shell_words(f"-D{name}={value}")
        else:
            flags += shell_words(f"-D{item}")
    return flags


# ----------------------------------------------------------------------------------- the cores

SRC = ROOT / "firmware" / "src"
CORE_LIB = ROOT / "firmware" / "lib" / "tinyae" / "src"


@dataclass(frozen=True)
class Core:
    """One board's Arduino core as PlatformIO compiles a sketch for it (with the Debian cross compiler)."""

    board: str  # platformio.ini's `board`
    root: Path  # the core's folder in TAE_THIRD_PARTY
    cc: str
    cxx: str
    common: tuple[str, ...]  # defines, forced includes, include dirs (as system headers)
    cflags: tuple[str, ...]  # the core's flags for C files (language, code generation, warnings)
    cxxflags: tuple[str, ...]
    notes: tuple[str, ...] = ()  # where this differs from the board's real build, in words

    def flags(self, source: Path) -> list[str]:
        own = self.cflags if source.suffix == ".c" else self.cxxflags
        return [*own, *self.common]

    def compiler(self, source: Path) -> str:
        return self.cc if source.suffix == ".c" else self.cxx


def _isystem(dirs: Iterable[Path | str]) -> list[str]:
    return [arg for d in dirs for arg in ("-isystem", str(d))]


def nano33ble_core() -> Core:
    """ArduinoCore-mbed 4.5.0 for the Nano 33 BLE: its variant's flag files, as the IDE and PlatformIO use them."""
    core = library("mbed_core")
    variant = core / "variants" / "ARDUINO_NANO33BLE"
    prefix = core / "cores" / "arduino"

    def own(kind: str) -> tuple[str, ...]:
        return tuple(f for f in (variant / f"{kind}flags.txt").read_text().split() if f != "-c")

    includes = []
    for line in (variant / "includes.txt").read_text().split():
        assert line.startswith("-iwithprefixbefore"), line
        includes.append(prefix / line.removeprefix("-iwithprefixbefore/"))
    board = [
        "-DARDUINO=10810",
        "-DARDUINO_ARDUINO_NANO33BLE",
        "-DARDUINO_ARCH_NRF52840",
        "-DARDUINO_ARCH_MBED",
    ]
    common = (
        *shlex.split((variant / "defines.txt").read_text()),
        *board,
        "-include",
        str(variant / "mbed_config.h"),
        *_isystem([prefix, prefix / "api", variant, core / "libraries" / "Wire"]),
        *_isystem(includes),
    )
    return Core("nano33ble", core, "arm-none-eabi-gcc", "arm-none-eabi-g++", common, own("c"), own("cxx"))


# arm-none-eabi-gcc stands in for the ESP32's xtensa-esp32-elf-gcc 8.4 (esp-2021r2, the toolchain of
# core 2.0.14): the headers' Xtensa branches, and the Xtensa ABI's 32-bit types (int and unsigned int
# there, long and unsigned long on arm-none-eabi; ESP-IDF 5.0's migration guide, "int32_t and uint32_t
# for Xtensa compiler", records the later change to long).
XTENSA_STAND_IN = (
    "-D__XTENSA__",
    *("-U__INT32_TYPE__", "-D__INT32_TYPE__=int", "-U__UINT32_TYPE__", "-D__UINT32_TYPE__=unsigned int"),
    *("-U__INT32_MAX__", "-D__INT32_MAX__=0x7fffffff", "-U__UINT32_MAX__", "-D__UINT32_MAX__=0xffffffffU"),
    *("-U__INT32_C", "-D__INT32_C(c)=c", "-U__UINT32_C", "-D__UINT32_C(c)=c##U"),
)


def _cross_compilable(flag: str) -> bool:
    """The core's flags arm-none-eabi-gcc takes: not the Xtensa code-generation switches (-m...), not
    -MMD (dependency files: nothing is compiled to an object here)."""
    return not flag.startswith("-m") and flag != "-MMD"


def esp32_board(core: Path) -> dict[str, str]:
    """PlatformIO's `esp32dev` board settings the build scripts read, from the core's own `esp32`
    board (ESP32 Dev Module) in boards.txt, which PlatformIO's esp32dev.json mirrors."""
    txt = arduino_boards_txt(core, "esp32")
    board = {
        key: txt[key]
        for key in ("build.mcu", "build.core", "build.variant", "build.f_cpu", "build.flash_mode")
    }
    board["name"] = txt["name"]
    memory = core / "tools" / "sdk" / board["build.mcu"]
    wanted = board["build.flash_mode"] + "_qspi"
    if not (memory / wanted / "include").is_dir():
        present = sorted(d.parent.parent.name for d in memory.glob("*/include/sdkconfig.h"))
        assert len(present) == 1, f"{memory} holds sdkconfig.h for {present}, not for {wanted}"
        board["build.arduino.memory_type"] = present[0]
    return board


def esp32_build_env(core: Path) -> SConsRecorder:
    """The environment tools/platformio-build.py (and -esp32.py, which it runs) set for esp32dev."""
    env = SConsRecorder({"framework-arduinoespressif32": core}, esp32_board(core))
    run_build_script(core / "tools" / "platformio-build.py", env)
    return env


def esp32dev_core() -> Core:
    """The ESP32 Arduino core 2.0.14 (PlatformIO's framework-arduinoespressif32 3.20014.231204)."""
    core = library("esp32_core")
    env = esp32_build_env(core)
    board = env.board
    includes = [Path(p) for p in env.vars["CPPPATH"]]
    framework_libs = sorted(
        d / "src" for root in env.vars["LIBSOURCE_DIRS"] for d in Path(root).iterdir() if (d / "src").is_dir()
    )
    extra = f"-DARDUINO_{arduino_boards_txt(core, 'esp32')['build.board']}"  # esp32dev.json's extra_flags
    ccflags = [f for f in env.vars["CCFLAGS"] if _cross_compilable(f)]
    common = (
        *XTENSA_STAND_IN,
        *define_flags(env.vars["CPPDEFINES"], env),
        extra,
        *_isystem(includes),
        *_isystem(framework_libs),
    )
    notes = [
        "arm-none-eabi-g++ -fsyntax-only -D__XTENSA__ with the Xtensa 32-bit types: no Xtensa compiler in Debian",
        "left out: " + " ".join(f for f in env.vars["CCFLAGS"] if not _cross_compilable(f)),
    ]
    if "build.arduino.memory_type" in board:
        notes.append(
            f"sdkconfig.h from {board['build.arduino.memory_type']}: the copy holds no "
            f"{board['build.flash_mode']}_qspi (PlatformIO's esp32dev flash mode)"
        )
    return Core(
        "esp32dev",
        core,
        "arm-none-eabi-gcc",
        "arm-none-eabi-g++",
        tuple(common),
        tuple(ccflags + [f for f in env.vars["CFLAGS"] if _cross_compilable(f)]),
        tuple(ccflags + [f for f in env.vars["CXXFLAGS"] if _cross_compilable(f)]),
        tuple(notes),
    )


CORES = {"nano33ble": nano33ble_core, "esp32dev": esp32dev_core}


@functools.cache
def core(board: str) -> Core:
    return CORES[board]()


# ------------------------------------------------------------------------- platformio.ini's envs


@functools.cache
def project_config() -> dict[str, dict[str, Any]]:
    """platformio.ini as PlatformIO reads it (`pio project config`, offline), one dict per section."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORMIO_BUILD")}
    proc = subprocess.run(
        [pio_executable(), "project", "config", "--json-output"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {section: dict(items) for section, items in json.loads(proc.stdout)}


def as_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [line.strip() for line in str(value).splitlines() if line.strip()]


@dataclass(frozen=True)
class Env:
    """One env of platformio.ini: its board, its own build_flags and the libraries it depends on."""

    name: str
    board: str
    platform: str
    build_flags: tuple[str, ...]
    lib_deps: tuple[str, ...]

    def library_includes(self) -> list[Path]:
        """The src/ folder of each lib_deps entry (owner/Name@version -> TAE_THIRD_PARTY/Name-version)."""
        third_party = require()
        out = []
        for dep in self.lib_deps:
            if dep == "tinyae":
                continue
            match = re.fullmatch(r"[\w.-]+/([\w.-]+)@(\d+\.\d+\.\d+)", dep)
            assert match, f"{self.name}: lib_deps entry {dep!r} is not owner/name@version"
            src = third_party / f"{match[1]}-{match[2]}" / "src"
            assert src.is_dir(), f"{self.name} depends on {dep}, which {third_party} lacks ({src})"
            out.append(src)
        return out

    def flags(self, model_dir: Path) -> list[str]:
        """The env's build_flags as the compiler gets them, the model from `model_dir`."""
        out = []
        for flag in self.build_flags:
            out += shlex.split(flag.replace("$PROJECT_DIR/build/model", str(model_dir)))
        return out


@functools.cache
def env(name: str) -> Env:
    section = project_config()[f"env:{name}"]
    return Env(
        name,
        str(section["board"]),
        str(section["platform"]),
        tuple(as_list(section["build_flags"])),
        tuple(as_list(section.get("lib_deps", []))),
    )


def board_envs(board: str) -> list[str]:
    return sorted(
        s.split(":", 1)[1]
        for s, v in project_config().items()
        if s.startswith("env:") and v["board"] == board
    )


def library_sources() -> list[Path]:
    """The tinyae library's files PlatformIO compiles (library.json's srcFilter leaves the engines to
    firmware/src's board_engine_* wrappers)."""
    manifest = json.loads((CORE_LIB.parent / "library.json").read_text())
    dropped = {
        f.removeprefix("-<").removesuffix(">") for f in manifest["build"]["srcFilter"] if f.startswith("-<")
    }
    return sorted(p for p in CORE_LIB.iterdir() if p.suffix in (".c", ".cpp") and p.name not in dropped)


def env_sources() -> list[Path]:
    """Every file PlatformIO compiles for a board env besides the core's and the libraries' own."""
    return sorted(p for p in SRC.iterdir() if p.suffix in (".c", ".cpp")) + library_sources()


def library_flags() -> list[str]:
    return list(json.loads((CORE_LIB.parent / "library.json").read_text())["build"]["flags"])


# The option matrix. Every build option of platformio.ini's list is in an option set of each board it
# applies to (tests/test_core_boards.py checks that), a valued one in its documented form.
OPTION_SETS: dict[str, list[str]] = {
    "host-stream": [],
    "sensor": ["-DTAE_BOARD_SENSOR"],
    "sensor-synth": ["-DTAE_BOARD_SENSOR", "-DTAE_BOARD_SYNTH", "-DTAE_BOARD_SYNTH_SEED=7"],
    "sensor-calib-at-boot": ["-DTAE_BOARD_SENSOR", "-DTAE_CALIB_AT_BOOT"],
    "cost-micros-baud": ["-DTAE_COST_MICROS", "-DTAE_SERIAL_BAUD=115200"],
}
BOARD_OPTION_SETS: dict[str, dict[str, list[str]]] = {
    "nano33ble": {"sensor-rev2": ["-DTAE_BOARD_SENSOR", "-DTAE_NANO33BLE_REV2"]},
    "esp32dev": {
        "sensor-mpu6050": ["-DTAE_BOARD_SENSOR", "-DTAE_ESP32_MPU6050"],
        "sensor-adc-pins": ["-DTAE_BOARD_SENSOR", "-DTAE_ESP32_ADC_PINS=34,35,32"],
    },
}


def option_sets(board: str) -> dict[str, list[str]]:
    return {**OPTION_SETS, **BOARD_OPTION_SETS[board]}


# ------------------------------------------------------------------------------ the compile itself

# tinyae's own files: warnings as errors, and every warning a core relaxes (-Wno-X, -Wno-error=X) back on.
PROJECT_WARNINGS = ("-Wall", "-Wextra", "-Werror", "-Wshadow")


def project_warnings(core_flags: Iterable[str]) -> list[str]:
    out = list(PROJECT_WARNINGS)
    for flag in core_flags:
        if flag.startswith("-Wno-error="):
            out.append("-Werror=" + flag.removeprefix("-Wno-error="))
        elif flag.startswith("-Wno-"):
            out.append("-W" + flag.removeprefix("-Wno-"))
    return out


# GCC resolves (realpath) every path it tries in a system include folder, found or not: with the mbed core's
# 300 folders that was ~760,000 failed readlink calls per source, 1.3 s of system time against 0.6 s of
# compiling (strace -c of main.cpp; ESP-IDF's 200 folders alike). Without it the compile reads the same
# files and sees the same tokens; only the spelling of a toolchain header's path in line markers and
# messages differs (/usr/lib/gcc/.../../../arm-none-eabi/include/ for /usr/include/newlib/), which
# test_boardlib_sketch.py checks. The cores' and libraries' folders are spelled resolved already
# (tinyae.paths.THIRD_PARTY), so messages name their headers as before.
NO_CANONICAL_PATHS = "-fno-canonical-system-headers"


def compile_command(env_name: str, source: Path, model_dir: Path, options: Iterable[str] = ()) -> list[str]:
    """The syntax check of one source for one env: the core's flags, the env's build_flags and
    libraries, tinyae's include dirs, tinyae's warnings, then `options` (-D... of the option matrix)."""
    e = env(env_name)
    c = core(e.board)
    own = c.flags(source)
    cmd = [c.compiler(source), NO_CANONICAL_PATHS, *own, *_isystem(e.library_includes()), *e.flags(model_dir)]
    if source.parent == CORE_LIB:
        cmd += library_flags()
    cmd += [f"-I{CORE_LIB}", f"-I{SRC}", *project_warnings(own), *options, "-fsyntax-only", str(source)]
    return cmd


@dataclass
class Result:
    returncode: int
    stderr: str
    shared_with: str | None = None  # the option set whose compile stands for this one (same preprocessing)


_DEFINE = re.compile(r"^-([DU])(\w+)(?:=(.*))?$", re.S)


def split_defines(cmd: list[str]) -> tuple[list[str], dict[str, str | None]]:
    """(the command without its -D/-U flags, name -> value of what they define: None when undefined)."""
    rest: list[str] = []
    defines: dict[str, str | None] = {}
    for arg in cmd:
        m = _DEFINE.match(arg)
        if m is None or "(" in arg.split("=", 1)[0]:
            rest.append(arg)
        else:
            defines[m[2]] = None if m[1] == "U" else (m[3] if m[3] is not None else "1")
    return rest, defines


# ------------------------------------------------------------------- compiles cached by their content

# Most compiles of the matrix give the same result run after run: it only changes when a source, a header
# it reads, a flag or the compiler does. Each compile (and each -E probe) is a build-cache entry
# (tinyae/buildcache.py, kind "sketch") keyed by the compiler's version and the whole command (response
# files @... by content) and holding the result and what the compile read, as ccache's direct mode does:
# every file the preprocessor opened (its -MD list) with its sha256, and the list of file names of each
# tree those files are in (the pinned cores and libraries, firmware/, the model folder), so that a header
# added where it would be found first is a change too. An entry is reused only when all of that is
# still the same bytes; file times play no part. Failing compiles are kept with their message: the
# compiler's verdict on the same inputs is the same, and a run that is fixing one file should not pay
# for recompiling the others. A compile killed by a signal (returncode < 0) or that timed out is not kept.
SKETCH_CACHE_ENTRIES = 4096


@dataclass
class Outcome:
    returncode: int
    stderr: str
    present: list[str]  # probe only: the names of interest the preprocessed text mentions
    reused: bool = False


class _Uncacheable(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.returncode)
        self.outcome = outcome


class InputState:
    """The current content of files and trees, hashed once per matrix run (threads share it)."""

    def __init__(self, trees: Iterable[Path]) -> None:
        self.trees = sorted({t.resolve() for t in trees}, key=lambda t: -len(t.parts))
        self._files: dict[str, str] = {}
        self._listings: dict[str, str] = {}

    def file(self, path: str) -> str:
        if path not in self._files:
            try:
                self._files[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            except OSError:
                self._files[path] = "<missing>"
        return self._files[path]

    def tree_of(self, path: str) -> str | None:
        p = Path(path)
        return next((str(t) for t in self.trees if p.is_relative_to(t)), None)

    def listing(self, tree: str) -> str:
        if tree not in self._listings:
            names = sorted(
                os.path.relpath(os.path.join(d, f), tree)
                for d, _, files in os.walk(tree)
                for f in files
                if not f.startswith(".") and not f.endswith("~")  # editors' swap and backup files
            )
            self._listings[tree] = hashlib.sha256("\n".join(names).encode()).hexdigest()
        return self._listings[tree]


def default_trees(*extra: Path) -> list[Path]:
    """The trees whose file lists count: each pinned core and library, firmware/, and `extra`."""
    pinned = [d for d in THIRD_PARTY.iterdir() if d.is_dir()] if THIRD_PARTY.is_dir() else []
    return [*pinned, ROOT / "firmware", *extra]


def _dependencies(depfile: Path) -> list[str]:
    """The files of a make-style dependency list (-MD -MF): every input the preprocessor opened."""
    text = depfile.read_text().replace("\\\n", " ")
    _, _, deps = text.partition(": ")
    words = re.split(r"(?<!\\)\s+", deps.strip())
    return [os.path.realpath(w.replace("\\ ", " ")) for w in words if w]


def _compile(cmd: list[str], wanted: list[str] | None, depfile: Path | None) -> Outcome:
    extra = ["-MD", "-MF", str(depfile)] if depfile is not None else []
    proc = subprocess.run([*cmd[:-1], *extra, cmd[-1]], capture_output=True, text=True, timeout=900)
    present: list[str] = []
    if wanted is not None and proc.returncode == 0:
        tokens = set(re.findall(r"\w+", proc.stdout))
        present = [n for n in wanted if n in tokens]
    return Outcome(proc.returncode, proc.stderr, present)


def cached_compile(cmd: list[str], state: InputState, *, names: Iterable[str] | None = None) -> Outcome:
    """Run `cmd` (a -fsyntax-only compile, or a -E -dU probe when `names` is given: then the outcome
    lists which of `names` the preprocessed text defines, undefines or mentions), or reuse its entry."""
    wanted = sorted(set(names)) if names is not None else None
    if buildcache.root() is None:  # TAE_BUILD_CACHE=off: compile every time
        return _compile(cmd, wanted, None)
    key = buildcache.Key("sketch-compile").tool(cmd[0]).text(*cmd)
    for arg in cmd:
        if arg.startswith("@"):
            key.file(Path(arg[1:]), arg)
    if wanted is not None:
        key.text("probe", *wanted)

    compiled: list[bool] = []

    def build(out: Path) -> None:
        compiled.append(True)
        depfile = out / "deps.d"
        outcome = _compile(cmd, wanted, depfile)
        if outcome.returncode < 0 or not depfile.is_file():
            raise _Uncacheable(outcome)
        deps = _dependencies(depfile)
        trees = {t for t in map(state.tree_of, deps) if t is not None}
        record = {
            "returncode": outcome.returncode,
            "stderr": outcome.stderr,
            "present": outcome.present,
            "inputs": {d: state.file(d) for d in deps},
            "trees": {t: state.listing(t) for t in sorted(trees)},
        }
        (out / "result.json").write_text(json.dumps(record))

    for attempt in range(2):
        try:
            out = buildcache.entry("sketch", key, build, max_entries=SKETCH_CACHE_ENTRIES)
        except _Uncacheable as e:
            return e.outcome
        record = json.loads((out / "result.json").read_text())
        fresh = all(state.file(f) == h for f, h in record["inputs"].items()) and all(
            state.listing(t) == h for t, h in record["trees"].items()
        )
        if fresh or attempt == 1:
            return Outcome(record["returncode"], record["stderr"], record["present"], reused=not compiled)
        buildcache.invalidate(out)  # something it read changed since: compile again
    raise AssertionError("unreachable")


def cached_run(cmd: list[str]) -> Outcome:
    """One compile of the board lane outside the matrix, kept the same way (its source at a stable path)."""
    return cached_compile(cmd, InputState(default_trees()))


@dataclass
class Matrix:
    """Sources x option sets, each compiled once per distinct preprocessing.

    Within one (env, source), the first option set is preprocessed with -E -dU, which lists every macro
    the preprocessor expanded or tested. Another option set whose defines differ from it only in macros
    that are neither listed nor present as a token in the preprocessed text preprocesses identically, so
    one compile stands for both; every other option set is compiled itself. Probes and compiles are
    reused across runs when nothing they read changed (cached_compile): `compiles` counts the distinct
    compiles the matrix needs, `reused` how many of them (and `probes_reused` of the probes) came from
    the cache rather than the compiler."""

    cases: dict[tuple[str, str, str], list[str]]  # (env, option set, source name) -> command
    trees: list[Path] = field(default_factory=default_trees)
    results: dict[tuple[str, str, str], Result] = field(default_factory=dict)
    probes: int = 0
    compiles: int = 0
    probes_reused: int = 0
    reused: int = 0

    def run(self, workers: int) -> None:
        groups: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        for key in self.cases:
            groups.setdefault((key[0], key[2]), []).append(key)
        state = InputState(self.trees)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            probes = dict(zip(groups, pool.map(lambda g: self._probe(groups[g], state), groups), strict=True))
            self.probes = len(probes)
            self.probes_reused = sum(1 for p in probes.values() if p.reused)
            own: list[tuple[str, str, str]] = []
            stands_for: dict[tuple[str, str, str], tuple[str, str, str]] = {}
            for group, keys in groups.items():
                rep = keys[0]
                own.append(rep)
                for key in keys[1:]:
                    if self._same_preprocessing(rep, key, probes[group]):
                        stands_for[key] = rep
                    else:
                        own.append(key)
            done = dict(zip(own, pool.map(lambda k: cached_compile(self.cases[k], state), own), strict=True))
        self.compiles = len(done)
        self.reused = sum(1 for o in done.values() if o.reused)
        for key, outcome in done.items():
            self.results[key] = Result(outcome.returncode, outcome.stderr)
        for key, rep in stands_for.items():
            self.results[key] = Result(done[rep].returncode, done[rep].stderr, shared_with=rep[1])

    def _probe(self, keys: list[tuple[str, str, str]], state: InputState) -> Outcome:
        """The group's first command preprocessed; which macros that differ within the group it reads."""
        cmd = [a for a in self.cases[keys[0]] if a != "-fsyntax-only"]
        names = {n for k in keys for n in split_defines(self.cases[k])[1]}
        return cached_compile([*cmd[:-1], "-E", "-dU", cmd[-1]], state, names=names)

    def _same_preprocessing(
        self, rep: tuple[str, str, str], key: tuple[str, str, str], probe: Outcome
    ) -> bool:
        if probe.returncode != 0:
            return False
        rest_a, defs_a = split_defines(self.cases[rep])
        rest_b, defs_b = split_defines(self.cases[key])
        if rest_a != rest_b:
            return False
        differ = {n for n in defs_a.keys() | defs_b.keys() if defs_a.get(n, None) != defs_b.get(n, None)}
        return not differ & set(probe.present)

    def failures(self, env_name: str, option_set: str) -> dict[str, str]:
        return {
            src: r.stderr[-2000:]
            for (e, o, src), r in self.results.items()
            if e == env_name and o == option_set and r.returncode != 0
        }
