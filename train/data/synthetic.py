"""The embedded default: a deterministic 3-axis vibration generator (a small motor or fan on an IMU).

Why these numbers
-----------------
The Nano 33 BLE's IMU (LSM9DS1) samples its accelerometer at 119 Hz, so the default sample rate is
100 Hz and the default window 32–64 samples (0.3–0.6 s, 3–8 shaft turns). The shaft turns at
f0 = 9–12 Hz (540–720 rpm, drawn from the seed), so the 1x, 2x and 3x harmonics (at most 36 Hz, 43 Hz
under a frequency-shift fault) stay inside the 50 Hz Nyquist limit. At other sample rates any harmonic
above 0.45·fs is left out rather than aliased.

The normal signal (channel c in {acc_x, acc_y, acc_z}, in g, sample n)
--------------------------------------------------------------------
    speed(n) = 1 + ms·sin(2π·frac(n·rs + qs))        slow speed drift, 2–4 %, period 30–60 s
    amp(n)   = 1 + ma·sin(2π·frac(n·ra + qa))        slow load drift, 10–20 %, period 20–50 s
    inc(n)   = speed(n)·(f0/fs)                      shaft turns per sample
    φ(0) = 0,  φ(n+1) = frac(φ(n) + inc(n))          shaft phase in turns (float32 accumulator)
    x_c(n) = g_c + amp(n)·Σ_k h_ck·sin(2π·frac(k·φ(n) + p_ck)) + σ_c·gauss(n, c)

with g = gravity and mounting tilt (z ≈ 1 g), radial axes x, y carrying most of the 1x vibration and
the axial z less. gauss is an Irwin–Hall sum of four uniforms (mean 0, variance 1). Every random number
is a counter-based hash (lowbias32 by Chris Wellons, public domain constants) of (stream key + counter),
so NumPy can vectorize it and the C mirror (`firmware/lib/tinyae/src/tae_synth.c`) reproduces it
sample for sample: all arithmetic is float32 in the same order, only sin/exp may differ by an ulp
between NumPy and libm. Only the phase accumulators are sequential (a short Python loop over float32).

Faults (named, for the test split; severity values below are "subtle" / "obvious")
------------------------------------------------------------------------------
- ``imbalance``: the 1x amplitude of the radial axes grows by a factor (1 + s), s = 0.4 / 1.2.
- ``bearing``: a defect strikes at 0.43x shaft speed (cage-like rate; real outer-race rates of 3–5x
  would be closer together than the IMU's sampling allows); each strike rings at 0.3·fs and decays
  in 0.02 s; peak s = 0.2 / 0.8 g on x, 0.8·s on y, 0.5·s on z.
- ``looseness``: 2x and 3x grow (1 + 2s, 1 + 3s), a half-order subharmonic appears (s/2 of the 1x
  amplitude) and the radial vibration clips at (1.2 − 0.4s) times its 1x amplitude, s = 0.2 / 1.0.
- ``freq_shift``: the speed leaves its normal band, factor (1 + s), s = 0.07 / 0.18.
- ``spikes``: on 2 % of the samples a spike of ±s·(0.7..1.3) g hits one axis, s = 0.3 / 1.5; only the
  spiked samples are labelled anomalous (a window without a spike is normal).
- ``dropout``: subtle: acc_z sticks at its static value (its small vibration and noise vanish);
  obvious: acc_z reads exactly 0 (gravity lost, a disconnected sensor).

The default set (`make_synthetic()`): 240 s of normal training signal, 60 s of validation, then a
labelled 212 s test series — 20 s normal, then each fault at subtle severity, then each at obvious
severity, 8 s each, separated by 8 s of normal signal. The three parts come from one continuous
timeline separated by gaps of 10 s, so the drifts continue across them. Test labels are per sample.
Generation takes about 0.1 s.
"""

from __future__ import annotations

import math
import time
from array import array
from dataclasses import dataclass, field

import numpy as np

from tinyae.errors import UserError
from tinyae.train.data.csv_source import Series

