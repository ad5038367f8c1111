"""The model directory's `manifest.json`: one typed definition, written by training, read by everyone.

`Manifest` holds one dataclass per section (docs/architecture.md, "Manifest" lists them). Training
builds it (train/pipeline.py); export, recalibration, the host reference, on-site calibration, the
budget estimate, the host tool, the benchmarks and the simulated device read it with
`Manifest.load(path)`, which validates every section's fields and types and refuses, in one sentence
naming the field, a manifest that is missing one, has one of the wrong type, or was written under
another schema version. Sections other modules define keep their own typed view: `frontend` ->
`FrontendSpec` (train/frontend/spec.py), `calibration` -> `CalibSpec` (train/calibration/spec.py);
loading checks those too.

Open sections (`data`, `training`, `metrics`, `compiled`) declare the fields consumers rely on and
keep every other key in `extra`, so the JSON round trip is exact.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar, Union

from tinyae.errors import UserError

SCHEMA_VERSION = 3  # 1: before the typed manifest (key `schema`); 2: `schema_version`, validated on read;
# 3: `reference` (the integer arithmetic of the targets)

REBUILD = "it was written by an older tinyae — run `make model` again"

T = TypeVar("T")


def _key(f: Any) -> str:
    """The JSON key of a dataclass field (metadata `key` when the name would shadow a builtin)."""
    return str(f.metadata.get("key", f.name))


# ------------------------------------------------------------------------------------- sections
@dataclass
class Generator:
    tinyae: str  # package version
    command: str  # the command that trained the model (banner of every generated file)
    threshold_command: str | None = None  # the last `tinyae threshold`, when one ran


@dataclass
class Layer:
    units: int
    activation: str


@dataclass
class ModelSection:
    sha256: str  # hex of model_int8.tflite
    tflite_bytes: int
    ops: list[str]  # TFLite builtin op names
    macs: int  # multiply-accumulates per window
    params: int
    layers: list[Layer]  # every Dense layer, input to output


@dataclass
class WindowSection:
    length: int  # L samples
    hop: int  # H samples
    channels: int  # C
    channel_names: list[str]  # C names
    sample_rate_hz: float  # 0.0 when the data set gives none


@dataclass
class FrontendSection:
    kinds: list[str]  # any of raw, spectral, stats, in that order
    feature_size: int  # F
    sizes: dict[str, int]  # features per kind
    feature_names: list[str]  # F names
    constant_features: list[str]  # (nearly) constant in training
    spectral: dict[str, Any] | None = None  # Spectral.to_manifest(), when "spectral" is a kind
    stats: list[str] | None = None  # statistic names, when "stats" is a kind


@dataclass
class Normalization:
    method: str  # zscore | minmax | robust
    per: str  # channel | feature
    offset: list[float]  # P values
    scale: list[float]  # P values


@dataclass
class InputSection:
    size: int  # F int8 inputs
    layout: str  # time_major | features
    scale: float  # s_in
    zero_point: int  # z_in
    gain: list[float]  # P values: 1 / (scale_norm * s_in)


@dataclass
class OutputSection:
    size: int
    scale: float
    zero_point: int


@dataclass
class Quantization:
    weights: str  # per_tensor | per_channel
    setting: str  # auto | per_tensor | per_channel (quantize.weights), or "model": imported as it is
    reason: str
    targets: list[str]
    runs_on: list[str]


@dataclass
class ReferenceSection:
    """The integer arithmetic the model's targets compute (train/int8/arithmetic.py) and the check of the
    host's NumPy network against tflite_micro made when the model was built."""

    arithmetic: str  # arithmetic.KNOWN name: what the test vectors, scores and threshold were computed with
    description: str
    targets: dict[str, str]  # target -> the arithmetic it computes
    tflite_micro: dict[
        str, Any
    ]  # windows checked; how many differ from the tflite_micro nightly, and by how much


@dataclass
class Score:
    kind: str  # mse | mae


@dataclass
class ThresholdSection:
    value: float  # float32 score units
    method: str
    params: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    command: str | None = None  # set by `tinyae threshold`
    reason: str = ""  # why this method ran (tinyae's default and why, or the config's / command's choice)


