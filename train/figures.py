"""Pictures that read at the size a page shows them, and a check of what matplotlib can see is wrong.

Every picture tinyae writes (the model report, the search report) is made with `figure()` and written
with `save()`:

- `figure()` uses matplotlib's constrained layout at the page's resolution (PAGE_DPI: a picture
  `w` inches wide is shown `w * PAGE_DPI` pixels wide on a report page, never more than PAGE_WIDTH_PX);
- `save()` first repairs what it can: titles wider than their space are wrapped, tick labels that run
  into each other are thinned (categorical ones rotated), and a legend that covers data moves to an
  empty corner or below the plot; then it runs `layout_problems()` and writes its verdict into the PNG
  (text chunk `LAYOUT_KEY`: "ok" or the problems, one per line), where the tests read it.

`layout_problems(fig)` names, in sentences: text outside the figure (clipped titles and labels), two
texts that overlap (tick labels running together, an axis label over a neighbour's ticks), and a legend
drawn over data (lines, points, bars).
"""

from __future__ import annotations

import struct
import textwrap
import typing
import zlib
from pathlib import Path
from typing import Any, Literal

import matplotlib
import matplotlib.image

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from matplotlib.transforms import Bbox

PAGE_DPI = 110
PAGE_WIDTH_PX = 1100  # the report pages' content width
LAYOUT_KEY = "tinyae-layout"
TOLERANCE_PX = 1.0


def figure(width_in: float, height_in: float, nrows: int = 1, ncols: int = 1, **kwargs: Any):  # type: ignore[no-untyped-def]
    """(fig, axes) with constrained layout at PAGE_DPI; wider than the page is refused."""
    if width_in * PAGE_DPI > PAGE_WIDTH_PX + 0.5:
        raise ValueError(f"a {width_in} in figure is wider than the page ({PAGE_WIDTH_PX / PAGE_DPI:.1f} in)")
    return plt.subplots(
        nrows, ncols, figsize=(width_in, height_in), dpi=PAGE_DPI, layout="constrained", **kwargs
    )


def _g(v: float, _pos: Any = None) -> str:
    return f"{v:g}"


def log_axis(ax: Axes, which: str = "x") -> None:
    """A log axis labelled with plain numbers (0.02, 0.05, 0.1, ...) and unlabelled minor ticks."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    lo, hi = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    decades = np.log10(max(hi, 1e-300) / max(lo, 1e-300)) if lo > 0 else 9.0
    subs = (1.0, 2.0, 3.0, 5.0, 7.0) if decades < 1.2 else (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(_g))
    axis.set_minor_formatter(NullFormatter())


# ------------------------------------------------------------------------------------- the check
def _renderer(fig: Figure):  # type: ignore[no-untyped-def]
    fig.canvas.draw()
    return fig.canvas.get_renderer()  # type: ignore[attr-defined]


def _tick_texts(ax: Axes) -> list[tuple[str, Text]]:
    out = []
    for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        lo, hi = sorted(axis.get_view_interval())
        span = hi - lo
        for ticks in (axis.get_major_ticks(), axis.get_minor_ticks()):
            for t in ticks:
                loc = t.get_loc()
                if loc is None or not (lo - 1e-9 * span <= loc <= hi + 1e-9 * span):
                    continue
                for lab in (t.label1, t.label2):
                    if lab.get_visible() and lab.get_text().strip():
                        out.append((f"{name} tick label", lab))
    return out


def _texts(fig: Figure) -> list[tuple[str, Text]]:
    """Every visible, non-empty text the figure draws, named for a message."""
    ticks = [t for ax in fig.axes for t in _tick_texts(ax)]
    tick_ids = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tk in (*axis.get_major_ticks(), *axis.get_minor_ticks()):
                tick_ids |= {id(tk.label1), id(tk.label2)}
    others = []
    for t in fig.findobj(Text):
        if id(t) in tick_ids or not t.get_visible() or not t.get_text().strip():
            continue
        if t.axes is not None and not t.axes.get_visible():
            continue
        others.append(("text", t))
    return ticks + others


def _label(t: Text) -> str:
    s = " ".join(t.get_text().split())
    return repr(s if len(s) <= 40 else s[:37] + "...")


def _data_paths(ax: Axes, renderer) -> tuple[list[Any], list[np.ndarray], list[Bbox]]:  # type: ignore[no-untyped-def]
    """Display-space lines (paths), points and bars of one axes."""
    lines, points, bars = [], [], []
    for line in ax.get_lines():
        if line.get_visible() and np.size(line.get_xdata()):
            lines.append(line.get_transform().transform_path(line.get_path()))
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and coll.get_visible() and np.size(coll.get_offsets()):
            points.append(coll.get_offset_transform().transform(coll.get_offsets()))
    for patch in ax.patches:
        if not patch.get_visible():
            continue
        bb = patch.get_window_extent(renderer)
        if bb.width > TOLERANCE_PX and bb.height > TOLERANCE_PX:
            bars.append(bb)
    return lines, points, bars


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > TOLERANCE_PX and h > TOLERANCE_PX else 0.0


def covered_data(legend: Legend, axes: list[Axes], renderer) -> list[str]:  # type: ignore[no-untyped-def]
    """What data of `axes` the legend's box covers (empty: none)."""
    box = legend.get_window_extent(renderer)
    hits = []
    for ax in axes:
        clip = ax.get_window_extent(renderer)
        lines, points, bars = _data_paths(ax, renderer)
        for path in lines:
            if path.intersects_bbox(box, filled=False):
                v = path.vertices
                inside = (
                    (v[:, 0] >= clip.x0) & (v[:, 0] <= clip.x1) & (v[:, 1] >= clip.y0) & (v[:, 1] <= clip.y1)
                )
                if inside.any() or len(v) == 2:
                    hits.append("a line")
                    break
        for pts in points:
            if (
                (pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)
            ).any():
                hits.append("points")
                break
        if any(_overlap(box, b) for b in bars):
            hits.append("bars")
    return hits


