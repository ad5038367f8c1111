"""What the device subcommands share: options, the session (port or emulator), the local model
artifacts and the model check, consoles and progress bars."""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress

from tinyae import terminal
from tinyae.args import add_column_args, non_negative_int, positive_float, positive_int
from tinyae.errors import UserError, printable, printable_list
from tinyae.tools.link import protocol as p
from tinyae.tools.link.device import (
    DEFAULT_BAUD,
    DEFAULT_TIMEOUT,
    Device,
    DeviceError,
    open_port,
    windows_for,
)
from tinyae.tools.simdevice import port as _sim_port  # noqa: F401  (registers sim:// ports)
from tinyae.train.manifest import Manifest, mixed_files

DEFAULT_MODEL_DIR = Path("build/model")


class ModelMismatch(DeviceError):
    kind = "model"


def add_device_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("device")
    g.add_argument(
        "--port", help="serial device path or pyserial URL (socket://host:port, rfc2217://, loop://)"
    )
    g.add_argument(
        "--emulator",
        nargs="?",
        const="build/firmware/mps2_an386/tinyae.elf",
        metavar="ELF",
        help="start QEMU with this image (default build/firmware/mps2_an386/tinyae.elf) instead of --port",
    )
    g.add_argument(
        "--emulator-storage",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --emulator: the board's non-volatile storage (its calibration record), kept across runs "
        "(default build/emulator/storage)",
    )
    g.add_argument("--baud", type=positive_int, default=DEFAULT_BAUD, help="baud rate (default %(default)s)")
    g.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for a reply (with --emulator at least {EMULATOR_REPLY_TIMEOUT:g})",
    )
    g.add_argument(
        "--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="model artifacts (default build/model)"
    )
    g.add_argument("--quiet", action="store_true", help="no progress bars or live view")


DEFAULT_RETRIES = 2  # a serial line on a desk glitches; recover unless asked not to


def add_retries_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--retries",
        type=non_negative_int,
        default=DEFAULT_RETRIES,
        metavar="N",
        help="recover from link faults: stream lost windows again and resume after a device reboot, "
        f"up to N rounds (default {DEFAULT_RETRIES}; 0 reports lost windows and stops at a reboot)",
    )


# The emulated board is QEMU on the host's own cores: on a loaded host a reply can take seconds that a real
# board never would, and a dead emulator is seen by its process ending, not by a timeout. So --emulator
# waits at least this long for a reply.
EMULATOR_REPLY_TIMEOUT = 30.0


@contextmanager
def session(args: argparse.Namespace) -> Iterator[Device]:
    """The Device for --port (or a QEMU started for --emulator), after the handshake; always closed."""
    if args.emulator and args.port:
        raise UserError("give either --port or --emulator, not both")
    if args.emulator:
        from tinyae.tools.emulator.qemu import DEFAULT_STORAGE, Emulator

        storage = getattr(args, "emulator_storage", None) or DEFAULT_STORAGE
        emu_ctx: AbstractContextManager[Emulator | None] = Emulator(
            args.emulator, timeout=max(args.timeout, EMULATOR_REPLY_TIMEOUT), storage=storage
        )
    else:
        emu_ctx = nullcontext()
    with emu_ctx as emu:
        port = emu.url if emu is not None else args.port
        if not port:
            raise UserError("no device given; pass --port (see `tinyae ports`) or --emulator")
        timeout = args.timeout if emu is None else max(args.timeout, EMULATOR_REPLY_TIMEOUT)
        dev = Device(open_port(port, args.baud), timeout=timeout, name=port)
        try:
            info = dev.handshake()
            if emu is not None and info.calib_state == p.CalibState.CALIBRATED:
                stderr_console().print(stored_record_line(info, emu.storage), highlight=False, soft_wrap=True)
            yield dev
        finally:
            dev.close()


def stored_record_line(info: p.Info, storage: Path) -> str:
    """One line when the emulated board booted with a calibration record from its storage in use: the
    record changes its decisions, and it may have been left there by an earlier run."""
    return (
        f"note: the emulated board uses the calibration record in {storage} (crc {info.calib_crc:08x}, "
        f"{info.calib_windows} windows per phase; threshold {info.threshold:.6g}, the model's "
        f"{info.model_threshold:.6g}); `tinyae device calibrate --emulator --factory` (same storage) returns "
        "it to the model's values"
    )