@dataclass
class Decision:
    k: int  # alarm when k of the last n windows are anomalous
    n: int


@dataclass
class Arena:
    measured_bytes_host: int
    margin_bytes: int
    bytes: int  # TAE_ARENA_BYTES


@dataclass
class Compiled:
    """The compiled engine's figures (train/compiled); other keys kept in `extra`."""

    scratch_bytes: int
    const_bytes: int
    ops: list[str]
    layers: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Training:
    loss: list[float]
    val_loss: list[float]
    best_epoch: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Metrics:
    windows: dict[str, int]  # train / val / test
    val_false_alarm_rate_int8: float
    int8_input_levels: dict[str, Any]
    int8_saturation: dict[str, Any]
    float_int8_score_corr: float | None = None  # NaN when a side does not vary; None: no float model
    float_: dict[str, Any] | None = field(default=None, metadata={"key": "float"})
    int8: dict[str, Any] | None = None
    int8_by_fault: dict[str, float] | None = None
    missing_reason: str | None = None  # why there are no detection metrics
    operation: dict[str, Any] | None = (
        None  # the threshold in operation, per recording/fault (train/operating.py)
    )
    # the int8 network's reconstruction of the normal validation windows: 1 - SSE / (SS around their mean)
    val_reconstruction_r2: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Data:
    """How the data were read (train/data/settings.py writes and applies it); other keys in `extra`."""

    source: str
    channels: list[str]
    sample_rate_hz: float
    sample_rate_origin: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataFile:
    path: str
    bytes: int
    mtime_ns: int
    sha256: str


@dataclass
class BuiltFrom:
    """What the model directory was built from and by which command (train/inputs.py: `make` decides
    from it whether it may rebuild the directory)."""

    config_file: str | None
    config_sha256: str
    data_files: list[DataFile]
    frontend_c_sha256: dict[str, str]
    overrides: list[str] = field(default_factory=list)  # `--set` values on top of config_file
    builder: str = "tinyae model"  # the command that built it: "tinyae model", "tinyae search", ...
    command: str | None = None  # the whole command line, to rebuild it
    changed_by: list[str] = field(default_factory=list)  # later commands that changed what it computes


@dataclass
class Imported:
    """How `tinyae import` made this directory from an int8 model trained elsewhere (train/importer.py):
    there is no float model and no training section."""

    file: str  # the .tflite as the user named it (copied unchanged to model_int8.tflite)
    normalization: str  # fit | none | given: how a raw window becomes the model's float inputs
    input_check: dict[str, Any]  # the normal training inputs against the model's int8 input range
    normalization_file: str | None = None  # the JSON file of `--normalization FILE`


