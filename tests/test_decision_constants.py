"""Every constant that decides an alarm is compared, field by field (tools/commands/constants.py), and the
digests the host computes are the ones the device's C computes over its own tables (tae_digest.c)."""

from __future__ import annotations

import ctypes
import dataclasses
import struct
import subprocess
from pathlib import Path

import pytest

from tinyae.hostbuild import CORE_DIR, FP_FLAGS, WARNING_FLAGS, build_shared, load
from tinyae.tools.commands import constants
from tinyae.tools.link import protocol as p
from tinyae.tools.simdevice.port import sim_manifest
from tinyae.tools.simdevice.vectors import CONFIG, config_manifest
from tinyae.train import digests, export
from tinyae.train.calibration.record import FLAG_THRESHOLD, Record
from tinyae.train.calibration.spec import CalibSpec, manifest_quant
from tinyae.train.config import DECISION_MAX_N
from tinyae.train.export import model_config_h
from tinyae.train.frontend.spec import FrontendSpec, Spectral

SRC = CORE_DIR / "src"
FW_TESTS = CORE_DIR.parent.parent / "tests"


def _info(manifest) -> p.Info:  # type: ignore[no-untyped-def]
    """The handshake of a device built from `manifest`."""
    m = manifest.to_dict()
    return p.Info(
        proto_version=p.PROTOCOL_VERSION, mode=0, verify=False, channels=manifest.window.channels,
        score_kind=0 if manifest.score.kind == "mse" else 1, decision_k=manifest.decision.k,
        decision_n=manifest.decision.n, in_zero_point=manifest.input.zero_point,
        out_zero_point=manifest.output.zero_point, window_len=manifest.window.length, hop=manifest.window.hop,
        input_size=manifest.input.size, output_size=manifest.output.size, max_batch=32, max_frame=400,
        sample_rate_hz=p.float32(manifest.window.sample_rate_hz), threshold=p.float32(manifest.threshold.value),
        model_threshold=p.float32(manifest.threshold.value), in_scale=p.float32(manifest.input.scale),
        out_scale=p.float32(manifest.output.scale), model_sha256=bytes.fromhex(manifest.model.sha256),
        flash_used=1, ram_static=1, engine_ram=1, stack_bytes=1, tx_dropped=0, calib_state=0, calib_boot=0,
        calib_flags=0, calib_windows=0, calib_max_windows=6, calib_crc=0, frontend_crc=digests.frontend(m),
        norm_crc=digests.normalization(m), calib_config_crc=digests.calibration(m),
        firmware_version=manifest.generator.tinyae, target="t", engine="compiled", library="", cost_unit="ticks",
    )  # fmt: skip


# one perturbation of the handshake per compared constant, and the row that must name it
FIELDS = {
    "firmware version": {"firmware_version": "0.0.0"},
    "model (sha256)": {"model_sha256": bytes(32)},
    "window": {"hop": 3},
    "sample rate": {"sample_rate_hz": 51.0},
    "front-end constants (digest)": {"frontend_crc": 1},
    "normalization (digest)": {"norm_crc": 2},
    "input quantization": {"in_zero_point": 0},
    "output quantization": {"out_scale": 0.25},
    "score": {"score_kind": 1},
    "threshold": {"model_threshold": 0.75},
    "alarm rule": {"decision_k": 3},
    "calibration constants (digest)": {"calib_config_crc": 3},
    "threshold in use": {"threshold": 0.125},
}


def test_a_device_built_from_the_artifacts_matches_every_constant() -> None:
    m = sim_manifest()
    rows = constants.compare(_info(m), m)
    assert [r.name for r in rows] == list(FIELDS) and all(r.ok for r in rows)


@pytest.mark.parametrize("name", list(FIELDS))
def test_each_constant_that_differs_is_named(name: str) -> None:
    m = sim_manifest()
    info = dataclasses.replace(_info(m), **FIELDS[name])
    rows = constants.compare(info, m)
    assert [r.name for r in constants.differences(rows)] == [name]
    said = constants.sentence(rows, Path("build/model"))
    assert said.startswith("the device does not decide as build/model says: " + name) and "\n" not in said
    if name == "threshold":
        assert "`tinyae threshold` changed the artifacts after this firmware was built" in said
    elif name == "threshold in use":
        assert "a threshold set at run time" in said
    else:
        assert "flash the firmware built from build/model" in said


