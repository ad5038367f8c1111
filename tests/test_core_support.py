"""Helpers shared by the tests/test_core_*.py files: a temporary model_config.h, the host build of
the pipeline with the stub engine (firmware/tests/core_stub.c), ctypes bindings, and the NumPy
mirror of the stub engine. The tests at the bottom check the helpers themselves."""

from __future__ import annotations

import ctypes
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tinyae import hostbuild
from tinyae.tools.simdevice import vectors as protocol_vectors

ROOT = Path(__file__).resolve().parent.parent
CORE_SRC = ROOT / "firmware" / "lib" / "tinyae" / "src"
FW_TESTS = ROOT / "firmware" / "tests"
PIPELINE_SOURCES = [CORE_SRC / "tae_pipeline.c", FW_TESTS / "core_stub.c"]
STUB_ENGINE_COST = 1000  # TAE_STUB_ENGINE_COST in core_stub.h
CLOCK_READ_COST = 1  # every tae_port_cycles() call advances the stub clock by one


def c_float(x: float) -> str:
    """A C/C++ float literal that parses to exactly float32(x) (9 significant digits round-trip)."""
    text = format(float(np.float32(x)), ".9g")
    if "e" not in text and "." not in text:
        text += ".0"
    return f"{text}f"


@dataclass
class Config:
    """The model_config.h values the pipeline reads."""

    L: int = 8
    H: int = 3
    C: int = 3
    offset: list[float] = field(default_factory=lambda: [0.25, -1.5, 3.0])
    scale: list[float] = field(default_factory=lambda: [0.5, 2.0, 1.25])
    in_scale: float = 0.05
    in_zp: int = -3
    out_scale: float = 0.0625
    out_zp: int = 5
    threshold: float = 1.0
    kind: str = "mse"
    k: int = 2
    n: int = 3

    @property
    def gain(self) -> np.ndarray:
        # as the manifest defines it: float32(1 / (scale * s_in)) computed in float64
        return (1.0 / (np.asarray(self.scale, np.float64) * self.in_scale)).astype(np.float32)

    @property
    def size(self) -> int:
        return self.L * self.C

    def as_config(self) -> dict:
        """These values in the protocol test configuration's form (tools/protocol_vectors.CONFIG)."""
        return {
            "window_len": self.L, "hop": self.H, "channels": self.C,
            "input_size": self.size, "output_size": self.size,
            "in_scale": self.in_scale, "in_zero_point": self.in_zp,
            "out_scale": self.out_scale, "out_zero_point": self.out_zp,
            "norm_offset": list(self.offset), "norm_gain": [float(g) for g in self.gain],
            "threshold": self.threshold, "score_kind": ("mse", "mae").index(self.kind),
            "decision_k": self.k, "decision_n": self.n, "sample_rate_hz": 100.0,
            "model_sha256": bytes(range(32)).hex(),
        }  # fmt: skip

    def header(self) -> str:
        """model_config.h rendered through the model's template (model_config.h.j2), never by hand."""
        return protocol_vectors.model_config_h(self.as_config(), arena_bytes=8192)

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model_config.h").write_text(self.header())
        return directory


class Record(ctypes.Structure):
    _fields_ = [  # ctypes layout of tae_stub_record_t
        ("seq", ctypes.c_uint32),
        ("score", ctypes.c_float),
        ("anomaly", ctypes.c_uint8),
        ("alarm", ctypes.c_uint8),
        ("status", ctypes.c_int32),
        ("cost", ctypes.c_uint32),
    ]


class Result(ctypes.Structure):
    _fields_ = [  # ctypes layout of tae_result_t
        ("seq", ctypes.c_uint32),
        ("score", ctypes.c_float),
        ("anomaly", ctypes.c_uint8),
        ("alarm", ctypes.c_uint8),
        ("status", ctypes.c_int32),
        ("cost", ctypes.c_uint32),
        ("input_q", ctypes.POINTER(ctypes.c_int8)),
        ("output_q", ctypes.POINTER(ctypes.c_int8)),
    ]


@dataclass
class Windows:
    """Completed windows as the pipeline reported them."""

    seq: np.ndarray
    score: np.ndarray
    anomaly: np.ndarray
    alarm: np.ndarray
    status: np.ndarray
    cost: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray

    def assert_equal(self, other: Windows) -> None:
        for name in ("seq", "anomaly", "alarm", "status", "cost", "inputs", "outputs"):
            np.testing.assert_array_equal(getattr(self, name), getattr(other, name), err_msg=name)
        np.testing.assert_array_equal(self.score.view(np.uint32), other.score.view(np.uint32))


