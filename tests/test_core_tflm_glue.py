"""tae_engine_tflm.cpp and the rendered model_ops.h, compiled with g++ -Wall -Wextra -Werror against a
small fake of the TFLM API they use (TFLM itself is not available offline and never vendored).
This checks the glue's logic — schema/op/arena/tensor checks, the reasons, idempotent init,
copying in and out — not TFLM; the real library is only exercised on a board."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_core_support import CORE_SRC, Config

from train import export

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

ENGINE_OK, ERR_ALLOC, ERR_MODEL, ERR_INVOKE = 0, -1, -2, -3

FAKE_TFLM_H = r"""
/* A fake of the few TFLM declarations tae_engine_tflm.cpp uses (same names and signatures). */
#ifndef FAKE_TFLM_H
#define FAKE_TFLM_H
#include <stddef.h>
#include <stdint.h>
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum { kTfLiteNoType = 0, kTfLiteFloat32 = 1, kTfLiteUInt8 = 3, kTfLiteInt8 = 9 } TfLiteType;
typedef struct { float scale; int32_t zero_point; } TfLiteQuantizationParams;
typedef union { int8_t *int8; float *f; } TfLitePtrUnion;
typedef struct {
  TfLiteType type; TfLitePtrUnion data; size_t bytes; TfLiteQuantizationParams params;
} TfLiteTensor;
#define TFLITE_SCHEMA_VERSION (3)
namespace tflite {
class Model { public: uint32_t version() const; };
const Model *GetModel(const void *buf);
class MicroOpResolver { public: unsigned count = 0; };
template <unsigned int tOpCount> class MicroMutableOpResolver : public MicroOpResolver {
 public:
  TfLiteStatus AddFullyConnected() { return Add(); }
  TfLiteStatus AddLogistic() { return Add(); }
  TfLiteStatus AddTanh() { return Add(); }
  TfLiteStatus AddRelu() { return Add(); }
  TfLiteStatus AddReshape() { return Add(); }
  TfLiteStatus AddQuantize() { return Add(); }
  TfLiteStatus AddDequantize() { return Add(); }
 private:
  TfLiteStatus Add() { if (count >= tOpCount) return kTfLiteError; ++count; return kTfLiteOk; }
};
class MicroInterpreter {
 public:
  MicroInterpreter(const Model *model, const MicroOpResolver &op_resolver, uint8_t *tensor_arena,
                   size_t tensor_arena_size);
  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  TfLiteTensor *input(size_t index);
  TfLiteTensor *output(size_t index);
  size_t inputs_size() const;
  size_t outputs_size() const;
 private:
  const MicroOpResolver &resolver_;
  uint8_t *arena_;
  size_t arena_size_;
};
}  // namespace tflite
#endif
"""

FAKE_TFLM_CPP = r"""
#include "tensorflow/lite/micro/micro_interpreter.h"
#include <string.h>
extern "C" {
uint32_t fake_schema_version = 3;
uint32_t fake_required_arena = 1024;   /* AllocateTensors fails below this */
uint32_t fake_required_ops = 2;        /* ops the model needs (else AllocateTensors fails) */
int32_t fake_in_type = kTfLiteInt8, fake_out_type = kTfLiteInt8;
uint32_t fake_in_bytes = 0, fake_out_bytes = 0;
float fake_in_scale = 0, fake_out_scale = 0;
int32_t fake_in_zp = 0, fake_out_zp = 0;
int32_t fake_invoke_status = kTfLiteOk;
uint32_t fake_invocations = 0;
uint32_t fake_arena_size_seen = 0;
uintptr_t fake_arena_addr = 0;
}
static TfLiteTensor g_in, g_out;
namespace tflite {
uint32_t Model::version() const { return fake_schema_version; }
const Model *GetModel(const void *buf) { return static_cast<const Model *>(buf); }
MicroInterpreter::MicroInterpreter(const Model *, const MicroOpResolver &r, uint8_t *a, size_t n)
    : resolver_(r), arena_(a), arena_size_(n) {}
TfLiteStatus MicroInterpreter::AllocateTensors() {
  fake_arena_size_seen = (uint32_t)arena_size_;
  fake_arena_addr = (uintptr_t)arena_;
  if (arena_size_ < fake_required_arena || resolver_.count < fake_required_ops) return kTfLiteError;
  g_in.type = (TfLiteType)fake_in_type; g_in.bytes = fake_in_bytes; g_in.data.int8 = (int8_t *)arena_;
  g_in.params.scale = fake_in_scale; g_in.params.zero_point = fake_in_zp;
  g_out.type = (TfLiteType)fake_out_type; g_out.bytes = fake_out_bytes;
  g_out.data.int8 = (int8_t *)arena_ + 512;
  g_out.params.scale = fake_out_scale; g_out.params.zero_point = fake_out_zp;
  return kTfLiteOk;
}
TfLiteStatus MicroInterpreter::Invoke() {  /* out[i] = in[n-1-i] + 1 (wrapping) */
  fake_invocations++;
  for (size_t i = 0; i < g_out.bytes; ++i)
    g_out.data.int8[i] = (int8_t)(g_in.data.int8[g_in.bytes - 1 - i] + 1);
  return (TfLiteStatus)fake_invoke_status;
}
TfLiteTensor *MicroInterpreter::input(size_t i) { return i == 0 ? &g_in : nullptr; }
TfLiteTensor *MicroInterpreter::output(size_t i) { return i == 0 ? &g_out : nullptr; }
size_t MicroInterpreter::inputs_size() const { return 1; }
size_t MicroInterpreter::outputs_size() const { return 1; }
}  // namespace tflite
"""

CFG = Config(L=16, H=4, C=3)


def render_model(d: Path, ops: list[str]) -> None:
    CFG.write(d)
    banner = export.banner("ab" * 32, "test")
    flatbuffer = bytes(range(40))
    hexes = [f"0x{b:02x}" for b in flatbuffer]
    rows = [", ".join(hexes[i : i + 12]) + "," for i in range(0, len(hexes), 12)]
    (d / "model_data.h").write_text(export.render("model_data.h.j2", banner=banner, length=len(flatbuffer)))
    (d / "model_data.cc").write_text(
        export.render("model_data.cc.j2", banner=banner, length=len(flatbuffer), rows=rows)
    )
    (d / "model_ops.h").write_text(export.render("model_ops.h.j2", banner=banner, ops=ops))


def compile_glue(d: Path, ops: list[str]) -> subprocess.CompletedProcess[str]:
    render_model(d, ops)
    fake = d / "fake"
    for sub in ("tensorflow/lite/micro", "tensorflow/lite/schema"):
        (fake / sub).mkdir(parents=True, exist_ok=True)
    (fake / "tensorflow/lite/micro/micro_interpreter.h").write_text(FAKE_TFLM_H)
    (fake / "tensorflow/lite/micro/micro_mutable_op_resolver.h").write_text(
        '#include "micro_interpreter.h"\n'
    )
    (fake / "tensorflow/lite/schema/schema_generated.h").write_text("/* fake */\n")
    (d / "fake_tflm.cpp").write_text(FAKE_TFLM_CPP)
    cmd = [
        "g++", "-std=c++11", "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-Wshadow",
        "-ffp-contract=off", "-DTAE_ENGINE_TFLM", f"-I{d}", f"-I{fake}", f"-I{CORE_SRC}",
        "-o", str(d / "glue.so"), str(CORE_SRC / "tae_engine_tflm.cpp"), str(d / "model_data.cc"),
        str(d / "fake_tflm.cpp"),
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def glue_so(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("glue")
    proc = compile_glue(d, ["FULLY_CONNECTED", "LOGISTIC", "FULLY_CONNECTED"])
    assert proc.returncode == 0, proc.stderr
    return d / "glue.so"


class Glue:
    """A fresh copy of the library (its own statics) with the fake configured for this model."""

    def __init__(self, so: Path, tmp: Path) -> None:
        copy = tmp / "glue_copy.so"
        shutil.copy(so, copy)
        self.lib = ctypes.CDLL(str(copy))
        self.lib.tae_engine_tflm_reason.restype = ctypes.c_char_p
        self.lib.tae_engine_name.restype = ctypes.c_char_p
        self.lib.tae_engine_ram_bytes.restype = ctypes.c_uint32
        self.lib.tae_engine_invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.set("fake_in_bytes", CFG.size)
        self.set("fake_out_bytes", CFG.size)
        self.set("fake_in_scale", CFG.in_scale, ctypes.c_float)
        self.set("fake_out_scale", CFG.out_scale, ctypes.c_float)
        self.set("fake_in_zp", CFG.in_zp, ctypes.c_int32)
        self.set("fake_out_zp", CFG.out_zp, ctypes.c_int32)

    def set(self, name: str, value: float, ctype: type = ctypes.c_uint32) -> None:
        ctype.in_dll(self.lib, name).value = value  # type: ignore[attr-defined]

    def get(self, name: str, ctype: type = ctypes.c_uint32) -> int:
        return ctype.in_dll(self.lib, name).value  # type: ignore[attr-defined]

    def init(self) -> int:
        return self.lib.tae_engine_init()

    def reason(self) -> str:
        return self.lib.tae_engine_tflm_reason().decode()

    def invoke(self, x: np.ndarray) -> tuple[int, np.ndarray]:
        out = np.zeros(CFG.size, np.int8)
        xq = np.ascontiguousarray(x, np.int8)
        rc = self.lib.tae_engine_invoke(xq.ctypes.data, out.ctypes.data)
        return rc, out


def test_success_copies_in_and_out(glue_so: Path, tmp_path: Path) -> None:
    g = Glue(glue_so, tmp_path)
    assert g.reason() == "tae_engine_init() was not called"
    assert g.invoke(np.zeros(CFG.size))[0] == ERR_MODEL  # before init
    assert g.init() == ENGINE_OK and g.reason() == "ok"
    assert g.get("fake_arena_size_seen") == 8192 and g.get("fake_arena_addr") % 16 == 0
    assert g.lib.tae_engine_ram_bytes() == 8192 and g.lib.tae_engine_name() == b"tflm"
    x = np.random.default_rng(0).integers(-128, 128, CFG.size, dtype=np.int8)
    rc, out = g.invoke(x)
    assert rc == ENGINE_OK
    np.testing.assert_array_equal(out, (x[::-1].astype(np.int16) + 1).astype(np.int8))
    assert g.init() == ENGINE_OK and g.get("fake_invocations") == 1  # idempotent
    g.set("fake_invoke_status", 1, ctypes.c_int32)
    assert g.invoke(x)[0] == ERR_INVOKE


def test_arena_too_small_is_alloc_error_with_reason(glue_so: Path, tmp_path: Path) -> None:
    g = Glue(glue_so, tmp_path)
    g.set("fake_required_arena", 8193)
    assert g.init() == ERR_ALLOC
    assert "arena (TAE_ARENA_BYTES) is too small" in g.reason()
    assert g.init() == ERR_ALLOC  # the status sticks; no second interpreter in the same storage
    assert g.invoke(np.zeros(CFG.size))[0] == ERR_ALLOC


@pytest.mark.parametrize(
    ("name", "value", "ctype", "reason"),
    [
        ("fake_schema_version", 2, ctypes.c_uint32, "schema version"),
        ("fake_in_type", 1, ctypes.c_int32, "input is not int8"),
        ("fake_out_bytes", CFG.size - 1, ctypes.c_uint32, "output size differs"),
        ("fake_in_scale", CFG.in_scale * 2, ctypes.c_float, "input quantization differs"),
        ("fake_out_zp", CFG.out_zp + 1, ctypes.c_int32, "output quantization differs"),
    ],
)
def test_model_mismatch_is_model_error(
    glue_so: Path, tmp_path: Path, name: str, value: float, ctype: type, reason: str
) -> None:
    g = Glue(glue_so, tmp_path)
    g.set(name, value, ctype)
    assert g.init() == ERR_MODEL
    assert reason in g.reason()


def test_missing_op_fails_allocation(tmp_path: Path) -> None:
    # The model needs 3 ops, but the resolver only registers the 2 it was generated with.
    proc = compile_glue(tmp_path, ["FULLY_CONNECTED", "RELU"])
    assert proc.returncode == 0, proc.stderr
    g = Glue(tmp_path / "glue.so", tmp_path)
    g.set("fake_required_ops", 3)
    assert g.init() == ERR_ALLOC and "op is missing from model_ops.h" in g.reason()


def test_unknown_op_stops_the_build_with_its_name(tmp_path: Path) -> None:
    proc = compile_glue(tmp_path, ["FULLY_CONNECTED", "MY_CUSTOM_OP"])
    assert proc.returncode != 0
    assert "model op MY_CUSTOM_OP has no TFLM registration" in proc.stderr