@dataclass
class Manifest:
    """Everything a trained model directory says about its model (docs/architecture.md, "Manifest")."""

    generator: Generator
    model: ModelSection
    window: WindowSection
    data: Data
    built_from: BuiltFrom
    frontend: FrontendSection
    normalization: Normalization
    input: InputSection
    output: OutputSection
    quantization: Quantization
    reference: ReferenceSection
    score: Score
    threshold: ThresholdSection
    calibration: dict[str, Any]  # CalibSpec.to_manifest(); typed view: calib_spec()
    decision: Decision
    arena: Arena
    compiled: Compiled
    metrics: Metrics
    warnings: list[str]
    training: Training | None = None  # None: imported (no training here)
    imported: Imported | None = None  # set by `tinyae import`
    timings_s: dict[str, float] | None = None  # the pipeline's stage timings
    schema_version: int = SCHEMA_VERSION

    # ------------------------------------------------------------------ typed views
    def frontend_spec(self):  # type: ignore[no-untyped-def]
        """The FrontendSpec this manifest's `frontend` and `window` sections define."""
        from tinyae.train.frontend import FrontendSpec

        return FrontendSpec.from_manifest(self.to_dict())

    def calib_spec(self):  # type: ignore[no-untyped-def]
        """The CalibSpec of the `calibration` section (UserError when it is not usable)."""
        from tinyae.train.calibration.spec import CalibSpec

        return CalibSpec.from_manifest(self.to_dict())

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON layout: `schema_version` first, then the sections as docs/architecture.md lists them."""
        d = _dump(self)
        return {"schema_version": d.pop("schema_version"), **d}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def write(self, path: Path) -> None:
        from tinyae import atomic

        atomic.write_text(path, self.to_json())

    @classmethod
    def from_dict(cls, doc: Any, where: str = "manifest.json") -> Manifest:
        """Validate and type a parsed manifest; UserError naming the first wrong field.

        where: how the manifest is named in the message (its path).
        """
        if not isinstance(doc, dict):
            raise UserError(f"{where} is not a JSON object; {REBUILD}")
        version = doc.get("schema_version")
        if version is None:
            old = doc.get("schema")
            said = f"schema {old}" if old is not None else "no schema version"
            raise UserError(f"{where} has {said}, this tinyae reads schema {SCHEMA_VERSION}; {REBUILD}")
        if version != SCHEMA_VERSION:
            how = (
                "it was written by a newer tinyae — update tinyae or run `make model` again"
                if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION
                else REBUILD
            )
            raise UserError(
                f"{where} has schema_version {version!r}, this tinyae reads {SCHEMA_VERSION}; {how}"
            )
        m = _load(cls, doc, "", where)
        _check_values(m, where)
        _check_views(m, where)
        return m

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read and validate path (a manifest.json); UserError when missing, not JSON or not valid."""
        p = Path(path)
        if not p.is_file():
            raise UserError(f"{p} does not exist; run `make model` first")
        try:
            doc = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{p} is not readable JSON ({exc}); run `make model` again") from None
        return cls.from_dict(doc, str(p))


def section(cls: type[T], doc: dict[str, Any], name: str, where: str = "manifest") -> T:
    """One section (a dataclass of this module) from its dict, validated like Manifest.from_dict."""
    return _load(cls, doc, name, where)


#: Manifest fields the configuration sets, checked on read with the configuration key's own bounds
#: (train/config.py): the handshake carries each in a fixed width (window length and hop u16, k and n u8).
CONFIG_BOUNDED = ("window.length", "window.hop", "decision.k", "decision.n")


def _check_values(m: Manifest, where: str) -> None:
    """What the device is built with must be what a configuration could give (a hand-edited manifest goes to
    `tinyae threshold`, model_config.h, `device info` and `device verify`): CONFIG_BOUNDED within their
    configuration bounds, the alarm rule 1 <= k <= n (<= DECISION_MAX_N, the handshake's one byte), the
    threshold a positive normal float32 (tinyae/f32.py: 1e-50 would be 0 on the device)."""
    from tinyae import f32
    from tinyae.train import config

    keys = config.schema()
    wrong = []
    for path in CONFIG_BOUNDED:
        sect, name = path.split(".")
        value = getattr(getattr(m, sect), name)
        if p := config.problem(keys[path], value):
            wrong.append(f"`{path}` = {value} {p}")
    d = m.decision
    if not wrong and d.k > d.n:
        wrong.append(
            f"`decision.k` = {d.k} must be at most `decision.n` = {d.n} (k anomalous windows of the last n)"
        )
    if wrong:
        keys_named = "decision.k and decision.n" if "decision" in wrong[0] else wrong[0].split("`")[1]
        raise UserError(
            f"{where}: {wrong[0]}; set {keys_named} in the configuration and run `make model` again"
        )
    t = m.threshold.value
    p = f32.problem(t, positive=True)
    if p:
        raise UserError(
            f"{where}: `threshold.value` = {t!r} {p.split(';')[0]}; put the threshold back as `tinyae threshold` "
            "wrote it, or run `make model` again"
        )


def _check_views(m: Manifest, where: str) -> None:
    """The sections other modules define must give their typed views."""
    try:
        m.frontend_spec()
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{where}: `frontend.spectral` is not usable ({exc!r}); {REBUILD}") from None
    m.calib_spec()  # raises UserError naming the field


