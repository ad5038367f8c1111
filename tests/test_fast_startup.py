"""Starting is cheap: collecting the tests imports no heavy library, and `tinyae --help` (or any one
command) imports only what that command needs.

Heavy libraries (TensorFlow and Keras, matplotlib, Ray, Optuna, SciPy, pandas) cost seconds to import;
a test module that imports one at module level makes every `pytest` run, `make test-fast` included, pay
for it at collection. The check follows module-level imports through the tests' helpers and tinyae's
own modules (imports inside functions are what they should be: paid by the tests that run them).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

from tinyae import cli

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
HEAVY = ("tensorflow", "keras", "matplotlib", "ray", "optuna", "scipy", "pandas", "sklearn")


@cache
def _source(module: str) -> Path | None:
    """The file of a tinyae module or a tests helper (None: a third-party or standard module)."""
    parts = module.split(".")
    if parts[0] == "tinyae" and len(parts) > 1 and parts[1] in ("train", "tools"):
        base, rest = ROOT / parts[1], parts[2:]  # tinyae/train and tinyae/tools are symlinks to these
    elif parts[0] == "tinyae":
        base, rest = ROOT / "tinyae", parts[1:]
    elif parts[0] == "tests":
        base, rest = TESTS, parts[1:]
    elif (TESTS / f"{parts[0]}.py").is_file():
        base, rest = TESTS, parts
    else:
        return None
    path = base.joinpath(*rest)
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package(path: Path) -> list[str]:
    """The package `path` is in, as module name parts (for relative imports)."""
    rel = path.parent.relative_to(ROOT).parts
    if rel and rel[0] in ("train", "tools"):
        return ["tinyae", *rel]
    return list(rel)


@cache
def _module_level_imports(path: Path) -> tuple[str, ...]:
    """Modules imported when `path` is imported: its top-level statements (and `if`/`try` blocks at the
    top level), not function bodies and not `if TYPE_CHECKING:` blocks."""
    out: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                out.extend(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                package = _package(path)[: len(_package(path)) - node.level + 1] if node.level else []
                base = ".".join([*package, *([node.module] if node.module else [])])
                out.append(base)
                out.extend(f"{base}.{a.name}" for a in node.names)
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(ast.parse(path.read_text(), str(path)).body)
    return tuple(out)


def heavy_chain(path: Path) -> list[str]:
    """The import chain from `path` to a heavy library ([] when there is none)."""
    seen: set[Path] = set()
    todo: list[tuple[Path, list[str]]] = [(path, [path.name])]
    while todo:
        here, chain = todo.pop()
        for name in _module_level_imports(here):
            if name.split(".")[0] in HEAVY:
                return [*chain, name]
            # `import a.b.c` runs a/__init__.py and a/b/__init__.py too
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                found = _source(".".join(parts[:i]))
                if found is not None and found not in seen:
                    seen.add(found)
                    todo.append((found, [*chain, ".".join(parts[:i])]))
    return []


def test_collecting_the_tests_imports_no_heavy_library():
    chains = [" -> ".join(c) for p in sorted(TESTS.glob("*.py")) if (c := heavy_chain(p))]
    assert chains == [], "import these inside the tests or fixtures that need them:\n" + "\n".join(chains)


def test_the_check_finds_a_heavy_import(tmp_path):
    # the check itself: a helper that imports the training stage (TensorFlow) at module level is found
    assert heavy_chain(ROOT / "train" / "fit.py")[-1] in ("keras", "tensorflow")
    assert heavy_chain(ROOT / "tinyae" / "errors.py") == []


def _imported_by(argv: list[str]) -> set[str]:
    code = (
        "import sys\nfrom tinyae.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return set(proc.stdout.split())


def test_help_imports_no_command_module():
    loaded = _imported_by(["--help"])
    assert "tinyae.cli" in loaded
    assert not {m for m in loaded if m.startswith(("tinyae.train.", "tinyae.tools."))}
    assert not {m.split(".")[0] for m in loaded} & {"numpy", "jinja2", *HEAVY}


def test_a_command_imports_its_own_group_only():
    loaded = _imported_by(["model", "--help"])
    assert "tinyae.train.cli" in loaded
    assert not {m for m in loaded if m.startswith(("tinyae.tools.", "tinyae.train.compiled"))}


def test_the_help_lines_are_the_ones_the_commands_register():
    full = cli.build_parser()
    registered = {a.dest: a.help for a in full._subparsers._group_actions[0]._choices_actions}
    assert {name: text for name, (_, text) in cli.COMMANDS.items()} == {
        name: registered[name] for name in cli.COMMANDS
    }
    assert list(registered) == [*cli.COMMANDS, *(p[-1] for p in cli.PASSTHROUGH if p[0] != "bench")]
    lazy = cli.build_parser(every=False)
    assert lazy.format_help() == full.format_help()
