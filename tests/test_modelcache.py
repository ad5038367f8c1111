"""The converted models' cache key (tests/modelcache.py): the code a recipe can import, all of it and no
more, so an edit to that code converts again and an edit elsewhere does not import TensorFlow."""

from __future__ import annotations

from pathlib import Path

import modelcache

from tinyae.paths import ROOT


def _recipe(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "recipe.py"
    path.write_text(body)
    return path


def _shown(files: list[Path] | None) -> set[str]:
    assert files is not None
    return {str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else f.name for f in files}


def test_the_closure_follows_imports_in_functions_and_their_packages(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, "def convert():\n    from tinyae.train.quantize import convert\n")
    files = _shown(modelcache.import_closure(recipe))
    # the converter, what it imports (the .tflite checks), the packages run on the way, the recipe
    assert {"train/quantize.py", "train/tflite.py", "train/__init__.py", "tinyae/__init__.py"} <= files
    assert "recipe.py" in files
    # code the conversion cannot reach is no part of the key
    assert "train/pipeline.py" not in files and "train/data/csv_source.py" not in files


def test_relative_imports_and_helpers_beside_the_tests_are_followed(tmp_path: Path) -> None:
    files = _shown(modelcache.import_closure(ROOT / "tools" / "budget" / "cli.py"))
    assert {"tools/budget/config.py", "tools/budget/sampling.py"} <= files
    recipe = _recipe(tmp_path, "import random_models\n")
    assert "tests/random_models.py" in _shown(modelcache.import_closure(recipe))


def test_a_run_time_import_keys_on_all_of_the_code(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, "import importlib\n\ndef convert(name):\n    importlib.import_module(name)\n")
    assert modelcache.import_closure(recipe) is None
    digest = modelcache._recipe_code_digest.__wrapped__  # uncached: the files change below
    assert digest(recipe) != digest(_recipe(tmp_path, recipe.read_text() + "# edited\n"))


def test_an_edit_inside_the_closure_changes_the_key_and_one_outside_does_not(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("SCALE = 1\n")
    (tmp_path / "unrelated.py").write_text("X = 1\n")
    recipe = _recipe(tmp_path, "from . import helper\n")
    digest = modelcache._recipe_code_digest.__wrapped__
    before = digest(recipe)
    (tmp_path / "unrelated.py").write_text("X = 2\n")
    assert digest(recipe) == before
    (tmp_path / "helper.py").write_text("SCALE = 2\n")
    assert digest(recipe) != before


def test_a_tree_key_is_the_sources_not_their_bytecode(tmp_path: Path) -> None:
    """Key.tree (the trained models' code key hashes train/ with it) leaves __pycache__ out: a .pyc holds
    its source's modification time, so a fresh checkout of the same code would train again."""
    from tinyae.buildcache import Key

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("X = 1\n")
    before = Key("t").tree(tmp_path).digest
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\x00mtime")
    assert Key("t").tree(tmp_path).digest == before
    (tmp_path / "pkg" / "mod.py").write_text("X = 2\n")
    assert Key("t").tree(tmp_path).digest != before
