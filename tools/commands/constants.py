"""Every constant that decides an alarm, the device's against the local artifacts': the one comparison
`tinyae device info` shows and `verify` fails on.

A device decides with its model, its window, its front-end, its normalization, the int8 quantization of
its input and output, its score definition, its threshold, its alarm rule and its on-site calibration.
The handshake reports each of them: as a value, or as a digest the device computes over its own tables
(docs/protocol.md §3, "Constants the device decides with"); the host computes the same from manifest.json
(tinyae.train.digests). A device flashed before `tinyae threshold` ran, built from other artifacts, or
with a threshold set at run time is named here, field by field, instead of passing verify.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyae.tools.link import protocol as p
from tinyae.train import digests
from tinyae.train.calibration.record import FLAG_THRESHOLD, Record
from tinyae.train.manifest import Manifest


@dataclass(frozen=True)
class Constant:
    """One compared constant: its name, the device's and the artifacts' value (as text), and whether they
    are equal."""

    name: str
    device: str
    artifacts: str
    ok: bool
    rebuild: bool = True  # a difference needs the firmware rebuilt from the artifacts (else: see `advice`)
    advice: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "device": self.device, "artifacts": self.artifacts, "ok": bool(self.ok)}


def _f(x: float) -> str:
    return f"{float(np.float32(x)):.9g}"


def _crc(x: int) -> str:
    return f"{x & 0xFFFFFFFF:08x}"


def record_verdict(model_dir: Path, record: Record) -> str:
    """What the firmware built from model_dir says of a record a device uses: the core's own check
    (tae_calib_unpack, through ctypes against model_dir's model_config.h) by its verdict's name, "valid"
    when it may be used. The device ran the same check, unless its firmware predates it or was built
    otherwise: then it may decide with a record (an edited threshold, say) the artifacts' firmware refuses."""
    from tinyae.train.calibration.native import NativeCalib
    from tinyae.train.calibration.record import VERDICTS

    return VERDICTS[NativeCalib(model_dir, record.channels).verdict(record.to_bytes())]


def compare(
    info: p.Info, manifest: Manifest, record: Record | None = None, verdict: str = "valid"
) -> list[Constant]:
    """The device's constants (handshake `info`, and the calibration record it uses, if any, with
    `verdict`, record_verdict's on it) against the manifest's, in the order a device applies them."""
    m = manifest.to_dict()
    w = manifest.window
    score_kind = {"mse": 0, "mae": 1}.get(manifest.score.kind, -1)
    threshold = float(np.float32(manifest.threshold.value))
    rows = [
        Constant("firmware version", info.firmware_version, manifest.generator.tinyae,
                 info.firmware_version == manifest.generator.tinyae),
        Constant("model (sha256)", info.model_sha256.hex()[:16], manifest.model.sha256[:16],
                 info.model_sha256.hex() == manifest.model.sha256),
        Constant("window", f"{info.window_len} x {info.channels}, hop {info.hop}",
                 f"{w.length} x {w.channels}, hop {w.hop}",
                 (info.window_len, info.channels, info.hop) == (w.length, w.channels, w.hop)),
        Constant("sample rate", f"{info.sample_rate_hz:.6g} Hz", f"{w.sample_rate_hz:.6g} Hz",
                 np.float32(info.sample_rate_hz) == np.float32(w.sample_rate_hz)),
        Constant("front-end constants (digest)", _crc(info.frontend_crc), _crc(digests.frontend(m)),
                 info.frontend_crc == digests.frontend(m)),
        Constant("normalization (digest)", _crc(info.norm_crc), _crc(digests.normalization(m)),
                 info.norm_crc == digests.normalization(m)),
        Constant("input quantization", f"scale {_f(info.in_scale)}, zero point {info.in_zero_point}",
                 f"scale {_f(manifest.input.scale)}, zero point {manifest.input.zero_point}",
                 np.float32(info.in_scale) == np.float32(manifest.input.scale)
                 and info.in_zero_point == manifest.input.zero_point),
        Constant("output quantization", f"scale {_f(info.out_scale)}, zero point {info.out_zero_point}",
                 f"scale {_f(manifest.output.scale)}, zero point {manifest.output.zero_point}",
                 np.float32(info.out_scale) == np.float32(manifest.output.scale)
                 and info.out_zero_point == manifest.output.zero_point),
        Constant("score", info.score_name, manifest.score.kind, info.score_kind == score_kind),
        Constant("threshold", _f(info.model_threshold), _f(threshold),
                 np.float32(info.model_threshold) == np.float32(threshold),
                 advice=(
                     "`tinyae threshold` changed the artifacts after this firmware was built: rebuild and "
                     "flash it (make flash, make firmware-emu), or point --model-dir at the artifacts it "
                     "was built from"
                 )),
        Constant("alarm rule", f"{info.decision_k} of {info.decision_n}",
                 f"{manifest.decision.k} of {manifest.decision.n}",
                 (info.decision_k, info.decision_n) == (manifest.decision.k, manifest.decision.n)),
        Constant("calibration constants (digest)", _crc(info.calib_config_crc), _crc(digests.calibration(m)),
                 info.calib_config_crc == digests.calibration(m)),
    ]  # fmt: skip
    expected = active_threshold(manifest, record)
    if record is not None:
        made_for = (
            record.model_sha256.hex() == manifest.model.sha256 and record.config_crc == digests.calibration(m)
        )
        why = verdict.replace("_", " ")
        refused = "" if verdict == "valid" else f"; the firmware built from them refuses it ({why})"
        rows.append(
            Constant(
                "calibration record",
                f"{record.crc:08x}: {', '.join(record.learned) or 'nothing'}",
                f"made for model {manifest.model.sha256[:12]}, constants {_crc(digests.calibration(m))}"
                + (refused if made_for else ""),
                made_for and verdict == "valid",
            )
        )
    source = (
        "its calibration record's" if record is not None and record.flags & FLAG_THRESHOLD else "the model's"
    )
    rows.append(
        Constant(
            "threshold in use",
            _f(info.threshold),
            f"{_f(expected)} ({source})",
            np.float32(info.threshold) == np.float32(expected),
            rebuild=False,
            advice=(
                "the device decides with a threshold set at run time (a SET THRESHOLD, e.g. from "
                "`tinyae device monitor --threshold`); reset the device to restore its own"
            ),
        )
    )
    return rows


def active_threshold(manifest: Manifest, record: Record | None) -> float:
    """The threshold a device built from these artifacts decides with: its calibration record's when the
    record learned one, else the model's (float32)."""
    if record is not None and record.flags & FLAG_THRESHOLD:
        return float(np.float32(record.threshold))
    return float(np.float32(manifest.threshold.value))


def differences(rows: list[Constant]) -> list[Constant]:
    return [r for r in rows if not r.ok]


def sentence(rows: list[Constant], model_dir: Path) -> str:
    """One sentence naming what differs and what to do (rows: compare()'s, some differing)."""
    bad = differences(rows)
    what = "; ".join(f"{r.name} (device {r.device}, artifacts {r.artifacts})" for r in bad)
    if all(not r.rebuild for r in bad) or (len(bad) == 1 and bad[0].advice):
        todo = bad[0].advice
    elif {r.name for r in bad} <= {"threshold", "calibration constants (digest)", "threshold in use",
                                   "calibration record"} and any(r.name == "threshold" for r in bad):  # fmt: skip
        todo = next(r.advice for r in bad if r.name == "threshold")
    else:
        todo = (
            f"flash the firmware built from {model_dir} (make flash, or make firmware-emu for the emulated "
            "board), or point --model-dir at the artifacts the device was built from"
        )
    return f"the device does not decide as {model_dir} says: {what}; {todo}"


def notes(dev, info: p.Info, manifest: Manifest | None, model_dir: Path) -> list[str]:  # type: ignore[no-untyped-def]
    """What a command that shows the device's own decisions (stream, monitor) says before it starts: the
    calibration record the device decides with, and any constant that differs from the artifacts."""
    from tinyae.tools.link.calibration import record_in_use

    out = []
    record = None
    if info.calib_state == p.CalibState.CALIBRATED:
        record = record_in_use(dev.calib_query())
        if record is not None:
            out.append(
                f"{dev.name} decides with on-site calibration record {record.crc:08x} ({', '.join(record.learned)} "
                f"from {record.windows} windows per phase, threshold {record.threshold:.6g}); `tinyae device "
                "calibrate --factory` returns to the model's values"
            )
    if manifest is not None and info.model_sha256.hex() == manifest.model.sha256:
        verdict = record_verdict(model_dir, record) if record is not None else "valid"
        rows = compare(info, manifest, record, verdict)
        if differences(rows):
            out.append(sentence(rows, model_dir) + "; the results below are the device's own")
    return out