CHANNEL_NAMES = ("acc_x", "acc_y", "acc_z")
DEFAULT_SAMPLE_RATE_HZ = 100.0
DEFAULT_WINDOW = 64
DEFAULT_HOP = 32

# Fault kinds; the integer codes are the C enum (tae_synth.h TAE_SYNTH_FAULT_*).
FAULT_KINDS = ("none", "imbalance", "bearing", "looseness", "freq_shift", "spikes", "dropout")
SEVERITY = {
    "imbalance": (0.4, 1.2),
    "bearing": (0.2, 0.8),
    "looseness": (0.2, 1.0),
    "freq_shift": (0.07, 0.18),
    "spikes": (0.3, 1.5),
    "dropout": (0.0, 1.0),
}

_F32 = np.float32
_TWO_PI = _F32(6.2831855)
_U32 = np.uint32
_MASK = 0xFFFFFFFF

# Stream keys (salts) shared with tae_synth.c.
_STREAM_PARAMS = 1
_STREAM_NOISE = 2  # + channel
_STREAM_SPIKE = 8

# Base harmonic amplitudes (g) per axis for k = 1, 2, 3; noise std per axis.
_BASE_H = ((0.30, 0.10, 0.05), (0.25, 0.08, 0.04), (0.08, 0.05, 0.03))
_NOISE = (0.03, 0.03, 0.02)
_BEARING_RATE = _F32(0.43)
_BEARING_GAIN = (_F32(1.0), _F32(0.8), _F32(0.5))
_SPIKE_PROB = _F32(0.02)


# ---------------------------------------------------------------- counter-based random numbers
def hash32(x: np.ndarray | int) -> np.ndarray:
    """lowbias32: a 32-bit integer hash with good avalanche (same constants in tae_synth.c)."""
    x = np.asarray(x, dtype=np.uint64) & _MASK
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _MASK
    x ^= x >> 15
    x = (x * 0x846CA68B) & _MASK
    x ^= x >> 16
    return x.astype(_U32)


def stream_key(seed: int, stream: int) -> int:
    return int(hash32((seed * 0x9E3779B9 + stream) & _MASK))


def uniform(key: int, counter: np.ndarray | int) -> np.ndarray:
    """float32 in [0, 1): the top 24 bits of hash(key + counter), exact in float32."""
    c = (np.asarray(counter, dtype=np.uint64) + key) & _MASK
    return (hash32(c) >> 8).astype(_F32) * _F32(1.0 / 16777216.0)


def _frac(x: np.ndarray) -> np.ndarray:
    return (x - np.floor(x)).astype(_F32)


# ---------------------------------------------------------------- machine parameters
@dataclass(frozen=True)
class Machine:
    """Parameters of one simulated machine, derived from the seed (tae_synth_init derives the same)."""

    f0_hz: np.float32
    h: np.ndarray  # float32 [3 axes, 3 harmonics]
    p: np.ndarray  # float32 [3, 3] harmonic phases in turns
    g: np.ndarray  # float32 [3] static value (gravity, tilt)
    ms: np.float32
    rs_period_s: np.float32
    qs: np.float32
    ma: np.float32
    ra_period_s: np.float32
    qa: np.float32


def machine(seed: int) -> Machine:
    key = stream_key(seed, _STREAM_PARAMS)
    u = uniform(key, np.arange(32))
    f = _F32
    h = np.empty((3, 3), _F32)
    p = np.empty((3, 3), _F32)
    for c in range(3):
        for k in range(3):
            i = 1 + 3 * c + k
            h[c, k] = f(_BASE_H[c][k]) * (f(0.8) + f(0.4) * u[i])
            p[c, k] = u[10 + 3 * c + k]
    g = np.array([f(0.1) * (u[19] - f(0.5)), f(0.1) * (u[20] - f(0.5)), f(0.98) + f(0.04) * u[21]], _F32)
    return Machine(
        f0_hz=f(9.0) + f(3.0) * u[0],
        h=h,
        p=p,
        g=g,
        ms=f(0.02) + f(0.02) * u[22],
        rs_period_s=f(30.0) + f(30.0) * u[23],
        qs=u[24],
        ma=f(0.10) + f(0.10) * u[25],
        ra_period_s=f(20.0) + f(30.0) * u[26],
        qa=u[27],
    )


