"""The tree shows the architecture: imports follow the data flow, and the installed names are the ones
pyproject.toml declares.

Every `from tinyae... import` / `import tinyae...` in the code, at module level or inside a function, is
an edge; an edge from a stage to a later one (or from the pipeline to the tools around it, or from the
shared infrastructure to anything above it) is a back edge and fails here, so no lazy import can hide
a cycle.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"tinyae": "tinyae", "train": "tinyae.train", "tools": "tinyae.tools"}

# The layers, lowest first: a module may import from its own layer's earlier entries and from lower layers.
INFRASTRUCTURE = [
    "tinyae.paths",
    "tinyae.errors",
    "tinyae.f32",  # the float32 check of every number the device stores (config, args, manifest, link)
    "tinyae.atomic",
    "tinyae.args",
    "tinyae.buildcache",
    "tinyae.steps",
    "tinyae.peakrss",
    "tinyae.hostbuild",
    "tinyae.terminal",
]
# tinyae.train in the order README's "How data flows" shows; a prefix covers its sub-modules.
TRAIN_STAGES = [
    "tinyae.train.quiet", "tinyae.train.progress", "tinyae.train.warned", "tinyae.train.render", "tinyae.train.tflite",
    "tinyae.train.int8",
    "tinyae.train.calibration.minimum",  # the config checks calibration.windows with its rule
    "tinyae.train.config",
    "tinyae.train.data",
    "tinyae.train.frontend",
    "tinyae.train.preprocess",
    "tinyae.train.calibration.spec",
    "tinyae.train.manifest",
    "tinyae.train.digests",
    "tinyae.train.levels",
    "tinyae.train.model", "tinyae.train.fit",
    "tinyae.train.boards", "tinyae.train.quantize",
    "tinyae.train.metrics", "tinyae.train.operating", "tinyae.train.calibrate", "tinyae.train.reference",
    "tinyae.train.calibration",
    "tinyae.train.arena",
    "tinyae.train.compiled",
    "tinyae.train.export",
    "tinyae.train.summary", "tinyae.train.findings", "tinyae.train.figures", "tinyae.train.report",
    "tinyae.train.inputs",
    "tinyae.train.pipeline",
    "tinyae.train.importer",
    "tinyae.train.recalibrate",
    "tinyae.train.cli",
]  # fmt: skip
# tinyae.tools: the link first, then what is built on it; search and bench use everything below them.
TOOLS_ROOMS = [
    "tinyae.tools.link",
    "tinyae.tools.simdevice", "tinyae.tools.emulator", "tinyae.tools.faultproxy",
    "tinyae.tools.budget", "tinyae.tools.boards",  # the board build consults the budget (sensor mode's rate)
    "tinyae.tools.commands",
    "tinyae.tools.testing",
    "tinyae.tools.bench",
    "tinyae.tools.search",
]  # fmt: skip
TOP = ["tinyae.cli", "tinyae.__main__"]
ORDER = [*INFRASTRUCTURE, "tinyae.train", *TRAIN_STAGES, "tinyae.tools", *TOOLS_ROOMS, "tinyae", *TOP]


def modules() -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def rank(module: str) -> int:
    """The position of the longest ORDER entry that is this module or a package holding it."""
    best = None
    for i, entry in enumerate(ORDER):
        if (module == entry or module.startswith(entry + ".")) and (
            best is None or len(entry) >= len(ORDER[best])
        ):
            best = i
    assert best is not None, f"{module} is in no layer of tests/test_layout.py; add it where it belongs"
    return best


@cache
def import_statements(path: Path) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of a source file, anywhere in it (parsed once for every test here)."""
    tree = ast.parse(path.read_text(), str(path))
    return [node for node in _statements(tree.body) if isinstance(node, ast.Import | ast.ImportFrom)]


def _statements(body: list) -> Iterator[ast.AST]:
    """Every statement in `body` and in the blocks nested in it (an import is a statement, so the
    expressions, most of a tree, need no visit)."""
    for node in body:
        yield node
        for block in ("body", "orelse", "finalbody", "handlers", "cases"):
            yield from _statements(getattr(node, block, None) or [])


def edges(mods: dict[str, Path]) -> list[tuple[str, str, int]]:
    out = []
    for name, path in mods.items():
        for node in import_statements(path):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tinyae"):
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module
                           for a in node.names]  # fmt: skip
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("tinyae")]
            out += [(name, t, node.lineno) for t in targets]
    return out


def test_every_module_has_a_layer():
    for name in modules():
        rank(name)


def test_imports_follow_the_data_flow():
    mods = modules()
    back = []
    for src, dst, line in edges(mods):
        if dst == "tinyae" or src == dst:
            continue  # the package itself (its version) is read by everything
        same_package = dst.rsplit(".", 1)[0] == src.rsplit(".", 1)[0]
        if rank(dst) > rank(src) and not (same_package and rank(dst) == rank(src)):
            back.append(f"{mods[src].relative_to(ROOT)}:{line}: {src} imports {dst}, a later layer")
    assert not back, "back edges:\n" + "\n".join(back)


def test_no_import_cycles():
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for src, dst, _ in edges(mods):
        if dst in graph and dst != src:
            graph[src].add(dst)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(n) :], n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_installed_packages_are_the_tree():
    """pyproject.toml lists every package folder, under tinyae only: nothing named train or tools is
    installed into site-packages."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(cfg["packages"])
    found = {m for m, p in modules().items() if p.name == "__init__.py"}
    assert declared == found
    assert all(p == "tinyae" or p.startswith("tinyae.") for p in declared)
    # tinyae.train / tinyae.tools are the top-level folders through symlinks in tinyae/ (pyproject.toml
    # says why): a plain path install that static tools follow, no import hook and no package-dir table.
    assert cfg["package-dir"] == {"": "."}
    for folder in ("train", "tools"):
        link = ROOT / "tinyae" / folder
        assert link.is_symlink() and link.readlink() == Path("..", folder), f"{link} -> ../{folder}"


def test_nothing_imports_the_folders_by_their_folder_names():
    """`train` and `tools` are not importable names once installed; code and tests use tinyae.*."""
    found = []
    for folder in ("tinyae", "train", "tools", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in import_statements(path):
                names = (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0
                    else [a.name for a in node.names] if isinstance(node, ast.Import) else []
                )  # fmt: skip
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno}"
                    for n in names
                    if n.split(".")[0] in ("train", "tools")
                ]
    assert found == []
