"""Models for the tests, trained (or converted) once per content and shared: within a run (every test,
every xdist worker) and across runs (tinyae.buildcache, build/cache/models/ and build/cache/converted/).

A model's key is everything that decides its bytes: the config after overrides, the content of the data
files it names, the code that trains and exports it (train/, tinyae/, the C core training runs), the
pinned libraries' versions and the command line written into its banners. A change to any of them
trains again; TAE_BUILD_CACHE=off trains every time. A converted model's code is narrower: the Python
files its recipe can import (`import_closure`), so an edit elsewhere in train/ (the edit-run loop's
usual case) does not import TensorFlow to convert the same models again.

A shared model directory is read-only by contract: `Guard` fails the test that changed one (and drops
the cache entry) so no test can pass or fail because of what another one wrote.
"""

from __future__ import annotations

import ast
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


def _module_files(name: str) -> list[Path]:
    """The project's files that importing module `name` runs: its file and its packages' __init__.py
    (tinyae.*, or a helper module beside the tests); [] for a module from outside the project."""
    parts = name.split(".")
    out = []
    for base in (ROOT, ROOT / "tests"):
        for i in range(1, len(parts) + 1):
            stem = base.joinpath(*parts[:i])
            for candidate in (stem / "__init__.py", stem.with_suffix(".py")):
                if candidate.is_file():
                    out.append(candidate)
                    break
            else:
                break
        if out:
            return out
    return []


# Calls that import a module named at run time: the static closure cannot follow them.
_DYNAMIC_IMPORTS = ("import_module", "__import__")


def import_closure(start: Path, skip: tuple[Path, ...] = ()) -> list[Path] | None:
    """Every project file that running `start` can import, following each import statement anywhere in
    a file (a function's too), relative ones included: a superset of the code it runs. Files in `skip`
    are not followed (this module: the cache does not change what a recipe makes). None when one of them
    imports by a name computed at run time (importlib.import_module), which no static walk follows: the
    caller keys on all of the code then."""
    seen: set[Path] = set()
    todo = [start.resolve()]
    skipped = {p.resolve() for p in skip}
    while todo:
        path = todo.pop()
        if path in seen or path in skipped:
            continue
        seen.add(path)
        tree = ast.parse(path.read_bytes(), str(path))
        package = path.parent
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called in _DYNAMIC_IMPORTS:
                    return None
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level:  # relative: files beside this one
                base = package
                for _ in range(node.level - 1):
                    base = base.parent
                stems = [base.joinpath(*(node.module or "").split("."))] if node.module else [base]
                stems += [stems[0] / a.name for a in node.names]
                todo += [c for s in stems for c in (s / "__init__.py", s.with_suffix(".py")) if c.is_file()]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                todo += [f.resolve() for f in _module_files(name)]
    return sorted(seen)


@cache
def _code_digest() -> str:
    return _code(Key("code")).digest


@cache
def _recipe_code_digest(recipe: Path) -> str:
    """The code a conversion recipe can run (import_closure; all of it when that cannot be known), the
    recipe itself included, and the libraries' versions."""
    files = import_closure(recipe, skip=(Path(__file__),))
    if files is None:
        return Key("code").text(_code_digest()).file(recipe, str(recipe)).digest
    key = Key("recipe code")
    for path in files:
        key.file(path, str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path))
    return key.text(*(f"{name}=={_version(name)}" for name in LIBRARIES)).digest


def converted(name: str, recipe: Path, convert: Callable[[], bytes]) -> bytes:
    """The int8 flatbuffer `convert()` returns (a Keras model through the TFLite converter: TensorFlow
    imported, seconds), made once per content and shared like the trained models: keyed by `name`, the
    recipe (the file that builds the model and its representative data: the test module), the code the
    recipe can import (tinyae.train.quantize and what it imports, `import_closure`) and the libraries'
    versions. A test reading it proves what the converter's output does; an edit to the conversion code
    or the recipe converts again, and so does TAE_BUILD_CACHE=off."""
    key = Key("converted").text(str(ROOT), sys.version, name, _recipe_code_digest(recipe))
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
