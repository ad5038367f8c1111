"""The models the bench trains: each one `tinyae model` run with config overrides.

Training runs as a subprocess with the exact command a user would type, so each figure's command can
be re-run by hand and gives the same model (fixed seeds; TensorFlow on CPU with oneDNN off).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from tinyae.errors import UserError
from tinyae.steps import run_step as run
from tinyae.tools.bench.common import TINYAE, command_text, rel
from tinyae.train.manifest import Manifest

CONFIG = "configs/default.toml"


@dataclass(frozen=True)
class ModelSpec:
    name: str  # also the directory name under the bench's model directory
    overrides: tuple[str, ...] = ()
    note: str = ""
    config: str = CONFIG


@dataclass
class TrainedModel:
    spec: ModelSpec
    dir: Path
    command: str
    wall_s: float
    typed: Manifest = field(repr=False)  # the model's manifest, validated on load

    @property
    def manifest(self) -> dict:
        """The manifest in its JSON layout (the keys the bench tables quote)."""
        return self.typed.to_dict()

    @property
    def shape(self) -> str:
        """Layer widths from input to output, e.g. "128-64-16-64-128"."""
        layers = self.manifest["model"]["layers"]
        return "-".join(str(n) for n in [self.manifest["input"]["size"], *(la["units"] for la in layers)])


def train_command(spec: ModelSpec, out: Path) -> list[str]:
    argv = [TINYAE, "model", "--config", spec.config]
    for o in spec.overrides:
        argv += ["--set", o]
    return [*argv, "--out", rel(out), "--quiet"]


# Models this process has trained, by (model directory, config, overrides): a section that needs a model
# another already trained (the front-end study's raw row is the default model) reads that one.
_TRAINED: dict[tuple[Path, str, tuple[str, ...]], TrainedModel] = {}


def train(spec: ModelSpec, models_dir: Path, *, suffix: str = "") -> TrainedModel:
    """`tinyae model` for spec; the same config and overrides trained before in this process under
    models_dir give that model (its directory and command) under spec. A `suffix` (a repeat run for
    timings and reproducibility) always trains again."""
    key = (models_dir.resolve(), spec.config, spec.overrides)
    same = _TRAINED.get(key) if not suffix else None
    if same is not None and (same.dir / "manifest.json").is_file():
        return TrainedModel(spec, same.dir, same.command, same.wall_s, same.typed)
    out = models_dir / (spec.name + suffix)
    argv = train_command(spec, out)
    wall, _ = run(argv)
    manifest = Manifest.load(out / "manifest.json")
    trained = TrainedModel(spec, out, command_text(argv), wall, manifest)
    if not suffix:
        _TRAINED[key] = trained
    return trained


def distinct(specs: list[ModelSpec]) -> list[ModelSpec]:
    """The first spec of each config and overrides (what train() trains once), in order."""
    return list({(s.config, s.overrides): s for s in reversed(specs)}.values())[::-1]


def train_together(specs: list[ModelSpec], models_dir: Path, workers: int) -> None:
    """Train the distinct specs (by config and overrides) side by side, `workers` at a time, so that the
    sections' own train() calls find them trained. Only where timings mean nothing (bench --quick): each
    run's wall time then includes its neighbours' load. A spec that fails here is trained again, and fails
    in its own section, which records why."""
    from concurrent.futures import ThreadPoolExecutor

    def one(spec: ModelSpec) -> None:
        with contextlib.suppress(UserError):
            train(spec, models_dir)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, distinct(specs)))


# -- the specs ---------------------------------------------------------------------------------
DEFAULT = ModelSpec("synthetic", (), "configs/default.toml as is: embedded synthetic 3-axis vibration")
BASICMOTIONS = ModelSpec(
    "basicmotions",
    ("data.source=basicmotions", "window.hop=5", "window.length=20"),  # hop first: each override is validated
    "UEA BasicMotions; normal = Standing + Walking, anomalies = Running + Badminton",
)
INTERNALBLEEDING = ModelSpec(
    "internalbleeding",
    ("data.source=internalbleeding", "window.hop=16", "window.length=64"),
    "UCR anomaly archive 135 InternalBleeding16 (one labelled anomaly of 12 samples)",
)
DAPHNET = ModelSpec(
    "daphnet",
    ("data.source=daphnet", "window.length=64", "window.hop=32"),
    "Daphnet S06R02E0: no freezing episode, so only a false-alarm figure",
)
QUALITY = (DEFAULT, BASICMOTIONS, INTERNALBLEEDING, DAPHNET)

# DESIGN.md's reference network 128-64-16-64-128: one channel x 128 samples (InternalBleeding16, the
# single-channel data set) -> 64 -> 16 -> 64 -> 128, 18,432 MACs. The cost of a dense int8 network does
# not depend on what it was trained on, only on its shape and activations. Per-tensor weights, the
# default, which every pinned TFLM library computes: the bench measures all three engines on it.
_REF = ("data.source=internalbleeding", "window.length=128", "window.hop=32", "model.latent=16")


def reference_spec(hidden: int = 64, output: str = "linear") -> ModelSpec:
    name = f"ref-h{hidden}" + ("-logistic" if output == "sigmoid" else "")
    # a sigmoid output reaches (0, 1) only: min-max normalized data, as the config requires
    norm = ("normalization.method=minmax",) if output == "sigmoid" else ()
    return ModelSpec(
        name,
        (*_REF, f"model.hidden=[{hidden}]", f"model.output_activation={output}", *norm),
        f"128-{hidden}-16-{hidden}-128, {'final LOGISTIC' if output == 'sigmoid' else 'linear output'}",
    )


REFERENCE = reference_spec(64)
REFERENCE_LOGISTIC = reference_spec(64, "sigmoid")
SWEEP_HIDDEN = (32, 64, 128, 256)


def quick(spec: ModelSpec) -> ModelSpec:
    """The same model with two epochs (bench --quick: checks the code path, not the figures)."""
    return ModelSpec(
        spec.name + "-quick", (*spec.overrides, "train.epochs=2"), spec.note + " (2 epochs)", spec.config
    )