def _legends(fig: Figure) -> list[tuple[Legend, list[Axes]]]:
    out = [(leg, [ax]) for ax in fig.axes if (leg := ax.get_legend()) is not None]
    out += [(leg, list(fig.axes)) for leg in fig.legends]
    return [(leg, axes) for leg, axes in out if leg.get_visible()]


def layout_problems(fig: Figure, *, drawn: bool = False) -> list[str]:
    """What a reader would see wrong, in sentences (see the module docstring); empty when none.

    drawn: the figure was drawn after its last change (save's case), so its text extents are current."""
    renderer = fig.canvas.get_renderer() if drawn else _renderer(fig)  # type: ignore[attr-defined]
    fig_box = fig.bbox
    problems = []
    texts = [(kind, t, t.get_window_extent(renderer)) for kind, t in _texts(fig)]
    for kind, t, bb in texts:
        if (bb.x0 < fig_box.x0 - TOLERANCE_PX or bb.y0 < fig_box.y0 - TOLERANCE_PX
                or bb.x1 > fig_box.x1 + TOLERANCE_PX or bb.y1 > fig_box.y1 + TOLERANCE_PX):  # fmt: skip
            problems.append(f"{kind} {_label(t)} is cut off at the figure's edge")
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            (k1, t1, b1), (k2, t2, b2) = texts[i], texts[j]
            if _overlap(b1, b2) > 2.0:
                problems.append(f"{k1} {_label(t1)} overlaps {k2} {_label(t2)}")
    for leg, axes in _legends(fig):
        hits = covered_data(leg, axes, renderer)
        if hits:
            problems.append(f"the legend covers {', '.join(hits)}")
    return problems


# ------------------------------------------------------------------------------------- repairs
def _wrap_titles(fig: Figure, renderer) -> bool:  # type: ignore[no-untyped-def]
    changed = False
    titles = [(ax.title, ax.get_window_extent(renderer).width) for ax in fig.axes]
    if fig._suptitle is not None:  # type: ignore[attr-defined]
        titles.append((fig._suptitle, fig.bbox.width))  # type: ignore[attr-defined]
    for t, room in titles:
        text = t.get_text()
        width = t.get_window_extent(renderer).width
        if text and width > room - 2 * TOLERANCE_PX:
            chars = max(10, int(len(text.replace("\n", " ")) * (room - 8) / width))
            t.set_text(textwrap.fill(text.replace("\n", " "), chars))
            changed = True
    return changed


