"""PlatformIO board envs (checked offline with `pio project config`), the pio wrapper's one-sentence
failures (simulated: the registry is unreachable here and a real attempt takes a minute), the make
fragment, and the library manifest."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from clirun import tinyae

from tinyae.tools.simdevice.port import sim_manifest

ROOT = Path(__file__).resolve().parent.parent
PIO = ROOT / ".venv" / "bin" / "pio"
ENVS = {"nano33ble", "nano33ble_compiled", "esp32dev", "esp32dev_compiled"}
TFLM_LIBS = {
    "nano33ble": "spaziochirale/Chirale_TensorFLowLite",
    "esp32dev": "tanakamasayuki/TensorFlowLite_ESP32",
}
EXACT = re.compile(r"^[\w.-]+/[\w.-]+@\d+\.\d+\.\d+$")


def as_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [line.strip() for line in str(value).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def config() -> dict[str, dict[str, object]]:
    if not PIO.exists():
        pytest.skip("PlatformIO is not installed in the venv (boards extra)")
    proc = subprocess.run(
        [str(PIO), "project", "config", "--json-output"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return {section: dict(items) for section, items in json.loads(proc.stdout)}


def test_four_envs_with_pinned_platforms_and_engines(config: dict[str, dict[str, object]]) -> None:
    envs = {s.split(":", 1)[1]: v for s, v in config.items() if s.startswith("env:")}
    assert set(envs) == ENVS
    for name, env in envs.items():
        assert re.fullmatch(r"\w+@\d+\.\d+\.\d+", str(env["platform"])), f"{name}: platform not pinned"
        flags = " ".join(as_list(env["build_flags"]))
        assert "-ffp-contract=off" in flags and "build/model" in flags
        deps = as_list(env.get("lib_deps", []))
        assert "tinyae" in deps
        board = name.removesuffix("_compiled")
        if name.endswith("_compiled"):
            assert "TAE_ENGINE_COMPILED" in flags and "TAE_ENGINE_TFLM" not in flags
            assert not any("TensorF" in d for d in deps), f"{name} must not depend on TFLM"
        else:
            assert "TAE_ENGINE_TFLM" in flags and "TAE_ENGINE_COMPILED" not in flags
            assert any(d.startswith(TFLM_LIBS[board] + "@") for d in deps), deps
        for dep in deps:
            if dep != "tinyae":
                assert EXACT.match(dep), f"{name}: lib_deps entry {dep!r} is not pinned to an exact version"


def test_project_dirs_exist(config: dict[str, dict[str, object]]) -> None:
    section = config["platformio"]
    assert Path(str(section["src_dir"])).resolve() == ROOT / "firmware" / "src"
    assert (ROOT / "firmware" / "src" / "main.cpp").exists()
    assert Path(str(section["lib_dir"])).resolve() == ROOT / "firmware" / "lib"
    assert str(section["build_dir"]).startswith(str(ROOT / "build"))  # git-ignored, removed by make clean


def test_library_json_keeps_engines_out_of_the_library_build() -> None:
    lib = json.loads((ROOT / "firmware" / "lib" / "tinyae" / "library.json").read_text())
    assert lib["name"] == "tinyae"
    src_filter = lib["build"]["srcFilter"]
    assert "-<tae_engine_tflm.cpp>" in src_filter and "-<tae_engine_compiled.c>" in src_filter
    assert "-ffp-contract=off" in lib["build"]["flags"]
    # and the board sources compile exactly one of them, selected by the env's define
    src = ROOT / "firmware" / "src"
    assert "#if defined(TAE_ENGINE_TFLM)" in (src / "board_engine_tflm.cpp").read_text()
    assert "#if defined(TAE_ENGINE_COMPILED)" in (src / "board_engine_compiled.c").read_text()


def fake_pio(tmp_path: Path, text: str, rc: int, weights: str = "per_tensor") -> dict[str, str]:
    script = tmp_path / "pio"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{text}\nEOF\nexit {rc}\n")
    script.chmod(0o755)
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    manifest = sim_manifest()
    manifest.quantization.weights = weights
    manifest.write(model / "manifest.json")
    return {**os.environ, "TAE_PIO": str(script), "TAE_BOARD_MODEL_DIR": str(model)}


def run_wrapper(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`tinyae pio ARGS` in this process (tests/clirun.py); the wrapper's child is the fake pio."""
    return tinyae("pio", *args, env=env, cwd=ROOT)


# What `pio run -e nano33ble` printed on this machine (no route to the registry), plus the traceback
# shape PlatformIO prints for other network errors.
OFFLINE_OUTPUTS = [
    "Processing nano33ble (platform: nordicnrf52@10.11.0; board: nano33ble; framework: arduino)\n"
    "Platform Manager: Installing nordicnrf52 @ 10.11.0\nHTTPClientError: ",
    "Library Manager: Installing spaziochirale/Chirale_TensorFLowLite @ 2.0.0\n"
    'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
    "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.registry.platformio.org', port=443): "
    "Max retries exceeded",
]


