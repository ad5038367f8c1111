"""The front-end's #define block (frontend_block.j2): its template context from a manifest's `frontend`
and `window` sections, and the block alone for host builds and test headers."""

from __future__ import annotations

from markupsafe import Markup

from tinyae.train.frontend.spec import STATS, FrontendSpec
from tinyae.train.render import render


def frontend_context(manifest: dict) -> dict:
    """Template context of frontend_block.j2, from the manifest's `frontend` and `window` sections."""
    spec = FrontendSpec.from_manifest(manifest)
    fe = spec.to_manifest()
    ctx: dict = {"fe": fe, "sp": fe.get("spectral"), "length": spec.length, "channels": spec.channels}
    if spec.spectral:
        ctx["window_table"] = spec.spectral.window_table().tolist()
        ctx["twiddle"] = spec.spectral.twiddles().tolist()
        ctx["bitrev"] = spec.spectral.bit_reversal().tolist()
    ctx["stat_ids"] = [STATS.index(s) for s in spec.stats]
    return ctx


def frontend_defines(spec) -> str:
    """The front-end's #define block alone, for test headers assembled by hand (a FrontendSpec)."""
    view = {"frontend": spec.to_manifest(), "window": {"length": spec.length, "channels": spec.channels}}
    return Markup(render("frontend_block.j2", **frontend_context(view)))
