"""`tinyae ...` run inside the test process: what a command prints and the exit code it returns, without
starting a Python (a `python -m tinyae` subprocess costs 0.5-1 s of imports).

For tests about a command's sentences and exit codes. What depends on a real process stays on one:
exit codes from signals (tests/test_signals.py), the console script and `python -m tinyae` themselves
(tests/test_fast_startup.py), output a child process writes to the terminal's file descriptors.

    proc = tinyae("model", "--quiet", "--set", "train.epochs=0", env={"TAE_X": "1"})
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")

The result is a subprocess.CompletedProcess, so a test reads it as it read the subprocess's.
Around the call, os.environ, the working directory and the Ctrl-C and SIGTERM handlers (tinyae.errors.run_cli
installs both) are put back as they were.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path


def tinyae(
    *argv: str, env: Mapping[str, str] | None = None, cwd: Path | str | None = None
) -> subprocess.CompletedProcess[str]:
    """`tinyae *argv` through tinyae.cli.main; env replaces os.environ for the call (as subprocess's
    env= does), cwd is the working directory."""
    from tinyae.cli import main

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    out, err = io.StringIO(), io.StringIO()
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:  # argparse: --help, a usage error
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for s, handler in saved_handlers.items():
            signal.signal(s, handler)
    return subprocess.CompletedProcess(["tinyae", *argv], int(code), out.getvalue(), err.getvalue())