# ---------------------------------------------------------------------------- artifacts
@dataclass
class Artifacts:
    model_dir: Path
    manifest: Manifest | None  # validated on load (train/manifest.py)
    tflite_sha256: str | None  # sha256 of model_int8.tflite when present

    @property
    def sha256(self) -> str | None:
        return None if self.manifest is None else self.manifest.model.sha256

    @property
    def vectors(self) -> Path:
        return self.model_dir / "test_vectors.npz"

    @property
    def tflite(self) -> Path:
        return self.model_dir / "model_int8.tflite"

    def require(self) -> Manifest:
        if self.manifest is None:
            raise UserError(
                f"no model artifacts in {self.model_dir} (manifest.json is missing); run `make model` or "
                "point --model-dir at the artifacts the firmware was built from"
            )
        return self.manifest


def load_artifacts(model_dir: Path) -> Artifacts:
    path = Path(model_dir) / "manifest.json"
    if not path.is_file():
        return Artifacts(Path(model_dir), None, None)
    manifest = Manifest.load(path)
    tfl = Path(model_dir) / "model_int8.tflite"
    sha = hashlib.sha256(tfl.read_bytes()).hexdigest() if tfl.is_file() else None
    mixed = mixed_files(Path(model_dir), manifest) if sha is not None else ""
    if mixed:
        raise UserError(
            f"the files in {model_dir} are from two builds: {mixed}; build the model again "
            "(`make model` rebuilds it, or says which command built it)"
        )
    return Artifacts(Path(model_dir), manifest, sha)


def model_matches(info: p.Info, art: Artifacts) -> bool | None:
    """True/False when the local artifacts exist, None when there are none to compare with."""
    return None if art.sha256 is None else info.model_sha256.hex() == art.sha256


def check_model(info: p.Info, art: Artifacts) -> None:
    """ModelMismatch when the device runs another model than the local artifacts describe."""
    if model_matches(info, art) is False:
        assert art.sha256 is not None
        raise ModelMismatch(
            f"the device runs model {info.model_sha256.hex()[:12]} but {art.model_dir} holds model "
            f"{art.sha256[:12]}; flash the firmware built from these artifacts or point --model-dir at the "
            "artifacts the device was built from"
        )
    if art.manifest is not None:
        w = art.manifest.window
        if (w.length, w.hop, w.channels) != (info.window_len, info.hop, info.channels):
            raise ModelMismatch(
                f"the device forms windows of {info.window_len}x{info.channels} (hop {info.hop}) but "
                f"{art.model_dir} says {w.length}x{w.channels} (hop {w.hop}); rebuild the firmware"
            )


def synthetic_source_note(port: str, manifest: Manifest | None = None) -> str:
    """One sentence for a device whose sensor-mode source is the built-in synthetic machine (the emulated
    board, a board built with SENSOR=synth): its samples are not a real sensor's, and a model trained on
    other data scores them as anomalous."""
    text = (
        f"{port}'s sensor is the built-in synthetic machine (tae_synth: a small motor's 3-axis vibration, "
        "the data of the default model), not a real sensor"
    )
    source = manifest.data.source if manifest is not None else "synthetic"
    if source.strip().lower() != "synthetic":
        text += (
            f"; this model was trained on {source} data, so its scores here say nothing about your machine "
            "(expect alarms): stream your own recordings to it with `tinyae device stream --csv FILE`"
        )
    return text


def channel_names(info: p.Info, art: Artifacts) -> list[str]:
    if art.manifest is not None and model_matches(info, art):
        names = list(art.manifest.window.channel_names)
        if len(names) == info.channels:
            return names
    return [f"ch{i}" for i in range(info.channels)]


# ---------------------------------------------------------------------------- consoles
def stdout_console() -> Console:
    """Rich on stdout; COLUMNS when set, else 110 columns when piped (a full sha256 fits on one line)."""
    return terminal.console(piped_width=110)


def stderr_console() -> Console:
    return terminal.console(stderr=True)


def progress(args: argparse.Namespace) -> Progress:
    """The device commands' bar: done/total windows or samples, a status text (tinyae/terminal.py)."""
    return terminal.progress(
        MofNCompleteColumn(),
        status="{task.fields[status]}",
        console_=stderr_console(),
        disable=bool(getattr(args, "quiet", False)),
    )


def fmt_bytes(n: int) -> str:
    return f"{n:,} B"


# ---------------------------------------------------------------------------- data to stream
def add_csv_args(parser: argparse.ArgumentParser, what: str) -> None:
    g = parser.add_argument_group("data")
    g.add_argument(
        "--csv",
        help=f"CSV to {what}, read with the model's data settings (manifest `data`): columns matched to the "
        "model's channels by name, its timestamp unit and label meaning, its sample rate checked; "
        "default: the model's test split",
    )
    add_column_args(g)


@dataclass
class Source:
    name: str
    values: np.ndarray  # [T, C] float32
    labels: np.ndarray | None  # [T] int8 per sample, or None
    series: int = 0  # which series of the data this is part of (reports number windows per series)
    first_window: int = 0  # the series window this source's first window is


