"""Run PlatformIO (`pio`) for the board envs, and turn its failures into one sentence.

PlatformIO downloads platforms, toolchains and libraries from its registry on first use. Without
network access it fails after about a minute with an `HTTPClientError` traceback; this wrapper
recognizes that and says what happened and what to do instead. Everything else passes through.

Before `run -e ENV` it checks that the model in build/model (what the board envs compile) is one
that ENV's engine computes correctly (train/boards.py): a model with per-channel weights never
reaches a board whose TFLM library would compute it wrongly.

usage: tinyae pio run -e nano33ble [-t upload] [--upload-port PORT]
       tinyae pio device monitor [-p PORT] [-b BAUD]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tinyae.errors import UserError, run_cli
from tinyae.paths import ROOT
from tinyae.train.boards import check_model_runs_on
from tinyae.train.manifest import Manifest

BOARD_MODEL_DIR = ROOT / "build" / "model"  # platformio.ini: -I$PROJECT_DIR/build/model


def board_model_dir() -> Path:
    """build/model, or $TAE_BOARD_MODEL_DIR (the tests point it at their own artifacts)."""
    return Path(os.environ.get("TAE_BOARD_MODEL_DIR", BOARD_MODEL_DIR))


# What PlatformIO (and the requests/urllib3/socket layers under it) print when the registry or a
# download host cannot be reached.
NETWORK_PATTERNS = re.compile(
    r"HTTPClientError|InternetConnectionError|InternetIsOffline|You are not connected to the Internet"
    r"|Could not resolve host|Name or service not known|Temporary failure in name resolution"
    r"|Failed to establish a new connection|Max retries exceeded|ConnectionError|ConnectTimeout"
    r"|Network is unreachable|Connection refused|timed out",
    re.IGNORECASE,
)


def pio_executable() -> str:
    """The venv's pio (or $TAE_PIO, used by the tests to simulate failures)."""
    override = os.environ.get("TAE_PIO")
    if override:
        return override
    candidate = Path(sys.executable).parent / "pio"
    if candidate.exists():
        return str(candidate)
    raise UserError(
        "PlatformIO is not installed in the project venv; run `make setup` (it installs the 'boards' extra)"
    )


def env_of(args: Sequence[str]) -> str:
    for i, a in enumerate(args):
        if a in ("-e", "--environment") and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--environment="):
            return a.split("=", 1)[1]
    return "the board"


def explain_failure(args: Sequence[str], output: str) -> str | None:
    """One sentence for a failure we recognize, else None."""
    missing = re.search(r"UnknownPlatform: Unknown development platform '([^']+)'", output)
    if missing:  # `device monitor` and others do not download; without network nothing can
        return (
            f"PlatformIO has not installed the platform {missing.group(1)} that platformio.ini's envs use, "
            "and this machine cannot download it (no network access to the PlatformIO registry); run "
            "`make build BOARD=...` once on a machine with internet access, which installs it"
        )
    if NETWORK_PATTERNS.search(output):
        return (
            f"PlatformIO could not download the platform/library for {env_of(args)}: no network access to "
            "the PlatformIO registry; run this on a machine with internet access "
            "(or with the packages already in ~/.platformio)"
        )
    if re.search(r"Could not open port|could not open port|No such file or directory: '/dev/", output):
        return (
            "the serial port could not be opened; check the cable and pass PORT=/dev/ttyACM0 "
            "(see `pio device list`)"
        )
    if "Please specify `upload_port`" in output or "Error: Please specify" in output:
        return (
            "no board was found to upload to; connect it and pass PORT=/dev/ttyACM0 (see `pio device list`)"
        )
    return None


def env_build_flags(env: str, platformio_ini: Path = ROOT / "platformio.ini") -> str:
    """The tinyae options ENV compiles with: its platformio.ini build_flags (the bases it extends hold no
    tinyae option) and PLATFORMIO_BUILD_FLAGS (what `make build SENSOR=1 EXTRA_FLAGS=...` adds)."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read(platformio_ini)
    own = parser.get(f"env:{env}", "build_flags", fallback="")
    return f"{own} {os.environ.get('PLATFORMIO_BUILD_FLAGS', '')}"


def check_board_model(args: Sequence[str], model_dir: Path) -> None:
    """For `run -e ENV`: refuse a model ENV's engine would compute wrongly, or a sample rate its sensor
    mode cannot keep (tools/budget/sampling.py), in one sentence."""
    from tinyae.tools.budget.sampling import check_build

    env = env_of(args)
    if not args or args[0] != "run" or env == "the board":
        return
    manifest = model_dir / "manifest.json"
    if not manifest.is_file():
        raise UserError(f"{manifest} is missing; run `make model` before building a board env")
    m = Manifest.load(manifest)
    check_model_runs_on(m.quantization.weights, env)
    s = check_build(m.to_dict(), env, env_build_flags(env))
    if s is not None:
        for w in s.warnings:
            print(f"warning: {w}", file=sys.stderr)


def run(args: Sequence[str]) -> int:
    check_board_model(args, board_model_dir())
    cmd = [pio_executable(), *args]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    assert proc.stdout is not None
    captured: list[str] = []
    hidden: list[str] = []
    try:
        for line in proc.stdout:
            captured.append(line)
            # Show PlatformIO's progress; hold back a traceback until we know whether we can explain it.
            if hidden or line.startswith("Traceback (most recent call last)"):
                hidden.append(line)
            else:
                sys.stdout.write(line)
                sys.stdout.flush()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: PlatformIO stops too (never left running)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    rc = proc.wait()
    if rc == 0:
        return 0
    output = "".join(captured)
    reason = explain_failure(args, output)
    if reason is not None:
        raise UserError(reason)
    sys.stdout.write("".join(hidden))  # not recognized: show the rest as it was
    return rc


@run_cli
def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise UserError("no PlatformIO command given; for example: tinyae pio run -e nano33ble")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
