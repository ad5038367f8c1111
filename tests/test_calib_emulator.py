"""On-site calibration on the emulated board (the real firmware on QEMU's Cortex-M4F, its record in a
storage directory through semihosting): end to end on the board's sensor, bit-identical to the host
mirror, surviving a reset; `verify` bit-exact afterwards; and every fault on the real firmware: data
that are not normal, a reset and a power loss mid-calibration, a power loss inside the record write,
corrupt and foreign records, a record made offline, the factory reset, and the image that calibrates
itself at first boot. Never a half-written or mismatched calibration in use."""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import has_arm_toolchain
from tinyae.cli import main as tinyae
from tinyae.errors import UserError
from tinyae.tools.emulator.qemu import EXIT_STORE_FAULT, STORE_FILE, Emulator, build_image
from tinyae.tools.link import protocol as p
from tinyae.tools.link.device import Device, open_port
from tinyae.train.calibration import CalibSpec
from tinyae.train.calibration.record import Record
from tinyae.train.manifest import Manifest

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.skipif(not has_arm_toolchain(), reason="needs arm-none-eabi-gcc and qemu-system-arm"),
]

N = 99  # windows per phase these tests calibrate with: between the default model's minimum and its 128
SITE = np.float32([0.12, -0.08, 0.05])


@pytest.fixture(scope="module")
def model(default_model_dir) -> tuple[Path, dict, CalibSpec]:
    m = json.loads((default_model_dir / "manifest.json").read_text())
    return default_model_dir, m, Manifest.from_dict(m).calib_spec()


NF = 8  # windows per phase of the few-windows variant (its minimum: 4)


@pytest.fixture(scope="module")
def few(default_model_dir, tmp_path_factory) -> tuple[Path, dict, CalibSpec]:
    """The default model with an on-site calibration of few windows (the 90th percentile: 4 at least,
    8 at most; an anomalous stretch is 3 of 4 windows), so the tests that run a whole calibration on the
    board's real-time sensor stay short; only the calibration section and model_config.h differ
    (CalibSpec.rederive)."""
    import shutil

    from tinyae.train.calibration.spec import manifest_quant
    from tinyae.train.export import write_headers

    d = tmp_path_factory.mktemp("few_windows") / "model"
    shutil.copytree(default_model_dir, d)
    man = Manifest.load(d / "manifest.json")
    changes = {
        "setting": "percentile",
        "method": "percentile",
        "percentile": 90.0,
        "windows": NF,
        "method_source": "tests: few windows",
        "max_over_stretch_setting": (3, 4),
    }
    spec = man.calib_spec().rederive(changes, manifest_quant(man.to_dict()))
    man.calibration = spec.to_manifest()
    man.write(d / "manifest.json")
    write_headers(man, (d / "model_int8.tflite").read_bytes(), d)
    return d, man.to_dict(), spec