@pytest.mark.parametrize("output", OFFLINE_OUTPUTS, ids=["http-client-error", "traceback"])
def test_offline_failure_is_one_sentence(tmp_path: Path, output: str) -> None:
    proc = run_wrapper(fake_pio(tmp_path, output, 1), "run", "-e", "nano33ble")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "error: PlatformIO could not download the platform/library for nano33ble: no network access to the "
        "PlatformIO registry; run this on a machine with internet access (or with the packages already in "
        "~/.platformio)"
    ]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_other_failures_pass_through(tmp_path: Path) -> None:
    output = "src/main.cpp:3:10: fatal error: model_config.h: No such file\n*** [main.o] Error 1"
    proc = run_wrapper(fake_pio(tmp_path, output, 1), "run", "-e", "esp32dev")
    assert proc.returncode == 1
    assert "fatal error: model_config.h" in proc.stdout
    assert "registry" not in proc.stderr


def test_success_passes_output(tmp_path: Path) -> None:
    proc = run_wrapper(fake_pio(tmp_path, "RAM: 10.0%\n==== [SUCCESS] ====", 0), "run", "-e", "esp32dev")
    assert proc.returncode == 0 and "[SUCCESS]" in proc.stdout and proc.stderr == ""


def test_make_targets_wrap_the_helper() -> None:
    for target, board, expect in [
        ("build", "esp32dev_compiled", "tinyae pio run -e esp32dev_compiled"),
        ("flash", "nano33ble", "tinyae pio run -e nano33ble -t upload --upload-port '/dev/ttyACM7'"),
    ]:
        proc = subprocess.run(
            ["make", "-n", target, f"BOARD={board}", "PORT=/dev/ttyACM7"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert expect in proc.stdout
    proc = subprocess.run(
        ["make", "-n", "serial-monitor", "PORT=/dev/ttyUSB1"], cwd=ROOT, capture_output=True, text=True
    )
    assert "tinyae pio device monitor -b 115200 -p '/dev/ttyUSB1'" in proc.stdout  # paths go quoted
    proc = subprocess.run(
        ["make", "-n", "build", "BOARD=esp32dev", "SENSOR=synth"], cwd=ROOT, capture_output=True, text=True
    )
    assert "PLATFORMIO_BUILD_FLAGS='-D TAE_BOARD_SENSOR -D TAE_BOARD_SYNTH'" in proc.stdout
    proc = subprocess.run(
        ["make", "-n", "build", "BOARD=nano33ble", "SENSOR=1", "EXTRA_FLAGS=-D TAE_NANO33BLE_REV2"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert "PLATFORMIO_BUILD_FLAGS='-D TAE_BOARD_SENSOR -D TAE_NANO33BLE_REV2'" in proc.stdout


def test_make_rejects_unknown_board() -> None:
    proc = subprocess.run(
        ["make", "-s", "board-check-args", "BOARD=uno"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "BOARD must be one of: nano33ble nano33ble_compiled esp32dev esp32dev_compiled" in proc.stderr


@pytest.mark.parametrize("env", ["nano33ble", "esp32dev"])
def test_a_per_channel_model_never_reaches_a_library_without_per_channel_support(
    tmp_path: Path, env: str
) -> None:
    proc = run_wrapper(fake_pio(tmp_path, "==== [SUCCESS] ====", 0, weights="per_channel"), "run", "-e", env)
    assert proc.returncode == 2 and "[SUCCESS]" not in proc.stdout
    lib = {"nano33ble": "Chirale_TensorFLowLite 2.0.0", "esp32dev": "TensorFlowLite_ESP32 1.0.0"}[env]
    assert proc.stderr.strip().splitlines() == [
        f"error: the model has per-channel FULLY_CONNECTED weights, which {lib} (env {env}) computes with "
        'the first channel\'s scale (wrong results); regenerate it with quantize.weights = "auto" or '
        '"per_tensor" (make model), or build the compiled-engine env'
    ]


@pytest.mark.parametrize("env", ["nano33ble_compiled", "esp32dev_compiled"])
def test_the_compiled_engine_takes_per_channel_models(tmp_path: Path, env: str) -> None:
    proc = run_wrapper(fake_pio(tmp_path, "==== [SUCCESS] ====", 0, weights="per_channel"), "run", "-e", env)
    assert proc.returncode == 0 and "[SUCCESS]" in proc.stdout


def test_a_board_build_without_a_model_says_so(tmp_path: Path) -> None:
    env = fake_pio(tmp_path, "==== [SUCCESS] ====", 0)
    (tmp_path / "model" / "manifest.json").unlink()
    proc = run_wrapper(env, "run", "-e", "nano33ble")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: ") and "run `make model`" in proc.stderr


# ----------------------------------------------------------- build options: documented, shell-proof

# platformio.ini's list of build options: `;   -D NAME[=example]  what it does`.
DOCUMENTED_OPTION = re.compile(r"^;\s+(-D\s*(TAE_\w+)(?:=(\S+))?)\s", re.M)


def documented_options() -> dict[str, str]:
    """NAME -> the flag as platformio.ini documents it (its example value included)."""
    text = (ROOT / "platformio.ini").read_text()
    return {m[2]: m[1] for m in DOCUMENTED_OPTION.finditer(text)}


def test_every_documented_build_option_is_in_the_board_lane_matrix() -> None:
    """tests/test_boardlib_sketch.py compiles each option (valued ones in their documented form) for
    each board it applies to (TAE_NANO33BLE_* / TAE_ESP32_* to that board, the others to both)."""
    from boardcores import option_sets

    documented = documented_options()
    assert {"TAE_BOARD_SENSOR", "TAE_ESP32_ADC_PINS", "TAE_COST_MICROS", "TAE_CALIB_AT_BOOT"} <= set(
        documented
    )
    for board, prefix in [("nano33ble", "TAE_NANO33BLE_"), ("esp32dev", "TAE_ESP32_")]:
        compiled = {flag for flags in option_sets(board).values() for flag in flags}
        for name, flag in documented.items():
            if name.startswith(("TAE_NANO33BLE_", "TAE_ESP32_")) and not name.startswith(prefix):
                continue
            assert "".join(flag.split()) in compiled, f"{flag} is documented but not compiled for {board}"


def shells() -> list[list[str]]:
    """The shells a build command may meet: dash (Debian's /bin/sh), bash as /bin/sh (macOS) and as
    itself, and zsh/ksh/busybox where installed."""
    found = [
        ["dash", "-c"],
        ["bash", "--posix", "-c"],
        ["bash", "-c"],
        ["zsh", "-c"],
        ["ksh", "-c"],
        ["busybox", "sh", "-c"],
    ]
    return [s for s in found if shutil.which(s[0])]


def survives(shell: list[str], arg: str) -> bool:
    """Whether `arg`, written unquoted on a command line (as SCons writes -D flags), reaches the
    program as itself."""
    proc = subprocess.run([*shell, f'printf "%s\\n" {arg}'], capture_output=True, text=True, timeout=30)
    return proc.returncode == 0 and proc.stdout == arg + "\n"


@pytest.mark.parametrize("shell", shells(), ids=lambda s: "-".join(s[:-1]))
def test_every_documented_flag_survives_the_shell(shell: list[str]) -> None:
    """A flag a shell rewrites (brace expansion, globbing, quotes, $...) reaches the compiler as
    something else: every documented one is inert; the braced list the ADC pins once took is not."""
    for flag in documented_options().values():
        assert survives(shell, "".join(flag.split())), f"{shell[0]} rewrites {flag}"
    if shell[0] in ("bash", "zsh", "ksh"):
        assert not survives(shell, "-DTAE_ESP32_ADC_PINS={34,35,32}")  # the form this test exists for


@pytest.mark.parametrize("shell", [s for s in ["/bin/sh", shutil.which("bash")] if s], ids=["sh", "bash"])
def test_make_build_extra_flags_reach_platformio_intact(shell: str) -> None:
    """`make build EXTRA_FLAGS=...` (mk/boards.mk) hands the documented ADC pin list to PlatformIO as
    written, under Debian's /bin/sh and under bash (macOS's /bin/sh): PlatformIO's own parse of
    PLATFORMIO_BUILD_FLAGS (`pio project config`, offline) sees the value 34,35,32."""
    if not PIO.exists():
        pytest.skip("PlatformIO is not installed in the venv (boards extra)")
    flag = documented_options()["TAE_ESP32_ADC_PINS"]
    probe = f"tae-pio-flags: ; @$(BOARD_ENV_VARS) {PIO} project config --json-output"
    proc = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", probe, "tae-pio-flags",
         "BOARD=esp32dev", "SENSOR=1", f"EXTRA_FLAGS={flag}", f"SHELL={shell}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    section = dict(dict(json.loads(proc.stdout))["env:esp32dev"])
    words = [w for f in as_list(section["build_flags"]) for w in shlex.split(f)]
    defines = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "-D"]
    assert "TAE_BOARD_SENSOR" in defines
    assert "TAE_ESP32_ADC_PINS=34,35,32" in defines, defines