def load_sources(args: argparse.Namespace, info: p.Info, art: Artifacts) -> list[Source]:
    """The CSV's series (one per file, windows never span two) or the model's test split."""
    csv_path = getattr(args, "csv", None)
    if csv_path:
        out = _csv_sources(args, info, art)
    else:
        art.require()
        if not art.vectors.is_file():
            raise UserError(
                f"{art.vectors} is missing; run `make model` (it writes the test vectors) or pass --csv"
            )
        with np.load(art.vectors) as z:
            values = np.asarray(z["series"], np.float32)
            labels = np.asarray(z["series_labels"], np.int8) if "series_labels" in z.files else None
            lengths = [int(n) for n in z["series_lengths"]] if "series_lengths" in z.files else [len(values)]
            names = [str(n) for n in z["series_names"]] if "series_names" in z.files else []
        if labels is not None and len(labels) != len(values):
            labels = None
        # one piece per test recording: windows never span two (the test vectors' and the report's windows)
        out = []
        for i, (a, b) in enumerate(zip(np.cumsum([0, *lengths[:-1]]), np.cumsum(lengths), strict=True)):
            name = names[i] if i < len(names) else f"recording {i}"
            lab = None if labels is None else labels[a:b]
            out.append(Source(f"{art.vectors} (test split: {name})", values[a:b], lab, series=i))
    total = sum(windows_for(len(s.values), info.window_len, info.hop) for s in out)
    if total == 0:
        longest = max(len(s.values) for s in out)
        raise UserError(
            f"{printable(csv_path or art.vectors, None)} has {longest} samples per series, fewer than one window of "
            f"{info.window_len}: nothing would be computed; pass a longer recording"
        )
    return out


def _csv_sources(args: argparse.Namespace, info: p.Info, art: Artifacts) -> list[Source]:
    from tinyae.train.progress import file_progress

    err = stderr_console()
    quiet = bool(getattr(args, "quiet", False))
    with file_progress(not quiet) as reading:
        if art.manifest is not None:
            from tinyae.train.data.settings import load_for_model

            series, notes = load_for_model(
                args.csv,
                art.manifest.to_dict(),
                channels=getattr(args, "channels", None),
                timestamp=getattr(args, "timestamp", None),
                label=getattr(args, "label", None),
                normal=getattr(args, "normal", None),
                progress=reading,
            )
        else:
            from tinyae.train.data import load_csv

            series = load_csv(
                args.csv,
                channels=getattr(args, "channels", None) or None,
                timestamp=getattr(args, "timestamp", None) or "auto",
                label=getattr(args, "label", None) or "auto",
                normal=getattr(args, "normal", None),
                progress=reading,
            )
            notes = [
                f"no model artifacts in {printable(art.model_dir, None)}: the columns of "
                f"{printable(args.csv, None)} ({printable_list(series[0].channel_names)}) "
                "feed the device's channels in file order"
            ]
            if series[0].n_channels != info.channels:
                names = printable_list(series[0].channel_names)
                raise UserError(
                    f"{printable(args.csv, None)} has {series[0].n_channels} channel columns ({names}) "
                    "but the device's model "
                    f"expects {info.channels}; select the model's channels with --channels"
                )
    for note in notes:
        err.print(f"note: {note}", highlight=False)
    return [Source(s.source, s.values, s.labels, series=i) for i, s in enumerate(series)]


def select_windows(
    sources: list[Source], L: int, hop: int, every: int = 1, limit: int | None = None
) -> list[Source]:
    """A subset of the windows to stream: every `every`-th window of each series, at most `limit` in all.

    Consecutive windows (every = 1) stream as one piece; with every > 1 each chosen window is sent as
    its own piece of L samples (the device starts a fresh window there; the host reference does the
    same), so a long test stream can be checked in a fraction of the time.
    """
    if every < 1:
        raise UserError(f"--every must be at least 1, got {every}")
    if limit is not None and limit < 1:
        raise UserError(f"--max-windows must be at least 1, got {limit}")
    out: list[Source] = []
    left = limit if limit is not None else 1 << 62
    for src in sources:
        n = windows_for(len(src.values), L, hop)
        if every == 1:
            k = min(n, left)
            if k <= 0:
                break
            end = len(src.values) if k == n else (k - 1) * hop + L
            labels = None if src.labels is None else src.labels[:end]
            out.append(Source(src.name, src.values[:end], labels, src.series, src.first_window))
            left -= k
            continue
        for w in range(0, n, every):
            if left <= 0:
                break
            a = w * hop
            labels = None if src.labels is None else src.labels[a : a + L]
            out.append(Source(f"{src.name} window {w}", src.values[a : a + L], labels, src.series, w))
            left -= 1
    return out