class Pipeline:
    """The host-built pipeline (tae_pipeline.c + stub engine) for one Config."""

    def __init__(self, cfg: Config, build_dir: Path) -> None:
        self.cfg = cfg
        cfg.write(build_dir)
        path = hostbuild.build_shared(
            "test_core_pipeline", PIPELINE_SOURCES, include_dirs=[build_dir, CORE_SRC, FW_TESTS]
        )
        self.lib = hostbuild.load(path)
        lib = self.lib
        lib.tae_stub_pipeline_size.restype = ctypes.c_size_t
        lib.tae_stub_result_size.restype = ctypes.c_size_t
        lib.tae_stub_run.restype = ctypes.c_uint32
        lib.tae_stub_run.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_uint32,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.tae_pipeline_push.restype = ctypes.c_int
        lib.tae_pipeline_push.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(Result)]
        lib.tae_pipeline_set_threshold.argtypes = [ctypes.c_void_p, ctypes.c_float]
        lib.tae_pipeline_set_correction.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.tae_quantize_features.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.tae_score.restype = ctypes.c_float
        lib.tae_score.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        assert lib.tae_stub_result_size() == ctypes.sizeof(Result)
        self.fail_every = ctypes.c_uint32.in_dll(lib, "tae_stub_fail_every")
        self.state = ctypes.create_string_buffer(lib.tae_stub_pipeline_size())
        self.reset()

    def reset(self, fail_every: int = 0) -> None:
        self.fail_every.value = fail_every
        self.lib.tae_engine_init()
        self.lib.tae_pipeline_init(self.state)

    def set_threshold(self, value: float) -> None:
        self.lib.tae_pipeline_set_threshold(self.state, value)

    def set_correction(self, shift, gain) -> None:  # type: ignore[no-untyped-def]
        """On-site calibration's correction (kept alive here: the pipeline holds the pointers)."""
        if shift is None:
            self._correction = None
            self.lib.tae_pipeline_set_correction(self.state, None, None)
            return
        self._correction = (np.ascontiguousarray(shift, np.float32), np.ascontiguousarray(gain, np.float32))
        self.lib.tae_pipeline_set_correction(
            self.state, self._correction[0].ctypes.data, self._correction[1].ctypes.data
        )

    def quantize(self, windows: np.ndarray) -> np.ndarray:
        """tae_quantize_features over [n, L, C] windows -> [n, L*C] int8."""
        w = np.ascontiguousarray(windows, np.float32).reshape(len(windows), -1)
        out = np.zeros(w.shape, np.int8)
        for i in range(len(w)):
            self.lib.tae_quantize_features(w[i].ctypes.data, out[i].ctypes.data)
        return out

    def score(self, in_q: np.ndarray, out_q: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(in_q, np.int8)
        b = np.ascontiguousarray(out_q, np.int8)
        return np.array(
            [self.lib.tae_score(a[i].ctypes.data, b[i].ctypes.data) for i in range(len(a))], np.float32
        )

    def run(self, samples: np.ndarray) -> Windows:
        """Push samples [n, C] in one call of tae_stub_run; returns the completed windows."""
        s = np.ascontiguousarray(samples, np.float32)
        max_w = len(s) + 1
        rec = (Record * max_w)()
        ins = np.zeros((max_w, self.cfg.size), np.int8)
        outs = np.zeros((max_w, self.cfg.size), np.int8)
        n = self.lib.tae_stub_run(
            self.state, s.ctypes.data, len(s), max_w, rec, ins.ctypes.data, outs.ctypes.data
        )
        recs = list(rec)[:n]
        return Windows(
            seq=np.array([r.seq for r in recs], np.uint32),
            score=np.array([r.score for r in recs], np.float32),
            anomaly=np.array([r.anomaly for r in recs], np.uint8),
            alarm=np.array([r.alarm for r in recs], np.uint8),
            status=np.array([r.status for r in recs], np.int32),
            cost=np.array([r.cost for r in recs], np.uint32),
            inputs=ins[:n],
            outputs=outs[:n],
        )

    def push_one(self, sample: np.ndarray) -> Result | None:
        s = np.ascontiguousarray(sample, np.float32)
        r = Result()
        if self.lib.tae_pipeline_push(self.state, s.ctypes.data, ctypes.byref(r)):
            return r
        return None


def concat(parts: list[Windows]) -> Windows:
    return Windows(
        **{
            name: np.concatenate([getattr(p, name) for p in parts])
            for name in ("seq", "score", "anomaly", "alarm", "status", "cost", "inputs", "outputs")
        }
    )


def stub_engine(in_q: np.ndarray) -> np.ndarray:
    """NumPy mirror of core_stub.c's engine: out[i] = (int8)((in[(7i + 3) mod N] * 3 + i) mod 256)."""
    n = in_q.shape[-1]
    idx = (7 * np.arange(n) + 3) % n
    v = in_q[..., idx].astype(np.int64) * 3 + np.arange(n)
    return (v & 0xFF).astype(np.uint8).view(np.int8)


def sliding_windows(samples: np.ndarray, L: int, H: int) -> np.ndarray:
    """[n, C] stream -> [w, L, C] windows starting at 0, H, 2H, ... (the pipeline's definition)."""
    v = np.lib.stride_tricks.sliding_window_view(samples, L, axis=0)  # [n-L+1, C, L]
    return np.ascontiguousarray(v[::H].transpose(0, 2, 1))


# --- tests of the helpers and of the compile-time checks ----------------------------------------


def test_helper_c_float_literal_is_exact(tmp_path: Path) -> None:
    values = np.array([0.1, 1 / 3, -2.5e-7, 3.4e38, 1e-45], np.float32)
    src = tmp_path / "lit.c"
    src.write_text(
        "#include <stdio.h>\n#include <string.h>\nint main(void){const float v[]={"
        + ",".join(c_float(v) for v in values)
        + "};unsigned u;for(unsigned i=0;i<sizeof v/sizeof v[0];i++)"
        + '{memcpy(&u,&v[i],4);printf("%08x\\n",u);}}'
    )
    exe = tmp_path / "lit"
    subprocess.run(["gcc", "-o", str(exe), str(src)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert [int(x, 16) for x in out] == values.view(np.uint32).tolist()


@pytest.mark.parametrize(
    "bad",
    [{"H": 0}, {"n": 0}],
    ids=["hop-zero", "decision-n-zero"],
)
def test_invalid_config_fails_to_compile(tmp_path: Path, bad: dict) -> None:
    cfg = Config(**bad)
    with pytest.raises(RuntimeError, match="host build failed"):
        Pipeline(cfg, tmp_path)
