"""Models for the tests, trained (or converted) once per content and shared: within a run (every test,
every xdist worker) and across runs (tinyae.buildcache, build/cache/models/ and build/cache/converted/).

A model's key is everything that decides its bytes: the config after overrides, the content of the data
files it names, the code that trains and exports it (train/, tinyae/, the C core training runs), the
pinned libraries' versions and the command line written into its banners. A change to any of them
trains again; TAE_BUILD_CACHE=off trains every time.

A shared model directory is read-only by contract: `Guard` fails the test that changed one (and drops
the cache entry) so no test can pass or fail because of what another one wrote.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import cache
from importlib import metadata
from pathlib import Path

from tinyae import buildcache
from tinyae.buildcache import Key
from tinyae.paths import ROOT

# The distributions whose version can change a trained, converted or rendered model.
LIBRARIES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "tflite-micro", "flatbuffers", "jinja2",
             "matplotlib", "scipy")  # fmt: skip


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _code(key: Key) -> Key:
    """The code that trains, converts and exports a model (train/, tinyae/, the C core training runs) and
    the libraries' versions."""
    key.tree(ROOT / "train").tree(ROOT / "tinyae", "*.py").tree(ROOT / "firmware" / "lib" / "tinyae" / "src")
    return key.text(*(f"{name}=={_version(name)}" for name in LIBRARIES))


def model_key(cfg, command: str) -> Key:  # cfg: tinyae.train.config.Config
    from tinyae.train.inputs import data_files

    key = Key("model").text(str(ROOT), sys.version, command)
    key.text(json.dumps(cfg.to_dict(), sort_keys=True))
    for path in data_files(cfg):
        key.file(path, str(path))
    return _code(key)


@cache
def _code_digest() -> str:
    return _code(Key("code")).digest


def converted(name: str, recipe: Path, convert: Callable[[], bytes]) -> bytes:
    """The int8 flatbuffer `convert()` returns (a Keras model through the TFLite converter: TensorFlow
    imported, seconds), made once per content and shared like the trained models: keyed by `name`, the
    recipe (the file that builds the model and its representative data: the test module), the code
    (train/, tinyae/) and the libraries' versions. A test reading it proves what the converter's output
    does; an edit to the conversion code or the recipe converts again, and so does TAE_BUILD_CACHE=off."""
    key = Key("converted").text(str(ROOT), sys.version, name, _code_digest()).file(recipe, str(recipe))
    if buildcache.root() is None:
        return convert()
    out = buildcache.entry("converted", key, lambda d: (d / "model.tflite").write_bytes(convert()))
    return (out / "model.tflite").read_bytes()


def trained(
    overrides: list[str] | tuple[str, ...] = (),
    *,
    command: str | None = None,
    config: Path = ROOT / "configs" / "default.toml",
    scratch: Path | None = None,
) -> Path:
    """The model directory of `config` with `overrides` (tinyae.train.pipeline.run), from the cache when
    one with the same key was trained before. Read it, never write it (Guard); copy it to change it.
    `scratch` is where it is trained when the cache is off."""
    from tinyae.train import config as cfgmod

    cfg = cfgmod.load(config, list(overrides))
    shown = config.relative_to(ROOT) if config.is_relative_to(ROOT) else config
    command = command or " ".join(["tinyae model --config", str(shown), *(f"--set {o}" for o in overrides)])

    def train(out: Path) -> None:
        from tinyae.train.pipeline import run  # TensorFlow: only when training

        run(cfg, out, command, show_progress=False)

    out = buildcache.entry("models", model_key(cfg, command), train, scratch=scratch)
    GUARD.watch(out)
    return out


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".complete"
    }


class Guard:
    """Snapshots of the shared model directories; `changed()` names any a test wrote into."""

    def __init__(self) -> None:
        self._seen: dict[Path, dict[str, tuple[int, int]]] = {}

    def watch(self, folder: Path) -> None:
        if folder not in self._seen:
            self._seen[folder] = _snapshot(folder)

    def changed(self) -> list[str]:
        """The shared directories changed since they were watched (each re-snapshotted and its cache
        entry dropped, so one offender fails once and the next run trains afresh)."""
        out = []
        for folder, before in self._seen.items():
            now = _snapshot(folder)
            if now != before:
                diff = sorted(set(now.items()) ^ set(before.items()))
                out.append(f"{folder} ({', '.join(sorted({name for name, _ in diff}))})")
                self._seen[folder] = now
                buildcache.invalidate(folder)
        return out


GUARD = Guard()
