"""What a model directory was built from, and whether it still matches: the rebuild decision for `make`.

A model depends on more than files make can see: the config's *content* (after `--set` overrides,
whichever file it came from), every data file the config names (globs expanded now, so a recording
added to a folder counts), and the C front-end that training runs (`tae_frontend.c/.h`). Training
records them in the manifest (`built_from`); `tinyae inputs` computes them again and, when
anything differs or the model is missing, touches a stamp file that `make`'s manifest rule depends on
(Makefile). When the model is up to date the stamp gets the oldest possible time, so make does nothing.

Data files are compared by sha256 of their content; a file whose size and modification time are
unchanged since the build is taken as unchanged without reading it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from glob import glob
from pathlib import Path

from tinyae.errors import UserError
from tinyae.paths import ROOT
from tinyae.train.config import Config

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


def built_from(cfg: Config, config_file: str | None, known: dict | None = None) -> dict:
    """The record training writes into the manifest (and the check recomputes)."""
    prev_files = {f["path"]: f for f in (known or {}).get("data_files", []) if "sha256" in f}
    return {
        "config_file": config_file,
        "config_sha256": config_digest(cfg),
        "data_files": [_file_entry(p, prev_files) for p in data_files(cfg)],
        "frontend_c_sha256": {p.name: _sha256(p) for p in FRONTEND_C if p.is_file()},
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


def check(cfg: Config, config_file: str | None, model_dir: Path, stamp: Path) -> str:
    """Touch `stamp` when the model in model_dir must be rebuilt; returns the reason ("" = up to date)."""
    from tinyae.train.manifest import Manifest

    manifest = model_dir / "manifest.json"
    if not manifest.is_file():
        reason = "there is no model yet"
    else:
        try:
            m = Manifest.load(manifest)
        except UserError as exc:  # an older schema, a broken file: rebuild, saying why
            reason = f"its manifest is not usable ({exc})"
        else:
            then = m.to_dict()["built_from"]
            reason = stale_reason(built_from(cfg, config_file, then), then)
            if m.imported is not None:  # make would train over it: never; say what changed since
                src = Path(m.imported.file)
                if src.is_file() and _sha256(src) != m.model.sha256:
                    reason = f"{src} changed since" + (f", and {reason}" if reason else "")
            if reason and m.imported is not None:
                print(
                    f"tinyae: {model_dir} was made by `{m.generator.command}` and {reason}; make uses it as "
                    "it is (run that command again to rebuild it, or give make another MODEL_DIR)",
                    file=sys.stderr,
                )
                reason = ""
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()
    if not reason:
        os.utime(stamp, ns=(0, 0))  # older than any model: nothing to rebuild
    return reason
