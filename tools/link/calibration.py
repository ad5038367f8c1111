"""On-site calibration from the host side of the link: run a calibration on a device (on its own
sensor, or on a recording streamed to it), collect everything it reports, and hold it against the
host mirror, which must compute the same record bit for bit from the same samples.

    with open_device(port) as dev:
        run = on_sensor(dev, n=64, progress=print)       # or on_stream(dev, samples, n)
        check = against_mirror(run, artifacts)           # record, scores, NumPy cross-check

docs/protocol.md §3 (CALIB, CALIB_STATE) and docs/architecture.md ("On-site calibration") describe the
device side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyae.errors import UserError
from tinyae.tools.link import protocol as p
from tinyae.tools.link.device import Device, DeviceError, DeviceTimeout
from tinyae.train.calibration import mirror
from tinyae.train.calibration import report as rep
from tinyae.train.calibration.record import OUTCOMES, Record
from tinyae.train.calibration.spec import CalibSpec

Progress = Callable[[int, int, str], None]  # (windows done, windows total, phase text)


@dataclass
class DeviceRun:
    """What the device reported during one calibration."""

    n: int
    source: str
    samples: np.ndarray  # the samples it calibrated on, from its first window ([T, C] float32)
    results: dict[int, p.Result] = field(default_factory=dict)  # calibration windows by window_seq
    states: list[p.CalibStatus] = field(default_factory=list)  # phase changes and the end
    before: p.CalibStatus | None = None  # QUERY before the start
    after: p.CalibStatus | None = None  # QUERY after the end
    seconds: float = 0.0
    lost_samples: int = 0
    lost_windows: list[int] = field(default_factory=list)
    skipped_slots: int = 0  # the device's sample clock (sensor mode, TELEMETRY): slots it never read
    late_samples: int = 0
    clock_source: int = 0  # p.Clock flags

    @property
    def final(self) -> p.CalibStatus | None:
        ends = [s for s in self.states if s.outcome != p.CalibOutcome.RUNNING]
        return ends[-1] if ends else None

    @property
    def outcome(self) -> str:
        f = self.final
        return "none" if f is None else OUTCOMES[f.outcome]

    @property
    def candidate(self) -> Record | None:
        f = self.final
        return Record.from_bytes(f.record, "the device's calibration record") if f and f.record else None


def record_in_use(status: p.CalibStatus | None) -> Record | None:
    if status is None or status.record_kind != p.RecordKind.IN_USE or not status.record:
        return None
    return Record.from_bytes(status.record, "the device's record in use")


def _check_idle(dev: Device) -> p.CalibStatus:
    status = dev.calib_query()
    if status.state in (p.CalibState.STATS, p.CalibState.SCORES):
        dev.calib_command(p.CalibAction.ABORT)  # ours to replace: a calibration left running
        status = dev.calib_query()
    return status


def on_sensor(dev: Device, spec: CalibSpec, n: int, progress: Progress | None = None) -> DeviceRun:
    """Calibrate on the device's own sensor (sensor mode); the samples come back as telemetry. `spec` is
    the calibration section of the artifacts the device runs (the caller checked the model)."""
    info = dev.require_info()
    total = _total_windows(info, spec, n, dev.name)
    before = _check_idle(dev)
    run = DeviceRun(n=n, source="the device's sensor", samples=np.zeros((0, info.channels), np.float32))
    run.before = before
    dev.set(p.Param.MODE, p.Mode.SENSOR)
    chunks: list[np.ndarray] = []
    t0 = time.monotonic()
    try:
        dev.calib_command(p.CalibAction.START, n)
        next_sample = 0
        last = time.monotonic()
        while run.final is None:
            try:
                msg = dev.next_message(time.monotonic() + dev.timeout, "calibration data")
            except DeviceTimeout:
                raise DeviceTimeout(
                    f"no sensor data from {dev.name} for {dev.timeout:g} s during the calibration; a build "
                    "without a sensor needs the data streamed to it: pass --csv with a normal recording"
                ) from None
            if isinstance(msg, p.Boot):
                raise DeviceError(
                    f"{dev.name} reset during the calibration; nothing was stored (the record it had "
                    "stays in use); check its power supply and rerun"
                )
            if isinstance(msg, p.Telemetry):
                if msg.first_sample != next_sample:
                    run.lost_samples += max(0, msg.first_sample - next_sample)
                chunks.append(np.asarray(msg.samples, np.float32).reshape(-1, info.channels))
                next_sample = msg.first_sample + len(msg.samples)
                run.skipped_slots, run.late_samples = msg.skipped, msg.late
                run.clock_source = msg.source
            elif isinstance(msg, p.Result) and msg.calib:
                run.results[msg.window_seq] = msg
                if progress is not None and time.monotonic() - last > 0.1:
                    last = time.monotonic()
                    progress(len(run.results), total, _phase_text(run.states))
            elif isinstance(msg, p.CalibStatus):
                run.states.append(msg)
                if progress is not None:
                    progress(len(run.results), total, _phase_text(run.states))
    finally:
        dev.leave_sensor_mode()  # a mode switch also aborts a calibration still running (Ctrl-C)
    run.seconds = time.monotonic() - t0
    run.samples = np.concatenate(chunks) if chunks else run.samples
    run.lost_windows = sorted(set(range(total)) - set(run.results))
    run.after = dev.calib_query()
    return run


def on_stream(
    dev: Device, spec: CalibSpec, samples: np.ndarray, n: int, source: str, progress: Progress | None = None
) -> DeviceRun:
    """Calibrate on a recording streamed to the device (host-stream mode), exactly the samples needed."""
    info = dev.require_info()
    spec_total = _total_windows(info, spec, n, dev.name)
    before = _check_idle(dev)
    x = np.asarray(samples, np.float32)[: spec.total_samples(n)]
    run = DeviceRun(n=n, source=source, samples=x, before=before)
    t0 = time.monotonic()
    dev.calib_command(p.CalibAction.START, n)

    def on_result(r: p.Result) -> None:
        if r.calib:
            run.results[r.window_seq] = r
        if progress is not None:
            progress(len(run.results), spec_total, _phase_text(run.states))

    def on_message(m: p.Message) -> None:
        if isinstance(m, p.CalibStatus):
            run.states.append(m)

    try:
        summary = dev.stream(x, on_result, retries=0, on_message=on_message)
    except DeviceError as exc:
        if "reset" in str(exc):
            raise DeviceError(
                f"{dev.name} reset during the calibration; nothing was stored (the record it had stays in "
                "use); check its power supply and rerun"
            ) from None
        raise
    deadline = time.monotonic() + dev.timeout
    while run.final is None and time.monotonic() < deadline:  # the end is sent before the last ACK
        for m in dev.take_messages(0.05):
            on_message(m)
    run.lost_windows = list(summary.lost_windows)
    run.seconds = time.monotonic() - t0
    run.after = dev.calib_query()
    if run.final is None:
        raise DeviceError(
            f"{dev.name} did not report the end of its calibration (its last frames were lost); its "
            f"state now: {OUTCOMES[run.after.outcome]}; rerun `tinyae device calibrate`"
        )
    return run


def check_device(info: p.Info, spec: CalibSpec, name: str) -> None:
    """The device's calibration constants must be the artifacts' (`spec`): its factory threshold, which
    the bounds and the anomalous-window counts are derived from, and its capacity. Otherwise the host
    mirror computes another calibration than the device (UserError, one sentence)."""
    if np.float32(info.model_threshold) != np.float32(spec.factory_threshold):
        raise UserError(
            f"{name}'s factory threshold is {info.model_threshold:.6g} but the artifacts' is "
            f"{spec.factory_threshold:.6g} (`tinyae threshold` was run after flashing, or --model-dir is not "
            "what it runs): rebuild and flash the firmware, or point --model-dir at the artifacts it was "
            "built from"
        )
    if info.calib_max_windows != spec.windows:
        raise UserError(
            f"{name} calibrates up to {info.calib_max_windows} windows per phase but the artifacts say "
            f"{spec.windows} (calibration.windows): rebuild and flash the firmware, or point --model-dir "
            "at the artifacts it was built from"
        )


def _total_windows(info: p.Info, spec: CalibSpec, n: int, name: str = "the device") -> int:
    check_device(info, spec, name)
    spec.check_windows(n, f"{name}'s firmware")
    return spec.total_windows(n)


def _phase_text(states: list[p.CalibStatus]) -> str:
    if not states:
        return "phase 1"
    s = states[-1]
    if s.outcome != p.CalibOutcome.RUNNING:
        return OUTCOMES[s.outcome]
    return "phase 2: scores" if s.state == p.CalibState.SCORES else "phase 1: statistics"


@dataclass
class MirrorCheck:
    mirror: mirror.MirrorResult
    record_equal: bool
    outcome_equal: bool
    scores_compared: int
    scores_equal: int
    first_mismatch: tuple[int, float, float] | None
    cross_check: dict
    comparison: rep.Comparison

    @property
    def ok(self) -> bool:
        return (
            self.record_equal
            and self.outcome_equal
            and self.scores_equal == self.scores_compared
            and bool(self.cross_check.get("ok"))
        )

    def disagreement(self) -> str:
        """What differs, in words (empty when nothing does)."""
        parts = []
        if not self.outcome_equal:
            parts.append(f"the outcome (host mirror: {self.mirror.outcome})")
        if not self.record_equal:
            parts.append("the record")
        if self.scores_equal != self.scores_compared:
            parts.append(f"{self.scores_compared - self.scores_equal} calibration windows' scores")
        if not self.cross_check.get("ok"):
            parts.append(f"the NumPy cross-check ({self.cross_check})")
        return ", ".join(parts) + "; see the report, and report this" if parts else ""


def against_mirror(run: DeviceRun, spec: CalibSpec, model_dir: Path, reference) -> MirrorCheck:  # type: ignore[no-untyped-def]
    """The host mirror over the device's samples: the same record, bit for bit, and every calibration
    window's score equal to the host reference's (phase 1 under the record in use before, phase 2 under
    the candidate)."""
    if run.lost_samples:
        raise UserError(
            f"{run.lost_samples} samples were lost on the link during the calibration, so the host cannot "
            "mirror it; the device's result stands, but rerun on a cleaner link to have it checked"
        )
    scores = rep.scorer(reference)
    res = mirror.run(spec, model_dir, run.samples, run.n, scores)
    dev_record = run.final.record if run.final is not None else b""
    before = record_in_use(run.before)
    # Every calibration window's score as the device must have computed it.
    from tinyae.train.data.windowing import make_windows

    w = make_windows(run.samples, spec.window_length, spec.hop)[: spec.total_windows(run.n)]
    want = np.zeros(len(w), np.float32)
    split = run.n if spec.has_stats_phase else 0
    if split:
        want[:split] = scores(w[:split], rep.correction_of(before))
    if len(w) > split:
        cand = res.parsed
        want[split:] = scores(
            w[split:], rep.correction_of(cand) if cand.has_correction else rep.correction_of(before)
        )
    got = {k: float(np.float32(r.score)) for k, r in run.results.items() if k < len(w)}
    equal = sum(1 for k, v in got.items() if np.float32(v).tobytes() == want[k].tobytes())
    first = next(
        (
            (k, v, float(want[k]))
            for k, v in sorted(got.items())
            if np.float32(v).tobytes() != want[k].tobytes()
        ),
        None,
    )
    accepted = res.parsed if res.accepted else None
    comparison = rep.false_alarms(spec, run.samples, run.n, scores, before, accepted, spec.factory_threshold)
    return MirrorCheck(
        mirror=res,
        record_equal=dev_record == res.record,
        outcome_equal=run.outcome == res.outcome or (run.outcome == "store" and res.outcome == "stored"),
        scores_compared=len(got),
        scores_equal=equal,
        first_mismatch=first,
        cross_check=mirror.cross_check(spec, run.samples, res),
        comparison=comparison,
    )