def test_a_calibration_record_is_compared_and_decides_the_threshold_in_use() -> None:
    m = sim_manifest()
    rec = Record(
        version=1, channels=3, flags=FLAG_THRESHOLD, method=1, model_sha256=bytes.fromhex(m.model.sha256),
        config_crc=digests.calibration(m.to_dict()), windows=6, rank=6, over=0, cluster=0, samples=48,
        threshold=0.625, score_mean=0.1, score_std=0.1, mean=(0.0,) * 3, std=(1.0,) * 3, shift=(0.0,) * 3,
        gain=(1.0,) * 3, crc=0x12345678,
    )  # fmt: skip
    info = dataclasses.replace(_info(m), threshold=p.float32(0.625), calib_state=p.CalibState.CALIBRATED)
    rows = constants.compare(info, m, rec)
    assert all(r.ok for r in rows) and "calibration record" in [r.name for r in rows]
    assert constants.active_threshold(m, rec) == pytest.approx(0.625)
    foreign = dataclasses.replace(rec, config_crc=rec.config_crc ^ 1)
    assert [r.name for r in constants.differences(constants.compare(info, m, foreign))] == [
        "calibration record"
    ]
    factory = dataclasses.replace(info, threshold=p.float32(m.threshold.value))  # the record's is not in use
    assert [r.name for r in constants.differences(constants.compare(factory, m, rec))] == ["threshold in use"]


def test_a_record_the_artifacts_firmware_refuses_is_named_even_when_the_device_uses_it(tmp_path) -> None:
    """A device whose firmware predates a check of tae_calib_unpack (an edited threshold, CRC recomputed,
    was used and verify passed) reports a record its artifacts' firmware refuses: info and verify judge the
    record with that firmware's own check (record_verdict) instead of trusting the device."""
    import numpy as np

    from tinyae.tools.simdevice.vectors import calib_spec
    from tinyae.tools.simdevice.vectors import model_config_h as sim_config_h
    from tinyae.train.calibration.native import EV_CORRECTION, EV_DONE, NativeCalib

    m = sim_manifest()
    (tmp_path / "model_config.h").write_text(sim_config_h())
    spec, cal = calib_spec(), NativeCalib(tmp_path, CONFIG["channels"])
    n = spec.windows
    cal.begin(n)
    rng = np.random.default_rng(0)
    cal.samples(
        (rng.normal(0, 1, (spec.stats_samples(n), 3)) * spec.ref_std + spec.ref_mean).astype(np.float32)
    )
    events = [cal.window(0.0) for _ in range(n)] + [cal.window(s) for s in (0.2, 0.3, 0.25, 0.1, 0.35, 0.3)]
    assert events[n - 1] == EV_CORRECTION and events[-1] == EV_DONE
    rec = Record.from_bytes(cal.candidate())
    assert constants.record_verdict(tmp_path, rec) == "valid"
    forged = dataclasses.replace(rec, threshold=0.2)  # within the bounds, not the order statistic
    assert constants.record_verdict(tmp_path, forged) == "bounds"
    info = dataclasses.replace(_info(m), threshold=p.float32(0.2), calib_state=p.CalibState.CALIBRATED)
    rows = constants.compare(info, m, forged, "bounds")
    assert [r.name for r in constants.differences(rows)] == ["calibration record"]
    said = constants.sentence(rows, Path("build/model"))
    assert "the firmware built from them refuses it (bounds)" in said
    assert "flash the firmware built from build/model" in said
    assert not constants.differences(constants.compare(info, m, forged))  # what trusting the device gave


@pytest.mark.parametrize("kinds", [("raw",), ("spectral", "stats"), ("raw", "spectral")])
def test_the_host_digests_are_the_devices(kinds, tmp_path) -> None:
    """tae_digest.c built on the host with the model_config.h of a manifest gives tinyae.train.digests'
    values for the front-end, the normalization and the calibration constants."""
    cfg = config_manifest(CONFIG)
    spec = FrontendSpec(
        kinds, CONFIG["window_len"], CONFIG["channels"],
        spectral=Spectral(fft_length=8, frames=1, window="hann", spectrum="power", log=True,
                          log_floor=tuple(0.01 * (i + 1) for i in range(3 * 2)), band_edges=(1, 3, 5))
        if "spectral" in kinds else None,
        stats=("rms", "p2p") if "stats" in kinds else (),
    )  # fmt: skip
    fe = spec.to_manifest(50.0)
    cfg["frontend"] = fe
    f = spec.feature_size
    cfg["input"]["size"] = cfg["output"]["size"] = f
    if not spec.raw_only:  # one offset and gain per feature; the calibration constants derived under them
        cfg["normalization"]["offset"] = [0.01 * i for i in range(f)]
        cfg["input"]["gain"] = [1.0 + 0.5 * i for i in range(f)]
        cfg["calibration"] = CalibSpec.from_manifest(cfg).rederive({}, manifest_quant(cfg)).to_manifest()
    (tmp_path / "model_config.h").write_text(model_config_h(cfg))
    sources = [SRC / "tae_digest.c", SRC / "tae_frontend.c", SRC / "tae_pipeline.c", SRC / "tae_calib.c",
               SRC / "tae_protocol.c", FW_TESTS / "core_stub.c"]  # fmt: skip
    lib = load(build_shared(f"digest_{'_'.join(kinds)}", sources, [tmp_path, SRC]))
    for fn in ("tae_digest_frontend", "tae_digest_normalization", "tae_digest_calibration"):
        getattr(lib, fn).restype = ctypes.c_uint32
    assert lib.tae_digest_frontend() == digests.frontend(cfg)
    assert lib.tae_digest_normalization() == digests.normalization(cfg)
    assert lib.tae_digest_calibration() == digests.calibration(cfg)
    # the recipe of the record's CRC (the minimum windows and the anomalous stretch included): a consistent
    # build's digest is its TAE_CALIB_CONFIG_CRC
    assert digests.calibration(cfg) == cfg["calibration"]["config_crc"]


