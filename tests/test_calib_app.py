"""On-site calibration in the device application (tae_app.c over the simulated device, its in-memory
non-volatile storage and its fault hooks): the protocol exchange, the record stored and in use, equal
to the host mirror's; and every fault: not-normal data, a reset mid-calibration, a write that fails or
tears, unreadable storage, corrupt, foreign and tampered records. Never a half-written or mismatched
calibration in use: what the device uses is always what a reboot would load."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest

from tinyae.tools.link import protocol as p
from tinyae.tools.simdevice.native import SimDevice, config_dir
from tinyae.tools.simdevice.port import sim_manifest
from tinyae.tools.simdevice.vectors import CONFIG, calib_spec
from tinyae.tools.testing.fuzz import calibration_samples
from tinyae.tools.testing.simstub import SimStubReference
from tinyae.train.calibration import mirror
from tinyae.train.calibration import report as rep
from tinyae.train.calibration.record import Record

L, H, C = CONFIG["window_len"], CONFIG["hop"], CONFIG["channels"]
SPEC = calib_spec()
N = SPEC.windows  # 6 per phase, 2 phases
NEED = SPEC.total_samples(N)


class Host:
    def __init__(self, dev: SimDevice):
        self.dev = dev
        self.dec = p.StreamDecoder(CONFIG["max_frame"], accept=p.DEVICE_TYPES)
        self.seq = 0
        self.batch = 0

    def send(self, msg: p.Message) -> list:
        self.dev.write(p.encode_frame(msg, self.seq))
        self.seq += 1
        return self.recv()

    def recv(self) -> list:
        events = self.dec.feed(self.dev.read())
        assert all(isinstance(e, p.Frame) for e in events), events
        return [e.msg for e in events]

    def stream(self, x: np.ndarray) -> list:
        out = []
        for i in range(0, len(x), 32):
            rows = tuple(tuple(float(v) for v in r) for r in x[i : i + 32])
            out += self.send(p.Samples(self.batch, rows, C))
            self.batch += 1
        return out

    def reset(self) -> list:
        self.batch = 0
        return self.send(p.Reset())

    def info(self) -> p.Info:
        (info,) = [m for m in self.send(p.Hello()) if isinstance(m, p.Info)]
        return info

    def query(self) -> p.CalibStatus:
        (st,) = self.send(p.Calib(p.CalibAction.QUERY))
        assert isinstance(st, p.CalibStatus)
        return st

    def start(self, n: int = N) -> list:
        self.batch = 0
        return self.send(p.Calib(p.CalibAction.START, n))

    def reboot(self) -> p.Boot:
        self.dev.boot()
        self.batch = 0
        (boot,) = self.recv()
        assert isinstance(boot, p.Boot)
        return boot


@pytest.fixture
def host() -> Host:
    dev = SimDevice()
    dev.set_engine_fail_every(0)
    dev.store_fail(0)
    dev.store = None
    h = Host(dev)
    h.reboot()
    yield h
    dev.store_fail(0)
    dev.store = None


def stub_scores():  # type: ignore[no-untyped-def]
    return rep.scorer(SimStubReference(sim_manifest()))


def mirror_of(x: np.ndarray, n: int = N) -> mirror.MirrorResult:
    return mirror.run(SPEC, config_dir(), x, n, stub_scores())


def acked(msgs: list, ref_type: p.MsgType) -> bool:
    return any(isinstance(m, p.Ack) and m.ref_type == ref_type for m in msgs)


def calibrate(host: Host, x: np.ndarray, n: int = N) -> tuple[list, p.CalibStatus]:
    assert acked(host.start(n), p.MsgType.CALIB)
    msgs = host.stream(x[: SPEC.total_samples(n)])
    states = [m for m in msgs if isinstance(m, p.CalibStatus)]
    return msgs, states[-1]


# ---------------------------------------------------------------- the exchange
def test_a_calibration_stores_the_host_mirrors_record_and_uses_it(host):
    x = calibration_samples(NEED + 64, seed=1) + np.float32([0.5, -1.0, 2.0])  # this site's offsets
    boot_info = host.info()
    assert (boot_info.calib_state, boot_info.calib_boot, boot_info.calib_crc) == (0, p.RecordVerdict.EMPTY, 0)
    assert boot_info.calib_max_windows == N
    msgs, final = calibrate(host, x)
    results = [m for m in msgs if isinstance(m, p.Result)]
    assert [r.window_seq for r in results] == list(range(2 * N)) and all(r.calib for r in results)
    states = [m for m in msgs if isinstance(m, p.CalibStatus)]
    # phase change after window N-1 (the candidate correction), then the end after window 2N-1
    assert [(s.state, s.outcome, s.done) for s in states] == [
        (p.CalibState.SCORES, p.CalibOutcome.RUNNING, N),
        (p.CalibState.CALIBRATED, p.CalibOutcome.STORED, 2 * N),
    ]
    assert states[0].record_kind == states[1].record_kind == p.RecordKind.CANDIDATE
    want = mirror_of(x)
    assert want.accepted and final.record == want.record == host.dev.store
    rec = Record.from_bytes(final.record)
    assert rec.learned == ["offsets", "scales", "threshold"]
    assert np.allclose(np.asarray(rec.shift) * np.asarray(rec.gain), [0.5, -1.0, 2.0], atol=0.6)
    # the phase-2 scores are the mirror's (scored with the candidate correction), bit for bit
    got = np.float32([r.score for r in results[N:]])
    assert got.tobytes() == want.phase2_scores.tobytes()
    info = host.info()
    assert (info.calib_state, info.calib_flags, info.calib_windows) == (p.CalibState.CALIBRATED, 0x07, N)
    assert info.calib_crc == rec.crc and info.threshold == np.float32(rec.threshold)
    assert info.model_threshold == np.float32(CONFIG["threshold"])
    # from now on: the record's correction and threshold, as the host reference computes them
    host.reset()
    y = calibration_samples(80, seed=2) + np.float32([0.5, -1.0, 2.0])
    after = [m for m in host.stream(y) if isinstance(m, p.Result)]
    ref = SimStubReference(sim_manifest())
    ref.set_correction(rec.shift, rec.gain)
    from tinyae.train.data.windowing import make_windows

    want_scores = ref.evaluate(make_windows(y, L, H)).scores
    assert np.float32([r.score for r in after]).tobytes() == want_scores.tobytes()
    assert [r.anomaly for r in after] == list(want_scores > np.float32(rec.threshold))
    assert not any(r.calib for r in after)


def test_the_record_survives_a_reset_and_nan_restores_the_calibrated_threshold(host):
    _, final = calibrate(host, calibration_samples(NEED, seed=3))
    rec = Record.from_bytes(final.record)
    boot = host.reboot()
    assert (boot.calib_state, boot.calib_boot, boot.calib_crc) == (1, p.RecordVerdict.VALID, rec.crc)
    assert boot.threshold == np.float32(rec.threshold)
    assert host.query().record == final.record
    host.send(p.Setting(p.Param.THRESHOLD, 0.9))
    assert host.info().threshold == np.float32(0.9)
    host.send(p.Setting(p.Param.THRESHOLD, math.nan))
    assert host.info().threshold == np.float32(rec.threshold)


def test_start_checks_the_window_count(host):
    (err,) = host.start(N + 1)
    assert isinstance(err, p.ErrorReply) and err.code == p.ErrorCode.BAD_PARAM
    assert (err.expected, err.got) == (N, N + 1)
    assert acked(host.start(0), p.MsgType.CALIB)  # 0 = the build's maximum
    assert host.query().windows == N


def test_reset_restarts_and_a_mode_switch_aborts(host):
    x = calibration_samples(NEED + 40, seed=4)
    host.start()
    host.stream(x[:20])  # a few windows in
    host.reset()  # the window state restarts: so does the calibration, from the samples that follow
    msgs = host.stream(x[40 : 40 + NEED])
    final = [m for m in msgs if isinstance(m, p.CalibStatus)][-1]
    assert final.outcome == p.CalibOutcome.STORED and final.record == mirror_of(x[40:]).record
    host.start()
    host.stream(x[:20])
    same = host.send(p.Setting(p.Param.MODE, p.Mode.HOST_STREAM))  # the same source: restarts, no abort
    assert acked(same, p.MsgType.SET) and not [m for m in same if isinstance(m, p.CalibStatus)]
    assert host.query().state == p.CalibState.STATS and host.query().done == 0
    host.batch = 0
    host.stream(x[:20])
    msgs = host.send(p.Setting(p.Param.MODE, p.Mode.SENSOR))
    assert acked(msgs, p.MsgType.SET)
    (state,) = [m for m in msgs if isinstance(m, p.CalibStatus)]
    assert state.outcome == p.CalibOutcome.ABORTED and state.state == p.CalibState.CALIBRATED
    assert host.dev.store == final.record
    host.send(p.Setting(p.Param.MODE, p.Mode.HOST_STREAM))
    host.start()
    assert acked(host.send(p.Calib(p.CalibAction.ABORT)), p.MsgType.CALIB)
    assert host.query().outcome == p.CalibOutcome.ABORTED


# ---------------------------------------------------------------- bad input and faults
def test_data_out_of_bounds_are_refused_and_change_nothing(host):
    """(Scores far above the trained distribution need a real autoencoder: test_calib_cli.py and the
    emulator tests hold those; the stand-in engine's scores barely move.)"""
    _, first = calibrate(host, calibration_samples(NEED, seed=5))
    before = host.info()
    bad = calibration_samples(NEED, seed=6)
    bad[:, 1] = SPEC.ref_mean[1]  # a channel stuck at one value: no spread (a dead sensor)
    msgs, final = calibrate(host, bad)
    assert (final.outcome, final.detail) == (p.CalibOutcome.SCALE, 1)
    assert final.record == mirror_of(bad).record  # the candidate, for the host's report
    assert sum(isinstance(m, p.Result) and m.calib for m in msgs) == N  # refused at the end of phase 1
    after = host.info()
    assert (after.calib_crc, after.threshold) == (before.calib_crc, before.threshold)
    assert host.dev.store == first.record
    shifted = calibration_samples(NEED, seed=7)
    shifted[:, 2] += 3.5 * SPEC.ref_std[2]
    _, final = calibrate(host, shifted)
    assert (final.outcome, final.detail) == (p.CalibOutcome.SHIFT, 2)
    assert host.dev.store == first.record and host.info().calib_crc == before.calib_crc


def test_a_reset_mid_calibration_leaves_the_previous_record(host):
    _, first = calibrate(host, calibration_samples(NEED, seed=8))
    host.start()
    host.stream(calibration_samples(NEED - 8, seed=9) + 0.5)  # all but the last windows
    boot = host.reboot()  # power loss
    assert boot.calib_boot == p.RecordVerdict.VALID and boot.calib_crc == Record.from_bytes(first.record).crc
    assert host.dev.store == first.record


@pytest.mark.parametrize("fault", ["write_fails", "write_tears"])
def test_a_failed_or_torn_write_never_leaves_a_half_written_record_in_use(host, fault):
    _, first = calibrate(host, calibration_samples(NEED, seed=10))
    host.dev.store_fail(
        SimDevice.STORE_WRITE_FAILS if fault == "write_fails" else SimDevice.STORE_WRITE_TEARS
    )
    _, final = calibrate(host, calibration_samples(NEED, seed=11) + 0.25)
    assert final.outcome == p.CalibOutcome.STORE
    info = host.info()
    host.dev.store_fail(0)
    if fault == "write_fails":  # the storage kept the old record: it stays in use
        assert host.dev.store == first.record
        assert info.calib_crc == Record.from_bytes(first.record).crc
    else:  # half a record in the storage: nothing usable, the factory values are in use
        assert len(host.dev.store) == SPEC.record_bytes // 2
        assert (info.calib_state, info.calib_crc) == (p.CalibState.FACTORY, 0)
        assert info.threshold == np.float32(CONFIG["threshold"])
    boot = host.reboot()  # and a reboot loads exactly that
    assert (boot.calib_state, boot.calib_crc, boot.threshold) == (
        info.calib_state,
        info.calib_crc,
        info.threshold,
    )
    if fault == "write_tears":
        assert boot.calib_boot == p.RecordVerdict.CORRUPT


def reseal(b: bytes) -> bytes:
    return b[:-4] + struct.pack("<I", zlib.crc32(b[:-4]) & 0xFFFFFFFF)


def forged_threshold(record: bytes) -> bytes:
    """The record with its threshold edited (CRC recomputed) to a value within the bounds, on the other
    side of the factory threshold from the one its scores put it on: not the order statistic it claims."""
    rec = Record.from_bytes(record)
    factory = np.float32(CONFIG["threshold"])
    forged = factory * 0.75 if rec.threshold > factory else factory * 1.5
    assert SPEC.threshold_min <= forged <= SPEC.threshold_max
    return Record(**{**rec.__dict__, "threshold": float(forged)}).to_bytes()


def test_stored_records_that_cannot_be_used_are_ignored_at_boot(host):
    _, final = calibrate(host, calibration_samples(NEED, seed=12))
    good = final.record
    flipped = bytearray(good)
    flipped[60] ^= 0x01
    other_model = bytearray(good)
    other_model[8:40] = bytes(32)
    other_config = bytearray(good)
    other_config[40] ^= 0x01
    version = bytearray(good)
    version[4] = 9
    rec = Record.from_bytes(good)
    tampered = Record(**{**rec.__dict__, "shift": (rec.shift[0] + 0.01, *rec.shift[1:])}).to_bytes()
    cases = {
        p.RecordVerdict.CORRUPT: [bytes(flipped), good[:-3], b"garbage", good + b"\x00"],
        p.RecordVerdict.OTHER_MODEL: [reseal(bytes(other_model))],
        p.RecordVerdict.OTHER_CONFIG: [reseal(bytes(other_config))],
        p.RecordVerdict.VERSION: [reseal(bytes(version))],
        p.RecordVerdict.BOUNDS: [tampered, forged_threshold(good)],
    }
    for verdict, blobs in cases.items():
        for blob in blobs:
            host.dev.store = blob
            boot = host.reboot()
            assert (boot.calib_boot, boot.calib_state, boot.calib_crc) == (verdict, p.CalibState.FACTORY, 0)
            assert boot.threshold == np.float32(CONFIG["threshold"])
            assert host.query().record_kind == p.RecordKind.NONE
    host.dev.store = good
    host.dev.store_fail(SimDevice.STORE_READ_FAILS)
    boot = host.reboot()
    assert (boot.calib_boot, boot.calib_state) == (p.RecordVerdict.STORE_ERROR, p.CalibState.FACTORY)


def test_a_written_record_is_checked_stored_and_used(host):
    x = calibration_samples(NEED, seed=13) + np.float32([0.2, 0.0, -0.4])
    record = mirror_of(x).record  # `tinyae calibrate`'s record, computed without the device
    msgs = host.send(p.Calib(p.CalibAction.WRITE, 0, record))
    assert acked(msgs, p.MsgType.CALIB)
    assert host.dev.store == record and host.query().record == record
    foreign = bytearray(record)
    foreign[9] ^= 0xFF
    (err,) = host.send(p.Calib(p.CalibAction.WRITE, 0, reseal(bytes(foreign))))
    assert (err.code, err.got) == (p.ErrorCode.RECORD, p.RecordVerdict.OTHER_MODEL)
    assert host.dev.store == record and host.query().outcome == p.CalibOutcome.REJECTED
    # an edited threshold (CRC recomputed) is refused as at boot: never stored, never decided with
    (err,) = host.send(p.Calib(p.CalibAction.WRITE, 0, forged_threshold(record)))
    assert (err.code, err.got) == (p.ErrorCode.RECORD, p.RecordVerdict.BOUNDS)
    assert host.dev.store == record and host.query().outcome == p.CalibOutcome.REJECTED
    assert host.info().threshold == np.float32(Record.from_bytes(record).threshold)
    host.dev.store_fail(SimDevice.STORE_WRITE_FAILS)
    other = mirror_of(calibration_samples(NEED, seed=14)).record
    (err,) = host.send(p.Calib(p.CalibAction.WRITE, 0, other))
    assert err.code == p.ErrorCode.STORE
    assert host.query().record == record  # the storage kept the old one, which stays in use


def test_factory_reset_erases_the_record(host):
    calibrate(host, calibration_samples(NEED, seed=15))
    host.dev.store_fail(SimDevice.STORE_ERASE_FAILS)
    (err,) = host.send(p.Calib(p.CalibAction.FACTORY))
    assert err.code == p.ErrorCode.STORE and host.info().calib_state == p.CalibState.CALIBRATED
    host.dev.store_fail(0)
    assert acked(host.send(p.Calib(p.CalibAction.FACTORY)), p.MsgType.CALIB)
    info = host.info()
    assert host.dev.store is None and (info.calib_state, info.calib_crc) == (p.CalibState.FACTORY, 0)
    assert info.threshold == np.float32(CONFIG["threshold"])
    assert host.reboot().calib_boot == p.RecordVerdict.EMPTY


def test_an_engine_error_during_phase_two_refuses_the_calibration(host):
    host.dev.set_engine_fail_every(N + 3)  # the (N+3)-th inference, in phase 2
    _, final = calibrate(host, calibration_samples(NEED, seed=16))
    host.dev.set_engine_fail_every(0)
    assert final.outcome == p.CalibOutcome.ENGINE and host.dev.store is None