# --------------------------------------------------------------------------- generic (de)serialization
def _dump(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in fields(obj):
            v = getattr(obj, f.name)
            if f.name == "extra":
                out.update(v)
            elif v is None and f.default is None:
                continue  # an optional key that is absent
            else:
                out[_key(f)] = _dump(v)
        return out
    if isinstance(obj, list | tuple):
        return [_dump(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _dump(v) for k, v in obj.items()}
    return obj


def _kind(tp: Any) -> str:
    """The expected type in words, for the error sentence."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_kind(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_kind(typing.get_args(tp)[0])}"
    if origin is dict or tp is dict:
        return "an object"
    if is_dataclass(tp):
        return "an object"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(tp, str(tp))


def _wrong(where: str, path: str, value: Any, tp: Any) -> UserError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return UserError(f"{where}: `{path}` is {shown}, not {_kind(tp)}; {REBUILD}")


def _load(tp: Any, value: Any, path: str, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _load(inner[0], value, path, where)
    if origin is list:
        if not isinstance(value, list):
            raise _wrong(where, path, value, tp)
        (item,) = typing.get_args(tp)
        return [_load(item, v, f"{path}[{i}]", where) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _wrong(where, path, value, tp)
        args = typing.get_args(tp)
        vt = args[1] if args else Any
        return {k: _load(vt, v, f"{path}.{k}", where) for k, v in value.items()}
    if isinstance(tp, type) and is_dataclass(tp):
        if not isinstance(value, dict):
            raise _wrong(where, path, value, tp)
        return _load_dataclass(tp, value, path, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise _wrong(where, path, value, tp)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(where, path, value, tp)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(where, path, value, tp)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _wrong(where, path, value, tp)
        return value
    raise TypeError(f"manifest field type {tp!r} is not supported")  # a programming error


_HINTS: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    """A section class's resolved field types (resolving them parses every annotation: once per class)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _load_dataclass(cls: type[T], doc: dict[str, Any], path: str, where: str) -> T:
    hints = _type_hints(cls)
    kwargs: dict[str, Any] = {}
    known = set()
    open_section = False
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name == "extra":
            open_section = True
            continue
        key = _key(f)
        known.add(key)
        dotted = f"{path}.{key}" if path else key
        if key not in doc:
            if f.default is MISSING and f.default_factory is MISSING:
                raise UserError(f"{where}: `{dotted}` is missing; {REBUILD}")
            continue
        kwargs[f.name] = _load(hints[f.name], doc[key], dotted, where)
    rest = {k: v for k, v in doc.items() if k not in known}
    if open_section:
        kwargs["extra"] = rest
    elif rest:
        key = sorted(rest)[0]
        dotted = f"{path}.{key}" if path else key
        raise UserError(f"{where}: `{dotted}` is not a field this tinyae knows; {REBUILD}")
    return cls(**kwargs)


# ------------------------------------------------------------------------- the directory as a whole
GENERATED_C = ("model_config.h", "model_data.cc", "model_compiled.c")
_BANNER_SHA = "Model: model_int8.tflite sha256 "


def mixed_files(model_dir: Path, manifest: Manifest) -> str:
    """Why the files of model_dir are not one build's ("" when they are): the network (model_int8.tflite)
    must be the one the manifest describes, and every generated C file present must say it was rendered
    for it.
    A run of an older tinyae stopped mid-way, or files copied by hand, leave such a mix."""
    import hashlib

    d = Path(model_dir)
    tfl = d / "model_int8.tflite"
    if not tfl.is_file():
        return "model_int8.tflite is missing"
    sha = hashlib.sha256(tfl.read_bytes()).hexdigest()
    if sha != manifest.model.sha256:
        return (
            f"model_int8.tflite (sha256 {sha[:12]}) is not the model manifest.json describes "
            f"({manifest.model.sha256[:12]})"
        )
    for name in GENERATED_C:  # those present (a directory made by hand may lack some)
        path = d / name
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as f:
            head = f.read(600)
        at = head.find(_BANNER_SHA)
        said = head[at + len(_BANNER_SHA) : at + len(_BANNER_SHA) + 64] if at >= 0 else ""
        if said != sha:
            return f"{name} was generated for another model ({said[:12] or 'no banner'}, not {sha[:12]})"
    return ""