@pytest.mark.parametrize(
    ("changes", "moved"),
    [
        ({"max_over_stretch_setting": (2, 3)}, "stretch_k"),  # the anomalous-stretch rule
        ({"stats_windows": 5}, "min_windows"),  # the minimum windows per phase
        ({"max_scale_ratio": 3.0}, "scale_max"),  # a bound
    ],
    ids=["stretch", "minimum", "bound"],
)
def test_the_devices_calibration_digest_covers_every_constant_a_record_depends_on(
    changes, moved, tmp_path
) -> None:
    """Every constant in the record's CRC moves the digest the device computes (tae_digest_calibration runs
    the recipe config_crc packs, TAE_CALIB_CONFIG_RECIPE), and equally the host's: a device built before
    the minimum windows or the stretch rule changed is named, not passed."""
    base = config_manifest(CONFIG)
    cfg = config_manifest(CONFIG)
    spec = CalibSpec.from_manifest(cfg).rederive(changes, manifest_quant(cfg))
    cfg["calibration"] = spec.to_manifest()
    assert getattr(spec, moved) != getattr(CalibSpec.from_manifest(base), moved)  # the derived constant moved
    (tmp_path / "model_config.h").write_text(model_config_h(cfg))
    sources = [SRC / "tae_digest.c", SRC / "tae_frontend.c", SRC / "tae_pipeline.c", SRC / "tae_calib.c",
               SRC / "tae_protocol.c", FW_TESTS / "core_stub.c"]  # fmt: skip
    lib = load(build_shared("digest_changed", sources, [tmp_path, SRC]))
    lib.tae_digest_calibration.restype = ctypes.c_uint32
    assert lib.tae_digest_calibration() == digests.calibration(cfg) == spec.config_crc
    assert digests.calibration(cfg) != digests.calibration(base)


# ------------------------------------------------------------------- the alarm rule's bound, one source
def test_the_handshake_carries_the_largest_alarm_rule_and_no_larger() -> None:
    """decision_k / decision_n are one byte each in INFO: DECISION_MAX_N (the configuration's and the
    manifest's bound) round-trips through the codec, one more does not fit."""
    m = sim_manifest()
    info = dataclasses.replace(_info(m), decision_k=DECISION_MAX_N, decision_n=DECISION_MAX_N)
    back = p.decode_frame(p.encode_frame(info, 7)).msg
    assert (back.decision_k, back.decision_n) == (DECISION_MAX_N, DECISION_MAX_N)
    with pytest.raises(struct.error):
        p.encode_frame(dataclasses.replace(info, decision_n=DECISION_MAX_N + 1), 8)


def _compiles(tmp_path: Path, source: str, k: int, n: int) -> bool:
    """Whether firmware source `source` compiles (-Werror) with the model_config.h of the test configuration
    at the alarm rule k of n."""
    cfg = config_manifest(CONFIG)
    cfg["decision"] = {"k": k, "n": n}
    (tmp_path / "model_config.h").write_text(model_config_h(cfg))
    proc = subprocess.run(
        ["gcc", "-std=c11", "-fsyntax-only", *WARNING_FLAGS, *FP_FLAGS, f"-I{tmp_path}", f"-I{SRC}",
         str(SRC / source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0 or "tae_check_decision" in proc.stderr, proc.stderr
    return proc.returncode == 0


@pytest.mark.parametrize(
    ("k", "n", "ok"),
    [(1, 1, True), (2, 3, True), (DECISION_MAX_N, DECISION_MAX_N, True), (3, 2, False), (0, 1, False),
     (-1, 3, False), (1, 0, False), (1, DECISION_MAX_N + 1, False)],
)  # fmt: skip
def test_the_firmware_refuses_to_build_an_alarm_rule_it_cannot_apply_or_report(tmp_path, k, n, ok) -> None:
    """A header rendered from a manifest that escaped the checks still cannot build a device that never
    alarms (k > n, k = 0) or reports another rule than it applies (n beyond the handshake's byte)."""
    assert _compiles(tmp_path, "tae_pipeline.c", k, n) is ok


def test_the_firmware_refuses_a_bound_the_handshake_cannot_carry(tmp_path, monkeypatch) -> None:
    """tae_app.c ties TAE_DECISION_MAX_N (rendered from the configuration's DECISION_MAX_N) to INFO's byte."""
    assert _compiles(tmp_path, "tae_app.c", 2, 3)
    monkeypatch.setattr(export, "DECISION_MAX_N", 256)
    assert "#define TAE_DECISION_MAX_N 256" in model_config_h(config_manifest(CONFIG))
    assert not _compiles(tmp_path, "tae_app.c", 2, 3)
