"""Generate tests/vectors/protocol_vectors.json: wire frames with their decoded meaning.

Both codecs are tested against this file: tools/link/protocol.py directly, the C codec (built with the
small model configuration below) through ctypes. Good frames, corrupted frames, streams with garbage
and resyncs, each with the exact events a decoder must report.

    python -m tinyae.tools.simdevice.vectors            # rewrite the file
    python -m tinyae.tools.simdevice.vectors --check    # exit 1 if the file is stale
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from tinyae import __version__
from tinyae.errors import run_cli
from tinyae.paths import ROOT
from tinyae.tools.link import protocol as p
from tinyae.train import export
from tinyae.train.calibration.spec import CalibSpec, from_values
from tinyae.train.frontend import FrontendSpec

VECTORS_PATH = ROOT / "tests" / "vectors" / "protocol_vectors.json"

# The model configuration the vectors (and the simulated device) are built for.
# The test configuration (one value type per key; read by name, so Any).
CONFIG: dict[str, Any] = {
    "window_len": 8,
    "hop": 4,
    "channels": 3,
    "input_size": 24,
    "output_size": 24,
    "max_batch": p.MAX_BATCH,
    "in_scale": 0.05,
    "in_zero_point": -3,
    "out_scale": 0.05,
    "out_zero_point": 2,
    "norm_offset": [0.0, 1.0, -1.0],
    "norm_gain": [20.0, 10.0, 5.0],
    "threshold": 0.5,
    "score_kind": 0,
    "decision_k": 2,
    "decision_n": 3,
    "sample_rate_hz": 50.0,
    "model_sha256": bytes(range(32)).hex(),
}
CONFIG["max_frame"] = p.max_frame(CONFIG["channels"], CONFIG["input_size"], CONFIG["output_size"])


def calib_spec(config: dict = CONFIG) -> CalibSpec:
    """On-site calibration of the test configuration: 6 windows per phase (4 at least: the 90th
    percentile's rule), offsets and scales, the 90th percentile, the threshold within 8x of the factory
    one; the training reference is the normalization itself (zscore: mean = offset, std = 1 / (gain *
    input scale))."""

    def f32(x: float) -> float:
        return float(np.float32(x))

    t = f32(config["threshold"])
    std = tuple(f32(1.0 / (float(g) * config["in_scale"])) for g in config["norm_gain"])
    values = {
        "windows": 6, "channels": config["channels"], "window_length": config["window_len"],
        "hop": config["hop"], "offsets": True, "scales": True, "method": "percentile",
        "setting": "percentile", "percentile": 90.0, "k_std": 3.0, "over_num": 1, "over_den": 2,
        "ref_mean": tuple(f32(v) for v in config["norm_offset"]), "ref_std": std, "factory_threshold": t,
        "max_shift_std": 3.0, "max_scale_ratio": 2.0, "max_threshold_ratio": 8.0,
        "method_source": "the protocol test configuration", "stats_windows": 1,
        "stats_why": "the protocol test configuration", "scores_windows": 0, "scores_why": "",
        "max_over_stretch_setting": (),
    }  # fmt: skip
    quant = {
        "in_scale": config["in_scale"], "in_zero_point": config["in_zero_point"],
        "norm_offset": config["norm_offset"], "norm_gain": config["norm_gain"],
    }  # fmt: skip
    return from_values(values, quant)


def config_manifest(config: dict = CONFIG, calib: CalibSpec | None = None, arena_bytes: int = 0) -> dict:
    """A manifest-like dict of a test configuration (CONFIG's keys): the sections model_config.h.j2 reads,
    so test headers are rendered by the model's own template (train/export.py model_config_h).

    config: CONFIG's keys (score_kind 0 = mse, 1 = mae; norm_offset / norm_gain per channel).
    calib: replaces the configuration's calibration settings (calib_spec(config) by default).
    arena_bytes: TAE_ARENA_BYTES (0: no TFLM arena; the C tests' stub engine has none either)."""
    cal = calib if calib is not None else calib_spec(config)
    length, channels = config["window_len"], config["channels"]
    return {
        "generator": {
            "tinyae": __version__,
            "command": "the protocol test configuration (tools/simdevice/vectors.py)",
        },
        "model": {
            "sha256": config["model_sha256"],
            "ops": ["FULLY_CONNECTED"],
            "macs": 0,
            "tflite_bytes": 0,
        },
        "window": {
            "length": length,
            "hop": config["hop"],
            "channels": channels,
            "channel_names": [f"ch{i}" for i in range(channels)],
            "sample_rate_hz": float(config["sample_rate_hz"]),
        },
        "frontend": FrontendSpec(("raw",), length, channels).to_manifest(),
        "normalization": {
            "method": "zscore",
            "per": "channel",
            "offset": [float(v) for v in config["norm_offset"]],
        },
        "input": {
            "size": config["input_size"],
            "scale": float(config["in_scale"]),
            "zero_point": config["in_zero_point"],
            "gain": [float(v) for v in config["norm_gain"]],
        },
        "output": {
            "size": config["output_size"],
            "scale": float(config["out_scale"]),
            "zero_point": config["out_zero_point"],
        },
        "quantization": {"weights": "per_tensor", "reason": "a test configuration", "runs_on": ["the host"]},
        "score": {"kind": ("mse", "mae")[config["score_kind"]]},
        "threshold": {"value": float(config["threshold"]), "method": "given"},
        "decision": {"k": config["decision_k"], "n": config["decision_n"]},
        "calibration": cal.to_manifest(),
        "arena": {"measured_bytes_host": arena_bytes, "margin_bytes": 0, "bytes": arena_bytes},
    }


def model_config_h(config: dict = CONFIG, calib: CalibSpec | None = None, arena_bytes: int = 0) -> str:
    """model_config.h of a test configuration (the C codec, the simulated device, the C tests), rendered
    through model_config.h.j2 from config_manifest(config, calib, arena_bytes)."""
    return export.model_config_h(config_manifest(config, calib, arena_bytes))


# ---------------------------------------------------------------- JSON form of messages and events


def _jsonable(v):
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return v


def message_to_json(msg: p.Message) -> dict:
    return {
        "type": msg.TYPE.name,
        "fields": {f.name: _jsonable(getattr(msg, f.name)) for f in fields(msg)},
    }


def message_from_json(obj: dict) -> p.Message:
    cls = p.MESSAGE_CLASSES[p.MsgType[obj["type"]]]
    kwargs = {}
    for f in fields(cls):
        v = obj["fields"][f.name]
        if f.name in ("model_sha256", "record"):
            v = bytes.fromhex(v)
        elif f.name == "samples":
            v = tuple(tuple(s) for s in v)
        elif f.name in ("input_q", "output_q") and v is not None:
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)


def event_to_json(ev: p.Event) -> dict:
    if isinstance(ev, p.Frame):
        return {"kind": "frame", "seq": ev.seq, "message": message_to_json(ev.msg)}
    if isinstance(ev, p.DecodeError):
        return {
            "kind": "error",
            "code": p.ErrorCode(ev.code).name,
            "expected": ev.expected,
            "got": ev.got,
            "ref_type": ev.ref_type,
            "ref_seq": ev.ref_seq,
        }
    return {"kind": "text"}


def decoder_for(direction: str, config: dict = CONFIG) -> p.StreamDecoder:
    if direction == "host_to_device":
        return p.StreamDecoder.for_device(
            config["channels"], config["input_size"], config["output_size"], config["max_batch"]
        )
    return p.StreamDecoder(config["max_frame"], accept=p.DEVICE_TYPES)


# ---------------------------------------------------------------- the vectors


def _info(cls=p.Info) -> p.Info:
    c = CONFIG
    return cls(
        proto_version=p.PROTOCOL_VERSION, mode=0, verify=False, channels=c["channels"],
        score_kind=c["score_kind"],
        decision_k=c["decision_k"], decision_n=c["decision_n"], in_zero_point=c["in_zero_point"],
        out_zero_point=c["out_zero_point"], window_len=c["window_len"], hop=c["hop"],
        input_size=c["input_size"], output_size=c["output_size"], max_batch=c["max_batch"],
        max_frame=c["max_frame"], sample_rate_hz=c["sample_rate_hz"], threshold=0.25,
        model_threshold=c["threshold"], in_scale=p.float32(c["in_scale"]),
        out_scale=p.float32(c["out_scale"]),
        model_sha256=bytes.fromhex(c["model_sha256"]), flash_used=23456, ram_static=3456,
        engine_ram=512, stack_bytes=2048, tx_dropped=3, calib_state=p.CalibState.CALIBRATED,
        calib_boot=p.RecordVerdict.VALID, calib_flags=p.CALIB_FLAG_OFFSETS | p.CALIB_FLAG_THRESHOLD,
        calib_windows=6, calib_max_windows=6, calib_crc=0xA1B2C3D4, frontend_crc=0x0F1E2D3C,
        norm_crc=0x4B5A6978, calib_config_crc=0x8796A5B4, firmware_version="9.9.9-vec", target="sim",
        engine="tflm", library="Chirale_TensorFLowLite 2.0.0", cost_unit="instructions",
    )  # fmt: skip


def _payload_raw(version: int, type_: int, seq: int, body: bytes, crc: int | None = None) -> bytes:
    payload = p.HEADER.pack(version, type_, seq) + body
    return payload + struct.pack("<I", p.crc32(payload) if crc is None else crc)


def _wire_raw(payload: bytes) -> bytes:
    return p.cobs_encode(payload) + b"\x00"


def build_vectors() -> list[dict]:
    c = CONFIG["channels"]
    s3 = ((0.0, 1.5, -2.25), (3.0e-3, -0.0, 1.0e6))
    full = tuple((1.1, -1.1, 1.1) for _ in range(CONFIG["max_batch"]))
    verify_in = tuple(range(-12, 12))
    verify_out = tuple((v * 5) % 256 - 128 for v in range(24))
    hello = p.encode_frame(p.Hello(), 1)
    record = bytes(range(p.record_bytes(c)))  # any bytes: the codec does not judge a record

    good: list[tuple[str, str, p.Message, int]] = [
        ("hello", "host_to_device", p.Hello(), 0),
        ("samples_two", "host_to_device", p.Samples(0, s3, c), 1),
        ("samples_empty", "host_to_device", p.Samples(7, (), c), 2),
        ("samples_full_batch_0xff_blocks", "host_to_device", p.Samples(0x01020304, full, c), 0x01010101),
        ("set_threshold", "host_to_device", p.Setting(p.Param.THRESHOLD, 0.25), 3),
        ("set_verify_on", "host_to_device", p.Setting(p.Param.VERIFY, 1), 4),
        ("set_mode_sensor", "host_to_device", p.Setting(p.Param.MODE, p.Mode.SENSOR), 5),
        ("reset", "host_to_device", p.Reset(), 0xFFFFFFFE),
        ("calib_start", "host_to_device", p.Calib(p.CalibAction.START, 6), 6),
        ("calib_query", "host_to_device", p.Calib(p.CalibAction.QUERY), 7),
        ("calib_factory", "host_to_device", p.Calib(p.CalibAction.FACTORY), 8),
        ("calib_write", "host_to_device", p.Calib(p.CalibAction.WRITE, 0, record), 9),
        ("info", "device_to_host", _info(), 1),
        ("boot", "device_to_host", _info(p.Boot), 0),
        ("result_plain", "device_to_host", p.Result(5, 0.125, True, False, 0, 1234), 2),
        ("result_alarm_engine_error", "device_to_host", p.Result(6, 0.0, False, True, -3, 99), 3),
        ("result_verify", "device_to_host", p.Result(9, 0.75, True, True, 0, 4567, verify_in, verify_out), 4),
        ("telemetry", "device_to_host", p.Telemetry(16, s3, c), 5),
        ("telemetry_skipped_late_synthetic", "device_to_host",
         p.Telemetry(0x01020304, s3, c, 0x0A0B0C0D, 3, p.Clock.SYNTHETIC | p.Clock.CATCH_UP), 13),
        ("ack_samples", "device_to_host", p.Ack(p.MsgType.SAMPLES, 1, 0, 2), 6),
        ("error_seq_gap", "device_to_host", p.ErrorReply(p.ErrorCode.SEQ_GAP, p.MsgType.SAMPLES, 9, 3, 5), 7),
        ("error_bad_crc", "device_to_host", p.ErrorReply(p.ErrorCode.BAD_CRC, 0, p.NO_SEQ, 1, 2), 8),
        ("result_calibration_window", "device_to_host", p.Result(3, 0.5, False, False, 0, 77, calib=True), 9),
        ("calib_state_candidate", "device_to_host",
         p.CalibStatus(p.CalibState.FACTORY, p.CalibOutcome.THRESHOLD_HIGH, 255, p.RecordVerdict.EMPTY,
                       p.RecordKind.CANDIDATE, 6, 12, record), 10),
        ("calib_state_none", "device_to_host",
         p.CalibStatus(p.CalibState.STATS, p.CalibOutcome.RUNNING, 0, p.RecordVerdict.CORRUPT,
                       p.RecordKind.NONE, 6, 2), 11),
        ("error_record", "device_to_host",
         p.ErrorReply(p.ErrorCode.RECORD, p.MsgType.CALIB, 9, p.RecordVerdict.VALID,
                      p.RecordVerdict.OTHER_MODEL), 12),
    ]  # fmt: skip
    vectors: list[dict] = []
    for name, direction, msg, seq in good:
        vectors.append({"name": name, "direction": direction, "canonical": True,
                        "wire": p.encode_frame(msg, seq)})  # fmt: skip

    valid_payload = p.encode_payload(p.Hello(), 3)
    bad = [
        ("bad_crc", "host_to_device", _wire_raw(valid_payload[:-4] + b"\x11\x22\x33\x44")),
        ("bad_cobs_short_block", "host_to_device", bytes([0x05, 0x01, 0x02, 0x00])),
        ("truncated", "host_to_device", _wire_raw(valid_payload[:5])),
        ("oversized", "host_to_device", _wire_raw(bytes([1]) * (CONFIG["max_frame"] + 49))),
        ("oversized_garbage_run", "host_to_device", bytes([0xAA]) * 2000 + b"\x00"),
        ("unknown_type", "host_to_device", _wire_raw(_payload_raw(p.PROTOCOL_VERSION, 0x7F, 11, b""))),
        (
            "device_type_to_device",
            "host_to_device",
            _wire_raw(_payload_raw(p.PROTOCOL_VERSION, p.MsgType.ACK, 12, bytes(11))),
        ),
        (
            "bad_version",
            "host_to_device",
            _wire_raw(_payload_raw(p.PROTOCOL_VERSION + 1, p.MsgType.HELLO, 13, b"")),
        ),
        (
            "hello_with_body",
            "host_to_device",
            _wire_raw(_payload_raw(p.PROTOCOL_VERSION, p.MsgType.HELLO, 14, b"\x01")),
        ),
        (
            "samples_bad_length",
            "host_to_device",
            _wire_raw(
                _payload_raw(
                    p.PROTOCOL_VERSION, p.MsgType.SAMPLES, 15, p.SAMPLES_FIXED.pack(0, 2, c) + bytes(12)
                )
            ),
        ),
        (
            "samples_wrong_channels",
            "host_to_device",
            p.encode_frame(p.Samples(0, ((1.0, 2.0, 3.0, 4.0),), 4), 16),
        ),
        (
            "samples_batch_too_big",
            "host_to_device",
            _wire_raw(
                _payload_raw(p.PROTOCOL_VERSION, p.MsgType.SAMPLES, 17, p.SAMPLES_FIXED.pack(0, 33, c))
            ),
        ),
        (
            "set_unknown_param",
            "host_to_device",
            _wire_raw(_payload_raw(p.PROTOCOL_VERSION, p.MsgType.SET, 18, bytes([9, 0, 0, 0, 0]))),
        ),
        (
            "set_short",
            "host_to_device",
            _wire_raw(_payload_raw(p.PROTOCOL_VERSION, p.MsgType.SET, 19, bytes([1, 0]))),
        ),
        (
            "calib_unknown_action",
            "host_to_device",
            _wire_raw(_payload_raw(p.PROTOCOL_VERSION, p.MsgType.CALIB, 23, p.CALIB_FIXED.pack(9, 0))),
        ),
        (
            "calib_write_short_record",
            "host_to_device",
            _wire_raw(
                _payload_raw(p.PROTOCOL_VERSION, p.MsgType.CALIB, 24, p.CALIB_FIXED.pack(4, 0) + record[:-1])
            ),
        ),
        (
            "calib_query_with_body",
            "host_to_device",
            _wire_raw(
                _payload_raw(p.PROTOCOL_VERSION, p.MsgType.CALIB, 25, p.CALIB_FIXED.pack(0, 0) + b"\x01")
            ),
        ),
        ("text_query_lf_then_frame", "host_to_device", b"?\n" + hello),
        ("text_query_crlf_then_frame", "host_to_device", b"?\r\n" + hello),
        (
            "garbage_swallows_next_frame",
            "host_to_device",
            b"\x11\x22\x33" + hello + p.encode_frame(p.Hello(), 2),
        ),
        ("garbage_then_delimiter", "host_to_device", b"\x11\x22\x33\x00" + hello),
        ("empty_frames_ignored", "host_to_device", b"\x00\x00" + hello + b"\x00"),
        (
            "result_verify_bad_counts",
            "device_to_host",
            _wire_raw(
                _payload_raw(
                    p.PROTOCOL_VERSION,
                    p.MsgType.RESULT,
                    20,
                    p.RESULT_FIXED.pack(1, 0.5, p.RESULT_VERIFY, 0, 1) + struct.pack("<H", 4) + bytes(4),
                )
            ),
        ),
        (
            "info_string_overruns",
            "device_to_host",
            _wire_raw(_payload_raw(p.PROTOCOL_VERSION, p.MsgType.INFO, 21, p.encode_body(_info())[:-3])),
        ),
        (
            "host_type_to_host",
            "device_to_host",
            _wire_raw(_payload_raw(p.PROTOCOL_VERSION, p.MsgType.HELLO, 22, b"")),
        ),
    ]
    for name, direction, wire in bad:
        vectors.append({"name": name, "direction": direction, "canonical": False, "wire": wire})

    for v in vectors:
        dec = decoder_for(v["direction"])
        v["events"] = [event_to_json(e) for e in dec.feed(v["wire"])]
        v["wire"] = v["wire"].hex()
    return vectors


def document() -> dict:
    return {
        "description": "tinyae serial protocol vectors (docs/protocol.md); generated by "
        "`python -m tinyae.tools.simdevice.vectors`. 'wire' is the byte stream, 'events' what a decoder "
        "reports for it: host_to_device streams are judged as the device does (config below), "
        "device_to_host streams as the host does.",
        "protocol_version": p.PROTOCOL_VERSION,
        "config": CONFIG,
        "vectors": build_vectors(),
    }


def render() -> str:
    return json.dumps(document(), indent=1) + "\n"


@run_cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the committed file differs")
    ap.add_argument("--out", type=Path, default=VECTORS_PATH)
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run python -m tinyae.tools.simdevice.vectors", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {len(document()['vectors'])} vectors to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