def _tick_overlaps(axis: Any, renderer) -> bool:  # type: ignore[no-untyped-def]
    boxes = []
    ax = axis.axes
    for kind, t in _tick_texts(ax):
        if kind.startswith(axis.axis_name):
            boxes.append(t.get_window_extent(renderer))
    return any(_overlap(a, b) > 0 for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def _thin_ticks(fig: Figure, renderer) -> bool:  # type: ignore[no-untyped-def]
    changed = False
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if not _tick_overlaps(axis, renderer):
                continue
            changed = True
            axis.set_minor_formatter(NullFormatter())
            renderer = _renderer(fig)
            if isinstance(axis.get_major_locator(), FixedLocator):  # categories: turn them
                on_x = axis.axis_name == "x"
                ax.tick_params(axis="x" if on_x else "y", labelrotation=90 if on_x else 0)
                renderer = _renderer(fig)
                continue
            for nbins in (6, 4, 3, 2):
                if not _tick_overlaps(axis, renderer):
                    break
                if axis.get_scale() == "log":
                    axis.set_major_locator(LogLocator(base=10, numticks=nbins + 1))
                    axis.set_major_formatter(FuncFormatter(_g))
                else:
                    axis.set_major_locator(MaxNLocator(nbins=nbins))
                renderer = _renderer(fig)
    return changed


LegendCorner = Literal["upper right", "upper left", "lower right", "lower left", "center right", "center left",
                       "upper center", "lower center"]  # fmt: skip
CORNERS: tuple[LegendCorner, ...] = typing.get_args(LegendCorner)


def _move_legends(fig: Figure, renderer) -> bool:  # type: ignore[no-untyped-def]
    changed = False
    for leg, axes in _legends(fig):
        if leg in fig.legends or not covered_data(leg, axes, renderer):
            continue
        changed = True
        ax = axes[0]
        for loc in CORNERS:
            leg.set_loc(loc)
            renderer = _renderer(fig)
            if not covered_data(leg, axes, renderer):
                break
        else:  # no empty corner: below the plot, outside the axes
            handles, labels = ax.get_legend_handles_labels()
            size = leg.get_texts()[0].get_fontsize() if leg.get_texts() else 8
            leg.remove()
            ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2,
                      fontsize=size, frameon=False)  # fmt: skip
            renderer = _renderer(fig)
    return changed


def repair(fig: Figure) -> None:
    """Wrap titles, thin tick labels, move legends off the data (see the module docstring); the figure is
    drawn after its last change when this returns, its layout then fixed (no layout engine)."""
    renderer = _renderer(fig)
    changed = _wrap_titles(fig, renderer)
    if changed:
        renderer = _renderer(fig)
    changed = _thin_ticks(fig, renderer) | changed
    changed = _move_legends(fig, renderer) | changed
    if changed:  # a last layout with every repair in place
        _renderer(fig)
    fig.set_layout_engine("none")  # freeze it: the check and the PNG see the positions drawn last


def save(fig: Figure, path: Path) -> str:
    """Repair, check and write the picture (PNG at PAGE_DPI, the verdict in its LAYOUT_KEY chunk); its
    file name."""
    repair(fig)
    problems = layout_problems(fig, drawn=True)
    # repair left the final picture drawn at PAGE_DPI: write those pixels rather than let savefig draw the
    # whole figure once more (a third of a report's time)
    pixels = np.asarray(fig.canvas.buffer_rgba())  # type: ignore[attr-defined]
    matplotlib.image.imsave(
        path, pixels, format="png", dpi=PAGE_DPI, metadata={LAYOUT_KEY: "\n".join(problems) or "ok"}
    )
    plt.close(fig)
    return Path(path).name


def png_text(path: Path) -> dict[str, str]:
    """The tEXt/zTXt/iTXt chunks of a PNG file."""
    data = Path(path).read_bytes()
    out: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"tEXt":
            k, _, v = body.partition(b"\0")
            out[k.decode("latin-1")] = v.decode("latin-1")
        elif kind == b"zTXt":
            k, _, v = body.partition(b"\0")
            out[k.decode("latin-1")] = zlib.decompress(v[1:]).decode("latin-1")
        elif kind == b"iTXt":
            k, _, rest = body.partition(b"\0")
            comp, _method, rest = rest[0], rest[1], rest[2:]
            _lang, _, rest = rest.partition(b"\0")
            _tkey, _, text = rest.partition(b"\0")
            out[k.decode("latin-1")] = (zlib.decompress(text) if comp else text).decode("utf-8")
        pos += 12 + length
    return out


def layout_verdict(path: Path) -> list[str]:
    """The problems `save` found in a picture; raises KeyError when it was not written by `save`."""
    text = png_text(path)[LAYOUT_KEY]
    return [] if text == "ok" else text.splitlines()