# ---------------------------------------------------------------- the generator
def _accumulate(inc: np.ndarray) -> np.ndarray:
    """φ(0) = 0, φ(n+1) = frac(φ(n) + inc(n)) in float32, sequentially (as the C code does).

    Python floats are float64; the sum of two float32 values in [0, 1) is exact in float64, so rounding
    it once to float32 gives the float32 sum, and subtracting the floor of a float32 is exact. The
    rounding is a store into a float32 array (array "f": C's double-to-float conversion, round to
    nearest even, as NumPy's), about twice as fast as making a NumPy float32 scalar per sample.
    """
    out = array("f", bytes(4 * len(inc)))
    rounded = array("f", bytes(4))
    floor = math.floor
    ph = 0.0
    for i, d in enumerate(inc.tolist()):
        out[i] = ph
        rounded[0] = ph + d
        s = rounded[0]
        ph = s - floor(s)
    return np.frombuffer(out, _F32)


def generate(
    seed: int,
    n_samples: int,
    sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ,
    fault: np.ndarray | None = None,
    severity: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Samples 0..n_samples-1 of machine `seed`: (values float32 [n, 3], spike mask bool [n]).

    `fault` (int codes into FAULT_KINDS, per sample) and `severity` (float per sample) inject faults;
    without them the signal is normal. tae_synth_next() produces the same sequence.
    """
    if n_samples < 0:
        raise UserError(f"the synthetic series length must be >= 0, got {n_samples}; pass a positive length")
    if not sample_rate_hz > 0:
        raise UserError(f"the sample rate must be positive, got {sample_rate_hz}; pass e.g. 100")
    m = machine(seed)
    f = _F32
    fs = f(sample_rate_hz)
    n = np.arange(n_samples, dtype=np.int64)
    fault = np.zeros(n_samples, np.int8) if fault is None else np.asarray(fault, np.int8)
    sev = np.zeros(n_samples, _F32) if severity is None else np.asarray(severity, _F32)

    nf = n.astype(_F32)
    rs = f(1.0) / (m.rs_period_s * fs)
    ra = f(1.0) / (m.ra_period_s * fs)
    speed = f(1.0) + m.ms * np.sin(_TWO_PI * _frac(nf * rs + m.qs))
    speed = np.where(fault == 4, speed * (f(1.0) + sev), speed).astype(_F32)
    amp = (f(1.0) + m.ma * np.sin(_TWO_PI * _frac(nf * ra + m.qa))).astype(_F32)
    inc = (speed * (m.f0_hz / fs)).astype(_F32)

    ph = _accumulate(inc)
    ph_b = _accumulate((inc * _BEARING_RATE).astype(_F32))
    ph_h = _accumulate((inc * f(0.5)).astype(_F32))

    out = np.empty((n_samples, 3), _F32)
    nyq = f(0.45) * fs
    is_imb, is_loose = fault == 1, fault == 3
    for c in range(3):
        vib = np.zeros(n_samples, _F32)
        for k in range(3):
            a = np.full(n_samples, m.h[c, k], _F32)
            if k == 0 and c < 2:
                a = np.where(is_imb, a * (f(1.0) + sev), a).astype(_F32)
            if k > 0:
                a = np.where(is_loose, a * (f(1.0) + f(k + 1) * sev), a).astype(_F32)
            present = (f(k + 1) * m.f0_hz * speed) < nyq
            term = a * np.sin(_TWO_PI * _frac(f(k + 1) * ph + m.p[c, k]))
            vib = (vib + np.where(present, term, f(0.0))).astype(_F32)
        # looseness: half-order subharmonic, then clipping of the radial vibration
        sub = (f(0.5) * sev * m.h[c, 0]) * np.sin(_TWO_PI * ph_h)
        vib = np.where(is_loose, vib + sub, vib).astype(_F32)
        if c < 2:
            lim = ((f(1.2) - f(0.4) * sev) * m.h[c, 0]).astype(_F32)
            vib = np.where(is_loose, np.clip(vib, -lim, lim), vib).astype(_F32)
        x = (m.g[c] + amp * vib).astype(_F32)
        # bearing: decaying ringing after each strike
        tau = (ph_b / (inc * _BEARING_RATE)).astype(_F32)
        ring = np.exp(-tau / (f(0.02) * fs)) * np.sin(_TWO_PI * f(0.3) * tau)
        x = np.where(fault == 2, x + (sev * _BEARING_GAIN[c]) * ring, x).astype(_F32)
        # noise: Irwin-Hall(4), variance 1
        key = stream_key(seed, _STREAM_NOISE + c)
        u = uniform(key, (4 * n)[:, None] + np.arange(4)[None, :])
        gauss = (((u[:, 0] + u[:, 1]) + u[:, 2]) + u[:, 3] - f(2.0)) * f(1.7320508)
        x = (x + f(_NOISE[c]) * gauss).astype(_F32)
        out[:, c] = x

    # spikes
    key = stream_key(seed, _STREAM_SPIKE)
    us = uniform(key, (4 * n)[:, None] + np.arange(4)[None, :])
    spike = (fault == 5) & (us[:, 0] < _SPIKE_PROB)
    axis = np.minimum((us[:, 2] * f(3.0)).astype(np.int64), 2)
    mag = (sev * (f(0.7) + f(0.6) * us[:, 3])).astype(_F32)
    mag = np.where(us[:, 1] < f(0.5), -mag, mag).astype(_F32)
    rows = np.flatnonzero(spike)
    out[rows, axis[rows]] = (out[rows, axis[rows]] + mag[rows]).astype(_F32)
    # dropout: subtle (sev < 0.5) freezes acc_z at its static value; obvious zeroes it
    drop = fault == 6
    out[drop & (sev < f(0.5)), 2] = m.g[2]
    out[drop & (sev >= f(0.5)), 2] = f(0.0)
    return out, spike


# ---------------------------------------------------------------- the default data set
@dataclass(frozen=True)
class FaultSegment:
    start: int  # first sample (in the test series)
    stop: int  # one past the last sample
    kind: str  # one of FAULT_KINDS[1:]
    level: str  # "subtle" | "obvious"
    severity: float


@dataclass(frozen=True)
class SyntheticData:
    """Normal train/val series and a labelled test series with its fault segments."""

    train: Series
    val: Series
    test: Series
    segments: tuple[FaultSegment, ...]
    seed: int
    seconds_to_generate: float = field(compare=False, default=0.0)

    def fault_names(self) -> np.ndarray:
        """Per test sample: the fault kind of the segment, "normal" where the sample is not anomalous."""
        assert self.test.classes is not None
        return self.test.classes


def make_synthetic(
    seed: int = 0,
    *,
    sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ,
    train_s: float = 240.0,
    val_s: float = 60.0,
    lead_s: float = 20.0,
    fault_s: float = 8.0,
    gap_s: float = 8.0,
    part_gap_s: float = 10.0,
    faults: tuple[str, ...] = tuple(SEVERITY),
    levels: tuple[str, ...] = ("subtle", "obvious"),
) -> SyntheticData:
    """The default data set (see the module docstring): deterministic for a given seed."""
    t0 = time.perf_counter()
    for name in faults:
        if name not in SEVERITY:
            raise UserError(f"unknown synthetic fault {name!r}; choose among {', '.join(SEVERITY)}")
    for level in levels:
        if level not in ("subtle", "obvious"):
            raise UserError(f"unknown fault level {level!r}; choose 'subtle' or 'obvious'")

    def ns(seconds: float) -> int:
        return round(seconds * sample_rate_hz)

    n_train, n_val, n_gap = ns(train_s), ns(val_s), ns(part_gap_s)
    segments: list[FaultSegment] = []
    pos = ns(lead_s)
    for level in levels:
        for name in faults:
            severity = SEVERITY[name][0 if level == "subtle" else 1]
            segments.append(FaultSegment(pos, pos + ns(fault_s), name, level, severity))
            pos += ns(fault_s) + ns(gap_s)
    n_test = pos
    test_start = n_train + n_gap + n_val + n_gap
    total = test_start + n_test
    fault = np.zeros(total, np.int8)
    sev = np.zeros(total, _F32)
    for seg in segments:
        fault[test_start + seg.start : test_start + seg.stop] = FAULT_KINDS.index(seg.kind)
        sev[test_start + seg.start : test_start + seg.stop] = seg.severity
    values, spike = generate(seed, total, sample_rate_hz, fault, sev)

    labels = np.zeros(n_test, np.int8)
    f_test = fault[test_start:]
    labels[(f_test != 0) & (f_test != FAULT_KINDS.index("spikes"))] = 1
    labels[spike[test_start:]] = 1
    names = np.full(n_test, "normal", dtype=object)
    for seg in segments:
        part = names[seg.start : seg.stop]
        part[labels[seg.start : seg.stop] == 1] = seg.kind

    def series(a: int, b: int, lab: np.ndarray | None, part: str, cls: np.ndarray | None = None) -> Series:
        return Series(
            values=values[a:b].copy(),
            labels=lab,
            channel_names=CHANNEL_NAMES,
            sample_rate_hz=float(sample_rate_hz),
            source=f"synthetic(seed={seed}):{part}",
            classes=cls,
        )

    v0 = n_train + n_gap
    return SyntheticData(
        train=series(0, n_train, np.zeros(n_train, np.int8), "train"),
        val=series(v0, v0 + n_val, np.zeros(n_val, np.int8), "val"),
        test=series(test_start, total, labels, "test", names),
        segments=tuple(segments),
        seed=seed,
        seconds_to_generate=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------- difficulty report
def pca_difficulty(seed: int = 0, length: int = DEFAULT_WINDOW, hop: int = DEFAULT_HOP, k: int = 12) -> dict:
    """ROC AUC of a PCA-reconstruction baseline (k components, z-scored windows) per fault and level.

    A quick yardstick of how hard each fault is; windows are counted for a fault when they lie wholly
    inside its segment and are labelled anomalous, against all normal test windows.
    """
    from tinyae.train.data.windowing import make_windows, window_labels, window_starts

    d = make_synthetic(seed)
    tr = make_windows(d.train.values, length, hop).astype(np.float64)
    te = make_windows(d.test.values, length, hop).astype(np.float64)
    assert d.test.labels is not None
    lab = window_labels(d.test.labels, length, hop)
    starts = window_starts(len(d.test.values), length, hop)
    mu, sd = tr.reshape(-1, 3).mean(0), tr.reshape(-1, 3).std(0)
    a = ((tr - mu) / sd).reshape(len(tr), -1)
    b = ((te - mu) / sd).reshape(len(te), -1)
    center = a.mean(0)
    _, _, vt = np.linalg.svd(a - center, full_matrices=False)
    r = (b - center) - (b - center) @ vt[:k].T @ vt[:k]
    score = (r**2).mean(1)
    neg = score[lab == 0]

    def auc(pos: np.ndarray) -> float:
        s = np.concatenate([pos, neg])
        ranks = np.argsort(np.argsort(s, kind="stable"), kind="stable") + 1.0
        return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))

    out: dict = {"all": auc(score[lab == 1]), "seconds_to_generate": d.seconds_to_generate}
    for seg in d.segments:
        inside = (starts >= seg.start) & (starts + length <= seg.stop) & (lab == 1)
        out[f"{seg.kind}/{seg.level}"] = auc(score[inside])
    return out


def print_difficulty(seeds: tuple[int, ...] = (0, 1, 2)) -> None:
    """`make data-report`: generation time and the PCA baseline's ROC AUC per fault and level."""
    for s in seeds:
        res = pca_difficulty(s)
        print(f"seed {s}: generated in {res.pop('seconds_to_generate'):.3f} s; PCA-baseline ROC AUC")
        print("  " + "  ".join(f"{key} {val:.3f}" for key, val in res.items()))