@pytest.fixture(scope="module")
def few_elf(few, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fw_few")
    build_image(out, model_dir=few[0])
    return out / "tinyae.elf"


def synthetic(n: int, fault: str | None = None) -> np.ndarray:
    """The default machine's signal (the model's training source), optionally with an obvious fault."""
    from tinyae.train.data.synthetic import FAULT_KINDS, SEVERITY, generate

    if fault is None:
        x, _ = generate(0, n)
    else:
        x, _ = generate(
            0, n, fault=np.full(n, FAULT_KINDS.index(fault)), severity=np.full(n, SEVERITY[fault][1])
        )
    return x.astype(np.float32)


def write_csv(path: Path, x: np.ndarray, names: list[str]) -> Path:
    np.savetxt(path, x, delimiter=",", header=",".join(names), comments="", fmt="%.9g")
    return path


def cli(*args: str) -> int:
    """`tinyae device ARGS`."""
    return tinyae(["device", *args])


def session(emu: Emulator) -> tuple[Device, p.Info]:
    dev = Device(open_port(emu.url), timeout=10.0, name=emu.url)
    return dev, dev.handshake()


def wait_boot(dev: Device, timeout: float = 10.0) -> p.Boot:
    """The BOOT frame after a reset (the banner line before it is not a frame)."""
    dev.info = None
    deadline = time.monotonic() + timeout
    while True:
        msg = dev.next_message(deadline, "the boot frame")
        if isinstance(msg, p.Boot):
            return msg


def offline_record(model_dir: Path, names: list[str], tmp_path: Path, x: np.ndarray, n: int = N) -> bytes:
    csv = write_csv(tmp_path / "offline.csv", x, names)
    out = tmp_path / "offline.bin"
    assert tinyae(["calibrate", "--model-dir", str(model_dir), "--csv", str(csv), "--windows", str(n),
                       "--out", str(out)]) == 0  # fmt: skip
    return out.read_bytes()


def reseal(b: bytes) -> bytes:
    return b[:-4] + struct.pack("<I", zlib.crc32(b[:-4]) & 0xFFFFFFFF)


# ---------------------------------------------------------------- end to end
def test_calibration_on_the_board_survives_a_reset_and_verify_stays_bit_exact(model, default_elf, tmp_path):
    model_dir, _, spec = model
    flash = tmp_path / "flash"
    base = ["--emulator", str(default_elf), "--emulator-storage", str(flash), "--model-dir", str(model_dir)]
    report = tmp_path / "calibrate.json"
    assert cli("calibrate", *base, "--windows", str(N), "--json", str(report), "--quiet") == 0
    r = json.loads(report.read_text())
    assert r["ok"] and r["record_equal"] and r["outcome"] == "stored"
    assert r["scores_equal"] == r["scores_compared"] == 2 * N  # every calibration window, bit for bit
    record = (flash / STORE_FILE).read_bytes()
    assert record == bytes.fromhex(r["device_record_hex"])
    rec = Record.from_bytes(record)
    # a reset (the board's reset button): the record is loaded again and in use
    with Emulator(default_elf, storage=flash, qmp=True) as emu:
        dev, info = session(emu)
        assert (info.calib_state, info.calib_boot, info.calib_crc) == (1, p.RecordVerdict.VALID, rec.crc)
        emu.reset()
        boot = wait_boot(dev)
        assert (boot.calib_state, boot.calib_boot, boot.calib_crc) == (1, p.RecordVerdict.VALID, rec.crc)
        assert boot.threshold == np.float32(rec.threshold) != boot.model_threshold
        dev.close()
    # verify after the calibration (a power cycle later): the reference applies the record
    vj = tmp_path / "verify.json"
    assert cli("verify", *base, "--json", str(vj), "--quiet") == 0
    v = json.loads(vj.read_text())
    assert v["ok"] and v["output_mismatches"] == 0 and v["calibration"]["crc"] == f"{rec.crc:08x}"
    ij = tmp_path / "info.json"
    assert cli("info", *base, "--json", str(ij)) == 0
    i = json.loads(ij.read_text())
    assert i["calibration"]["record"]["crc"] == f"{rec.crc:08x}"
    # every decision constant equal, the board's calibration digest (its constants under the record's CRC
    # recipe: minimum windows and stretch rule included) and the record it decides with among them
    rows = {c["name"]: c for c in i["constants"]}
    assert i["decides_as_artifacts"] and all(c["ok"] for c in rows.values())
    assert rows["calibration constants (digest)"]["device"] == f"{spec.config_crc:08x}"
    assert rows["calibration record"]["ok"] and rec.config_crc == spec.config_crc
    assert cli("calibrate", *base, "--factory") == 0
    assert not (flash / STORE_FILE).exists()


def test_a_record_made_offline_on_the_board_with_this_sites_offsets(model, default_elf, tmp_path):
    model_dir, m, spec = model
    names = m["window"]["channel_names"]
    flash = tmp_path / "flash"
    base = ["--emulator", str(default_elf), "--emulator-storage", str(flash), "--model-dir", str(model_dir)]
    record = offline_record(model_dir, names, tmp_path, synthetic(spec.total_samples(N)) + SITE)
    (tmp_path / "site.bin").write_bytes(record)
    assert cli("calibrate", *base, "--record", str(tmp_path / "site.bin")) == 0
    assert (flash / STORE_FILE).read_bytes() == record
    # the site's data through the Cortex-M4F's correction: bit-exact with the host reference
    test = np.load(model_dir / "test_vectors.npz")["series"][:3000] + SITE
    vj = tmp_path / "verify.json"
    assert cli("verify", *base, "--csv", str(write_csv(tmp_path / "site.csv", test, names)),
               "--json", str(vj), "--quiet") == 0  # fmt: skip
    v = json.loads(vj.read_text())
    assert v["ok"] and v["input_mismatches"] == 0 and v["scores_exact_equal"] == v["windows_compared"]


# ---------------------------------------------------------------- faults
def test_data_that_are_not_normal_are_refused_on_the_board(model, default_elf, tmp_path, capsys):
    model_dir, m, spec = model
    flash = tmp_path / "flash"
    csv = write_csv(
        tmp_path / "faulty.csv", synthetic(spec.total_samples(N), "looseness"), m["window"]["channel_names"]
    )
    code = cli("calibrate", "--emulator", str(default_elf), "--emulator-storage", str(flash), "--model-dir",
               str(model_dir), "--csv", str(csv), "--windows", str(N), "--quiet")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "the calibration was refused" in err and "the data were not normal" in err
    assert "Traceback" not in err
    assert not (flash / STORE_FILE).exists()


def tail_fault(
    n: int, fault_samples: int = 256, kind: str = "looseness", severity: float | None = None
) -> np.ndarray:
    """n samples of the default machine whose last `fault_samples` are a fault (default: subtle looseness)."""
    from tinyae.train.data.synthetic import FAULT_KINDS, SEVERITY, generate

    f = np.zeros(n, np.int8)
    f[-fault_samples:] = FAULT_KINDS.index(kind)
    sev = np.where(f != 0, SEVERITY[kind][0] if severity is None else severity, 0).astype(np.float32)
    return generate(0, n, fault=f, severity=sev)[0].astype(np.float32)


def spread(x: np.ndarray, channel: int, factor: float) -> np.ndarray:
    y = x.copy()
    y[:, channel] = (y[:, channel] - y[:, channel].mean()) * np.float32(factor) + y[:, channel].mean()
    return y


@pytest.mark.parametrize(
    ("case", "outcome", "words"),
    [
        (
            "tail fault",
            "anomalous_stretch",
            "consecutive windows above it make a stretch the model calls anomalous",
        ),
        ("acc_x spread x3", "scale", "the spread of acc_x on site is 3."),
    ],
)
def test_refusals_on_the_board_match_the_host_mirror(
    model, default_elf, tmp_path, capsys, case, outcome, words
):
    """Refused on the Cortex-M4F as on the host mirror: the same outcome, the record bit-identical, one
    sentence naming the cause (exit 2, not the mirror-disagrees exit 1); nothing stored."""
    model_dir, m, spec = model
    flash = tmp_path / "flash"
    x = (  # the tail fault between subtle and obvious, as in tests/test_calib_cli.py (REFUSED)
        tail_fault(spec.total_samples(N), kind="imbalance", severity=0.64)
        if case == "tail fault"
        else spread(synthetic(spec.total_samples(N)), 0, 3)
    )
    csv = write_csv(tmp_path / "site.csv", x, m["window"]["channel_names"])
    out = tmp_path / "r.json"
    code = cli("calibrate", "--emulator", str(default_elf), "--emulator-storage", str(flash), "--model-dir",
               str(model_dir), "--csv", str(csv), "--json", str(out), "--quiet")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and words in errors[0], err
    r = json.loads(out.read_text())
    assert r["outcome"] == r["mirror"]["outcome"] == outcome and r["record_equal"] and r["ok"]
    assert not (flash / STORE_FILE).exists()


def test_too_few_windows_are_refused_by_the_host_and_the_board(model, default_elf, tmp_path, capsys):
    model_dir, least = model[0], model[2].min_windows
    flash = tmp_path / "flash"
    code = cli("calibrate", "--emulator", str(default_elf), "--emulator-storage", str(flash), "--model-dir",
               str(model_dir), "--windows", str(least - 1), "--quiet")  # fmt: skip
    err = capsys.readouterr().err
    assert (
        code == 2 and f"--windows {least - 1} is too few: a calibration needs at least {least} windows" in err
    )
    with Emulator(default_elf, storage=flash) as emu:  # the board refuses it on its own, too
        dev, _ = session(emu)
        with pytest.raises(
            UserError,
            match=f"cannot calibrate over {least - 1} windows per phase: its firmware needs at least {least}",
        ):
            dev.calib_command(p.CalibAction.START, least - 1)
        assert dev.calib_query().outcome == p.CalibOutcome.NONE
        dev.close()


def test_a_stored_record_in_use_is_named_when_the_board_boots(model, default_elf, tmp_path, capsys):
    model_dir, m, spec = model
    flash = tmp_path / "flash"
    base = ["--emulator", str(default_elf), "--emulator-storage", str(flash), "--model-dir", str(model_dir)]
    assert cli("info", *base) == 0
    assert "calibration record" not in capsys.readouterr().err
    flash.mkdir(exist_ok=True)
    record = offline_record(
        model_dir, m["window"]["channel_names"], tmp_path, synthetic(spec.total_samples(N))
    )
    (flash / STORE_FILE).write_bytes(record)
    capsys.readouterr()
    assert cli("info", *base) == 0
    err = capsys.readouterr().err
    crc = Record.from_bytes(record).crc
    assert f"note: the emulated board uses the calibration record in {flash} (crc {crc:08x}" in err


def test_a_reset_or_power_loss_mid_calibration_leaves_the_previous_record(few, few_elf, tmp_path):
    model_dir, m, spec = few
    flash = tmp_path / "flash"
    flash.mkdir()
    old = offline_record(
        model_dir, m["window"]["channel_names"], tmp_path, synthetic(spec.total_samples(NF)), NF
    )
    (flash / STORE_FILE).write_bytes(old)
    crc = Record.from_bytes(old).crc
    for how in ("reset", "power loss"):
        with Emulator(few_elf, storage=flash, qmp=True) as emu:
            dev, info = session(emu)
            assert info.calib_crc == crc
            dev.set(p.Param.MODE, p.Mode.SENSOR)
            dev.calib_command(p.CalibAction.START, NF)
            deadline = time.monotonic() + 30
            while True:  # into phase 2: the candidate correction exists, nothing is stored yet
                msg = dev.next_message(deadline, "the phase change")
                if isinstance(msg, p.CalibStatus):
                    assert msg.state == p.CalibState.SCORES
                    break
            if how == "reset":
                emu.reset()
                boot = wait_boot(dev)
                assert (boot.calib_boot, boot.calib_crc, boot.calib_state) == (p.RecordVerdict.VALID, crc, 1)
            dev.close()
        # "power loss": leaving the block stops QEMU by its PID in the middle of the calibration
        assert (flash / STORE_FILE).read_bytes() == old
    with Emulator(few_elf, storage=flash) as emu:
        dev, info = session(emu)
        assert (info.calib_boot, info.calib_crc) == (p.RecordVerdict.VALID, crc)
        dev.close()


@pytest.fixture(scope="module")
def store_fault_elf(few, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fw_store_fault")
    build_image(out, model_dir=few[0], store_fault=True)
    return out / "tinyae.elf"


def test_a_power_loss_inside_the_record_write_leaves_the_previous_record(
    few, few_elf, store_fault_elf, tmp_path
):
    model_dir, m, spec = few
    flash = tmp_path / "flash"
    flash.mkdir()
    old = offline_record(
        model_dir, m["window"]["channel_names"], tmp_path, synthetic(spec.total_samples(NF)) + SITE, NF
    )
    (flash / STORE_FILE).write_bytes(old)
    with Emulator(store_fault_elf, storage=flash) as emu:
        dev, info = session(emu)
        dev.set(p.Param.MODE, p.Mode.SENSOR)
        dev.calib_command(p.CalibAction.START, NF)
        assert emu.wait(60) == EXIT_STORE_FAULT  # stopped between writing the new record and committing it
        dev.close()
    assert (flash / STORE_FILE).read_bytes() == old  # the old record, whole
    new = (flash / "tinyae-calibration.tmp").read_bytes()
    assert Record.from_bytes(new).crc != Record.from_bytes(old).crc  # the new one existed, uncommitted
    with Emulator(few_elf, storage=flash) as emu:  # power back on, the normal image
        dev, info = session(emu)
        assert (info.calib_boot, info.calib_crc) == (p.RecordVerdict.VALID, Record.from_bytes(old).crc)
        dev.close()


def test_corrupt_and_foreign_records_are_never_used(model, default_elf, tmp_path):
    model_dir, m, spec = model
    flash = tmp_path / "flash"
    flash.mkdir()
    good = offline_record(
        model_dir, m["window"]["channel_names"], tmp_path, synthetic(spec.total_samples(N)) + SITE
    )
    torn = good[: len(good) // 2]
    flipped = bytearray(good)
    flipped[80] ^= 0x04
    other_model = bytearray(good)
    other_model[8:40] = bytes(range(32))
    other_config = bytearray(good)
    other_config[40:44] = b"\x00\x00\x00\x00"
    cases = [
        (torn, p.RecordVerdict.CORRUPT),
        (bytes(flipped), p.RecordVerdict.CORRUPT),
        (reseal(bytes(other_model)), p.RecordVerdict.OTHER_MODEL),
        (reseal(bytes(other_config)), p.RecordVerdict.OTHER_CONFIG),
    ]
    for blob, verdict in cases:
        (flash / STORE_FILE).write_bytes(blob)
        with Emulator(default_elf, storage=flash) as emu:
            dev, info = session(emu)
            assert (info.calib_boot, info.calib_state, info.calib_crc) == (verdict, p.CalibState.FACTORY, 0)
            assert info.threshold == info.model_threshold
            dev.close()
    # the factory values are what the board computes: verify against the reference without a record
    (flash / STORE_FILE).write_bytes(reseal(bytes(other_model)))
    vj = tmp_path / "verify.json"
    assert cli("verify", "--emulator", str(default_elf), "--emulator-storage", str(flash), "--model-dir",
               str(model_dir), "--json", str(vj), "--quiet") == 0  # fmt: skip
    v = json.loads(vj.read_text())
    assert v["ok"] and v["calibration"] is None


def test_a_record_with_an_edited_threshold_is_refused_at_boot_and_at_install(model, default_elf, tmp_path):
    """A genuine record with its threshold edited within the bounds and its CRC recomputed (an audit's
    0.25 for 0.0577 halved the recall, 0.017 made every normal window alarm, with info and verify
    passing): the board's own check recomputes it from the record's score statistics, so the board
    ignores it in storage and refuses it written, with the same verdict. One boot."""
    from tinyae.tools.link.device import DeviceError

    model_dir, m, spec = model
    good = Record.from_bytes(
        offline_record(
            model_dir, m["window"]["channel_names"], tmp_path, synthetic(spec.total_samples(N)) + SITE
        )
    )
    assert spec.method == "mean_std" and good.threshold < spec.threshold_max * 0.95
    high = Record(**{**good.__dict__, "threshold": float(np.float32(spec.threshold_max * 0.95))}).to_bytes()
    low = Record(**{**good.__dict__, "threshold": float(np.float32(spec.threshold_min * 1.05))}).to_bytes()
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / STORE_FILE).write_bytes(high)
    with Emulator(default_elf, storage=flash) as emu:
        dev, info = session(emu)
        assert (info.calib_boot, info.calib_state, info.calib_crc) == (
            p.RecordVerdict.BOUNDS, p.CalibState.FACTORY, 0
        )  # fmt: skip
        assert info.threshold == info.model_threshold
        with pytest.raises(
            DeviceError, match=r"refused the calibration record: .*not what its own statistics"
        ):
            dev.calib_command(p.CalibAction.WRITE, record=low)
        status = dev.calib_query()
        assert status.record_kind == p.RecordKind.NONE and status.outcome == p.CalibOutcome.REJECTED
        assert dev.handshake().threshold == info.model_threshold
        dev.close()
    assert (flash / STORE_FILE).read_bytes() == high  # nothing written


# ---------------------------------------------------------------- calibrating itself at first boot
@pytest.fixture(scope="module")
def calib_boot_elf(few, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fw_calib_boot")
    build_image(out, model_dir=few[0], calib_at_boot=True)
    return out / "tinyae.elf"


def test_the_image_built_to_calibrate_at_first_boot_does_it_once(few, calib_boot_elf, tmp_path):
    spec = few[2]
    flash = tmp_path / "flash"
    with Emulator(calib_boot_elf, storage=flash, qmp=True) as emu:
        dev = Device(open_port(emu.url), timeout=10.0, name=emu.url)
        boot = wait_boot(dev)
        assert (boot.calib_state, boot.mode, boot.calib_boot) == (p.CalibState.STATS, p.Mode.SENSOR, 0)
        deadline = time.monotonic() + 120
        while True:
            msg = dev.next_message(deadline, "the end of the first-boot calibration")
            if isinstance(msg, p.CalibStatus) and msg.outcome != p.CalibOutcome.RUNNING:
                break
        assert msg.outcome == p.CalibOutcome.STORED and msg.windows == spec.windows
        assert (flash / STORE_FILE).read_bytes() == msg.record
        emu.reset()
        boot = wait_boot(dev)  # calibrated: no second calibration, host-stream mode as usual
        assert (boot.calib_state, boot.mode, boot.calib_crc) == (
            1,
            p.Mode.HOST_STREAM,
            Record.from_bytes(msg.record).crc,
        )
        dev.close()


def test_the_calibration_memory_is_fixed_and_counted(model, default_elf):
    """No heap: the state is static, sized at build time from TAE_CALIB_WINDOWS; the manifest's
    ram_bytes (the budget estimate's term) is what the linked image holds, and the gate counts it."""
    from tinyae.tools.budget.elf import read_elf
    from tinyae.tools.budget.estimate import estimate_from_manifest

    _, m, spec = model
    img = read_elf(default_elf)
    names = {"g_cal", "g_rec", "g_rec_packed", "g_cand", "g_io", "g_calibrated", "g_boot_verdict",
             "g_outcome", "g_detail"}  # fmt: skip
    state = {s.name: s.size for s in img.symbols if s.name in names}
    assert set(state) == names
    assert sum(state.values()) == m["calibration"]["ram_bytes"] == spec.state_bytes
    assert state["g_rec_packed"] == spec.record_bytes == 72 + 16 * spec.channels
    assert not [s for s in img.symbols if s.name in ("malloc", "_sbrk", "free")]
    est = estimate_from_manifest(m, "mps2_an386", "compiled")
    (ram_term,) = [t for t in est.terms if t[0] == "ram" and t[1] == "on-site calibration"]
    assert ram_term[2] == spec.state_bytes


def test_every_refusal_on_the_board_matches_the_host_mirror(few, few_elf, tmp_path):
    """Each refusal kind on the Cortex-M4F, on every channel where it is per channel: the board's outcome,
    detail and candidate record are the host mirror's, bit for bit, and the NumPy cross-check agrees
    (the few-windows variant: 8 windows per phase)."""
    from tinyae.tools.link import calibration as cal
    from tinyae.train.calibration import report as rep
    from tinyae.train.reference import HostReference

    model_dir, m, spec = few
    names = m["window"]["channel_names"]
    reference = HostReference.from_manifest(
        (model_dir / "model_int8.tflite").read_bytes(), Manifest.from_dict(m)
    )
    base = synthetic(spec.total_samples(NF))
    cases: list[tuple[str, np.ndarray, str, int]] = []
    for k in range(spec.channels):
        shifted = base.copy()
        shifted[:, k] += np.float32(4 * spec.ref_std[k])
        cases.append((f"shift {names[k]}", shifted, "shift", k))
        cases.append((f"spread x3 {names[k]}", spread(base, k, 3.0), "scale", k))
        nan = base.copy()
        nan[17, k] = np.nan
        cases.append((f"NaN {names[k]}", nan, "not_finite", k))
    cases.append(("tail fault", tail_fault(spec.total_samples(NF), 128), "anomalous_stretch", -1))
    cases.append(("faulty throughout", synthetic(spec.total_samples(NF), "looseness"), "threshold_high", 255))
    with Emulator(few_elf, storage=tmp_path / "flash") as emu:
        dev, _ = session(emu)
        for what, x, outcome, detail in cases:
            run = cal.on_stream(dev, spec, x, NF, what)
            check = cal.against_mirror(run, spec, model_dir, reference)
            assert run.outcome == check.mirror.outcome == outcome, what
            assert check.ok, (what, check.disagreement())
            if detail >= 0:
                assert run.final.detail == check.mirror.detail == detail, what
            sentence = rep.refusal_sentence(
                run.outcome, run.final.detail, run.candidate, spec, names, check.mirror
            )
            if outcome in ("shift", "scale", "not_finite"):
                assert names[detail] in sentence, (what, sentence)
        dev.close()
    assert not (tmp_path / "flash" / STORE_FILE).exists()
