"""The embedded synthetic default and its C mirror (tae_synth.c, host build through ctypes)."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from tinyae.hostbuild import CORE_DIR, build_shared, load
from tinyae.train.data import FAULT_KINDS, make_synthetic
from tinyae.train.data.synthetic import SEVERITY, generate, hash32, machine, pca_difficulty, uniform

SRC = CORE_DIR / "src"


class SynthState(ctypes.Structure):
    # Opaque storage, larger than tae_synth_t; the size is checked against sizeof in C below.
    _fields_ = [("raw", ctypes.c_uint8 * 512)]


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    so = build_shared("tae_synth", [SRC / "tae_synth.c"], [SRC])
    lib = load(so)
    lib.tae_synth_init.argtypes = [ctypes.POINTER(SynthState), ctypes.c_uint32, ctypes.c_float]
    lib.tae_synth_next.argtypes = [ctypes.POINTER(SynthState), ctypes.POINTER(ctypes.c_float)]
    lib.tae_synth_set_fault.argtypes = [ctypes.POINTER(SynthState), ctypes.c_int]
    lib.tae_synth_set_fault_severity.argtypes = [ctypes.POINTER(SynthState), ctypes.c_int, ctypes.c_float]
    lib.tae_synth_default_severity.argtypes = [ctypes.c_int]
    lib.tae_synth_default_severity.restype = ctypes.c_float
    lib.tae_synth_hash.argtypes = [ctypes.c_uint32]
    lib.tae_synth_hash.restype = ctypes.c_uint32
    return lib


def run_c(lib: ctypes.CDLL, seed: int, n: int, fs: float = 100.0, schedule=()) -> np.ndarray:
    """n samples from the C generator; schedule = [(sample index, kind, severity)] switches faults."""
    st = SynthState()
    lib.tae_synth_init(ctypes.byref(st), seed, fs)
    out = np.zeros((n, 3), np.float32)
    buf = (ctypes.c_float * 3)()
    events = dict((i, (k, s)) for i, k, s in schedule)
    for i in range(n):
        if i in events:
            kind, sev = events[i]
            lib.tae_synth_set_fault_severity(ctypes.byref(st), kind, sev)
        lib.tae_synth_next(ctypes.byref(st), buf)
        out[i] = np.frombuffer(buf, np.float32)
    return out


def test_hash_matches_c(lib):
    xs = np.array([0, 1, 2, 12345, 0xFFFFFFFF, 0x9E3779B9], np.uint64)
    assert [int(v) for v in hash32(xs)] == [lib.tae_synth_hash(int(x)) for x in xs]
    u = uniform(77, np.arange(10000))
    assert u.dtype == np.float32 and u.min() >= 0 and u.max() < 1
    assert abs(float(u.mean()) - 0.5) < 0.01


def test_default_set_is_deterministic_and_labelled():
    # How long it takes is a bench figure (make bench: Pipeline, "data"), never asserted here.
    a = make_synthetic(0)
    b = make_synthetic(0)
    c = make_synthetic(1)
    assert np.array_equal(a.test.values, b.test.values)
    assert not np.array_equal(a.train.values, c.train.values)
    assert a.train.values.dtype == np.float32 and a.train.values.shape[1] == 3
    assert a.train.labels is not None and not a.train.labels.any() and not a.val.labels.any()
    labels = a.test.labels
    assert labels is not None and labels.dtype == np.int8
    names = a.fault_names()
    kinds = {s.kind for s in a.segments}
    assert kinds == set(SEVERITY)
    for seg in a.segments:
        seg_lab = labels[seg.start : seg.stop]
        if seg.kind == "spikes":
            assert 0 < seg_lab.mean() < 0.1  # only the spiked samples
        else:
            assert seg_lab.all()
        assert set(names[seg.start : seg.stop][seg_lab == 1]) == {seg.kind}
    outside = np.ones(len(labels), bool)
    for seg in a.segments:
        outside[seg.start : seg.stop] = False
    assert not labels[outside].any()


def test_normal_signal_is_plausible_vibration():
    d = make_synthetic(3, sample_rate_hz=100.0)
    v = d.train.values
    m = machine(3)
    assert 0.9 < v[:, 2].mean() < 1.1  # gravity on z
    assert np.all(v[:, :2].std(axis=0) > 0.1)
    x = v[:, 0] - v[:, 0].mean()
    freqs = np.fft.rfftfreq(len(x), 1 / 100.0)
    peak = freqs[np.argmax(np.abs(np.fft.rfft(x)))]
    assert abs(peak - float(m.f0_hz)) < 0.05 * float(m.f0_hz)
    assert 9.0 <= float(m.f0_hz) <= 12.0


@pytest.mark.parametrize("fs", [100.0, 119.0])
def test_c_mirror_matches_python_normal(lib, fs):
    n = 3000
    py, _ = generate(5, n, fs)
    c = run_c(lib, 5, n, fs)
    # same float32 formulas; only sinf/expf may differ by an ulp or so
    np.testing.assert_allclose(c, py, rtol=0, atol=2e-5)
    np.testing.assert_allclose(c.mean(0), py.mean(0), atol=1e-5)
    np.testing.assert_allclose(np.sqrt((c**2).mean(0)), np.sqrt((py**2).mean(0)), rtol=1e-5)


@pytest.mark.parametrize("kind", FAULT_KINDS[1:])
def test_c_mirror_matches_python_faults(lib, kind):
    n, start = 1500, 500
    code = FAULT_KINDS.index(kind)
    for sev in SEVERITY[kind]:
        fault = np.zeros(n, np.int8)
        fault[start:] = code
        sevs = np.zeros(n, np.float32)
        sevs[start:] = sev
        py, _ = generate(2, n, 100.0, fault, sevs)
        c = run_c(lib, 2, n, 100.0, [(start, code, sev)])
        np.testing.assert_allclose(c, py, rtol=0, atol=5e-5)
        normal, _ = generate(2, n, 100.0)
        assert np.abs(py[start:] - normal[start:]).max() > 0.05, f"{kind} at {sev} changes nothing"
        assert np.array_equal(py[:start], normal[:start])


def test_c_default_severity_is_the_obvious_level(lib):
    for kind, (_, obvious) in SEVERITY.items():
        got = lib.tae_synth_default_severity(FAULT_KINDS.index(kind))
        assert got == pytest.approx(obvious, rel=1e-6)
    assert lib.tae_synth_default_severity(0) == 0.0


def test_faults_detectable_but_not_all_trivial():
    """A PCA-reconstruction baseline separates the faults; the subtle ones less clearly."""
    res = pca_difficulty(0)
    res.pop("seconds_to_generate")
    assert res["all"] > 0.95
    subtle = {k: v for k, v in res.items() if k.endswith("/subtle")}
    obvious = {k: v for k, v in res.items() if k.endswith("/obvious")}
    assert len(subtle) == len(obvious) == len(SEVERITY)
    assert min(obvious.values()) > 0.99, obvious
    assert min(subtle.values()) > 0.8, subtle
    assert min(subtle.values()) < 0.99, f"every subtle fault is trivially separable: {subtle}"


@pytest.mark.emulator
def test_c_mirror_cross_compiles_for_cortex_m4_without_double_math(tmp_path):
    import shutil
    import subprocess

    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    obj = tmp_path / "tae_synth.o"
    flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-ffp-contract=off"]
    arch = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-Os"]
    subprocess.run(
        ["arm-none-eabi-gcc", *flags, *arch, "-c", str(SRC / "tae_synth.c"), "-o", str(obj)], check=True
    )
    undefined = subprocess.run(
        ["arm-none-eabi-nm", "-u", str(obj)], check=True, capture_output=True, text=True
    ).stdout.split()
    assert not [s for s in undefined if s.startswith("__aeabi_d")], undefined  # no soft-double
    assert not {"malloc", "printf", "free"} & set(undefined)
