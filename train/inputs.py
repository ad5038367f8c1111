"""What a model directory was built from, and whether it still matches: the rebuild decision for `make`.

A model depends on more than files make can see: the config's *content* (after `--set` overrides,
whichever file it came from), every data file the config names (globs expanded now, so a recording
added to a folder counts), and the C front-end that training runs (`tae_frontend.c/.h`). Training
records them in the manifest (`built_from`), with the command that built the directory; `tinyae inputs`
computes them again and, when make must rebuild, touches a stamp file that `make`'s manifest rule
depends on (Makefile). When the model is up to date the stamp gets the oldest possible time, so make
does nothing.

`make` never replaces a model it did not build. Make builds with `tinyae model --config CONFIG` and
nothing else; a directory built otherwise (`--set` overrides, `tinyae search`, `tinyae import`, or
changed afterwards by `tinyae threshold`) is used as it is while its own inputs are unchanged (an imported
model's include its .tflite), and otherwise make stops with one sentence naming the command that rebuilds
it. It is never overwritten with another config.

Data files are compared by sha256 of their content; a file whose size and modification time are
unchanged since the build is taken as unchanged without reading it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from glob import glob
from pathlib import Path
from typing import TYPE_CHECKING

from tinyae.errors import UserError
from tinyae.paths import ROOT
from tinyae.train.config import Config

if TYPE_CHECKING:
    from tinyae.train.manifest import Manifest

FRONTEND_C = [
    ROOT / "firmware" / "lib" / "tinyae" / "src" / "tae_frontend.c",
    ROOT / "firmware" / "lib" / "tinyae" / "src" / "tae_frontend.h",
]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def config_digest(cfg: Config) -> str:
    return hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()


def data_files(cfg: Config) -> list[Path]:
    """The files the data config names (globs expanded, sorted), for file-based sources."""
    if cfg.data.source.strip().lower() not in ("csv", "ucr"):
        return []
    out: list[Path] = []
    for item in [*cfg.data.paths, *cfg.data.train, *cfg.data.test]:
        if any(ch in item for ch in "*?["):
            out += [Path(p) for p in sorted(glob(item, recursive=True))]
        else:
            out.append(Path(item))
    return sorted(set(out))


def _file_entry(path: Path, known: dict[str, dict] | None = None) -> dict:
    if not path.is_file():
        return {"path": str(path), "missing": True}
    st = path.stat()
    prev = (known or {}).get(str(path))
    if prev and prev.get("bytes") == st.st_size and prev.get("mtime_ns") == st.st_mtime_ns:
        sha = prev["sha256"]
    else:
        sha = _sha256(path)
    return {"path": str(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}


def built_from(
    cfg: Config,
    config_file: str | None,
    known: dict | None = None,
    *,
    overrides: Sequence[str] = (),
    builder: str = "tinyae model",
    command: str | None = None,
) -> dict:
    """The record training writes into the manifest (and the check recomputes)."""
    prev_files = {f["path"]: f for f in (known or {}).get("data_files", []) if "sha256" in f}
    return {
        "config_file": config_file,
        "config_sha256": config_digest(cfg),
        "data_files": [_file_entry(p, prev_files) for p in data_files(cfg)],
        "frontend_c_sha256": {p.name: _sha256(p) for p in FRONTEND_C if p.is_file()},
        "overrides": list(overrides),
        "builder": builder,
        "command": command,
        "changed_by": [],
    }


def stale_reason(now: dict, then: dict | None) -> str:
    """Why a model built from `then` is not what `now` asks for ("" when it is)."""
    if not then:
        return "it records no inputs (built by an older tinyae)"
    if now["config_sha256"] != then.get("config_sha256"):
        was = then.get("config_file") or "overrides"
        return f"the config differs from the one it was built from ({was})"
    a = {f["path"]: f.get("sha256") for f in now["data_files"]}
    b = {f["path"]: f.get("sha256") for f in then.get("data_files", [])}
    if set(a) != set(b):
        new, gone = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        return (
            "its data files changed ("
            + "; ".join([*(f"new: {p}" for p in new[:3]), *(f"gone: {p}" for p in gone[:3])])
            + ")"
        )
    changed = [p for p in a if a[p] != b[p]]
    if changed:
        return f"data file {changed[0]} changed" + (
            f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        )
    if now["frontend_c_sha256"] != then.get("frontend_c_sha256"):
        return "the C front-end (tae_frontend.c/.h) changed"
    return ""


def built_by_make(then: dict) -> bool:
    """True when `tinyae model --config FILE` (what make runs) built the directory and nothing changed it
    since: make may then rebuild it from any CONFIG."""
    return (
        then.get("builder", "tinyae model") == "tinyae model"
        and not then.get("overrides")
        and not then.get("changed_by")
    )


def recipe(then: dict) -> str:
    """The commands that built the directory, as the user would type them."""
    first = then.get("command") or "tinyae model" + "".join(
        f" --set {shlex.quote(o)}" for o in then.get("overrides", [])
    )
    steps = [f"`{first}`", *(f"`{c}`" for c in then.get("changed_by", []))]
    text = ", then ".join(steps)
    builder = then.get("builder", "tinyae model")
    return text if first.startswith(builder) else f"{builder} ({text})"


def _own_stale_reason(then: dict, model: Manifest) -> str:
    """Why a directory is out of date with *its own* recorded inputs (its config file with its overrides,
    and an imported model's .tflite: `tinyae import` copied it, so a changed file is a new model)."""
    from tinyae.train import config

    if model.imported is not None:
        src = Path(model.imported.file)
        if src.is_file() and _sha256(src) != model.model.sha256:
            return f"{src} changed since"
    file = then.get("config_file")
    if file is not None and not Path(file).is_file():
        return f"its config file {file} is gone"
    try:
        cfg = config.load(Path(file) if file else None, list(then.get("overrides", [])))
    except UserError as exc:
        return f"its config no longer loads ({exc})"
    return stale_reason(built_from(cfg, file, then), then)


@dataclass
class Decision:
    reason: str  # why make must (re)build ("" = it must not)
    note: str = ""  # a line to show even when nothing is rebuilt


def decide(cfg: Config, config_file: str | None, model_dir: Path, *, explicit: bool = True) -> Decision:
    """Whether make may (and must) build `model_dir` from `cfg`; UserError when it must not touch it.

    explicit: the user named CONFIG (make's command line or environment) rather than make's default."""
    from tinyae.train.manifest import Manifest, mixed_files

    manifest = model_dir / "manifest.json"
    if not manifest.is_file():
        return Decision("there is no model yet")
    try:
        m = Manifest.load(manifest)
    except UserError as exc:  # an older schema, a broken file: rebuild, saying why
        return Decision(f"its manifest is not usable ({exc})")
    then = m.to_dict()["built_from"]
    mixed = mixed_files(model_dir, m)
    if mixed:
        mixed = f"its files are from two builds ({mixed})"
    asked = config_file or "the built-in defaults"
    if built_by_make(then):
        return Decision(mixed or stale_reason(built_from(cfg, config_file, then), then))
    how = recipe(then)
    keep = f"remove {model_dir} to let make build it from {asked}, or give make another MODEL_DIR"
    if explicit and config_digest(cfg) != then.get("config_sha256"):
        raise UserError(
            f"{model_dir} was built by {how}, not from {asked}; make never replaces a model it did not "
            f"build: run that again to rebuild it, {keep}"
        )
    own = mixed or _own_stale_reason(then, m)
    if own:
        raise UserError(
            f"{model_dir} was built by {how} and {own}; make never rebuilds a model it did not build: "
            f"run that again to rebuild it, {keep}"
        )
    return Decision("", f"{model_dir} was built by {how}, not by make; make uses it as it is ({keep})")


def check(
    cfg: Config, config_file: str | None, model_dir: Path, stamp: Path, *, explicit: bool = True,
    note: bool = True,
) -> str:  # fmt: skip
    """Touch `stamp` when the model in model_dir must be rebuilt; returns the reason ("" = up to date).
    Raises UserError when make must not touch model_dir (see `decide`). note: print the decision's note
    (False in tinyae's own sub-makes, which pass TAE_SUBMAKE=1: the make that started them said it; not
    MAKELEVEL, which also counts a make the user's own make or a test harness started)."""
    d = decide(cfg, config_file, model_dir, explicit=explicit)
    if d.note and note:
        print(f"tinyae: {d.note}", file=sys.stderr)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()
    if not d.reason:
        os.utime(stamp, ns=(0, 0))  # older than any model: nothing to rebuild
    return d.reason


def may_replace(model_dir: Path) -> str:
    """For the manifest rule (`tinyae model --from-make`): "" when make may write model_dir, else a
    sentence saying why it leaves it as it is (a model another command built)."""
    from tinyae.train.manifest import Manifest

    manifest = model_dir / "manifest.json"
    if not manifest.is_file():
        return ""
    try:
        then = Manifest.load(manifest).to_dict()["built_from"]
    except UserError:
        return ""
    if built_by_make(then):
        return ""
    return (
        f"{model_dir} was built by {recipe(then)}, not by make, and its inputs are unchanged; tinyae's code "
        f"changed since, and make leaves it as it is: run that again to rebuild it with this tinyae"
    )
