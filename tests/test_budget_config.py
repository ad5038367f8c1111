"""budgets.toml parsing: sizes, percentages, unknown targets and keys, the repository's own file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tinyae.cli import main as tinyae
from tinyae.errors import UserError
from tinyae.tools.budget.cli import target_for_env
from tinyae.tools.budget.config import REPO_ROOT, load_budgets, parse_budgets, parse_size

MINIMAL = """
schema = 1
[engines.compiled]
code_flash = 1000
ram = 10
[targets.boardx]
memory_map = "cortex-m"
flash_capacity = 100_000
ram_capacity = 20_000
[targets.boardx.budget]
flash = "50%"
ram = "4 KiB"
model = 12345
stack_headroom = "10%"
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "budgets.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_sizes_resolve_against_the_right_capacity(tmp_path: Path) -> None:
    b = load_budgets(_write(tmp_path, MINIMAL))
    t = b.target("boardx")
    assert t.budgets == {"flash": 50_000, "ram": 4096, "model": 12345, "stack_headroom": 2000}
    assert b.engine("compiled").code_flash == 1000


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), (1234, 1234), ("25%", 250), ("12.5%", 125), ("2 KiB", 2048), ("1M", 1 << 20), ("7 B", 7)],
)
def test_parse_size(value: object, expected: int) -> None:
    assert parse_size(value, 1000, "x") == expected


@pytest.mark.parametrize("value", ["lots", "150%", -1, True, 1.5, "12 parsecs"])
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(UserError, match="x"):
        parse_size(value, 1000, "x")


def test_unknown_budget_key_names_it_and_the_known_ones(tmp_path: Path) -> None:
    p = _write(tmp_path, MINIMAL + 'modle = "10%"\n')
    with pytest.raises(UserError) as exc:
        load_budgets(p)
    msg = str(exc.value)
    assert "'modle'" in msg and "[targets.boardx.budget]" in msg
    for known in ("arena", "engine", "flash", "model", "ram", "stack_headroom"):
        assert known in msg


def test_unknown_target_key_and_top_level_key(tmp_path: Path) -> None:
    text = MINIMAL.replace("ram_capacity = 20_000", "ram_capacity = 20_000\nram_capacty = 1")
    with pytest.raises(UserError, match=r"unknown key 'ram_capacty' in \[targets.boardx\].*ram_capacity"):
        load_budgets(_write(tmp_path, text))
    with pytest.raises(UserError, match=r"unknown key 'target' in the top level"):
        load_budgets(_write(tmp_path, MINIMAL + "[target.y]\nflash_capacity = 1\n"))


def test_unknown_target_names_the_known_ones(tmp_path: Path) -> None:
    b = load_budgets(_write(tmp_path, MINIMAL))
    with pytest.raises(UserError, match=r"unknown target 'nano33' .*known .*: boardx"):
        b.target("nano33")


def test_unknown_target_from_the_cli_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _write(tmp_path, MINIMAL)
    rc = tinyae(["budget", "check", str(tmp_path / "x.elf"), "--target", "nope", "--budgets", str(p)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: unknown target 'nope'") and "boardx" in err and err.count("\n") == 1


def test_unknown_memory_map(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"unknown memory_map 'riscv'.*cortex-m, esp32"):
        load_budgets(_write(tmp_path, MINIMAL.replace('"cortex-m"', '"riscv"')))


def test_repository_budgets_declare_the_three_targets() -> None:
    b = load_budgets(REPO_ROOT / "budgets.toml")
    assert set(b.targets) >= {"nano33ble", "esp32dev", "mps2_an386"}
    nano, esp, emu = b.targets["nano33ble"], b.targets["esp32dev"], b.targets["mps2_an386"]
    assert (nano.flash_capacity, nano.ram_capacity) == (983_040, 262_144)
    assert (emu.flash_capacity, emu.ram_capacity) == (nano.flash_capacity, nano.ram_capacity)
    assert esp.flash_capacity == 1_310_720
    assert esp.ram_capacity == 0x2C200 - 0xDB5C  # dram0_0_seg of the ESP32 Arduino core
    assert esp.memory_map.name == "esp32" and nano.memory_map.name == "cortex-m"
    for t in (nano, esp, emu):
        assert set(t.budgets) == {"flash", "ram", "model", "engine", "arena", "stack_headroom"}
        assert t.budgets["flash"] <= t.flash_capacity and t.budgets["ram"] <= t.ram_capacity
    assert set(b.engines) == {"tflm", "compiled"}


def test_target_for_env_reads_platformio_board(tmp_path: Path) -> None:
    b = parse_budgets(
        tomllib.loads(MINIMAL.replace("[targets.boardx]", '[targets.boardx]\npio_boards = ["bx"]')),
        tmp_path / "b.toml",
    )
    (tmp_path / "platformio.ini").write_text("[env:fast_tflm]\nboard = bx\n[env:other]\nboard = zz\n")
    assert target_for_env("fast_tflm", b, tmp_path) == "boardx"
    assert target_for_env("boardx_compiled", b, tmp_path) == "boardx"  # name prefix when no board matches
    with pytest.raises(UserError, match="pass --target"):
        target_for_env("other", b, tmp_path)


def test_missing_env_build_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _write(tmp_path, MINIMAL)
    monkeypatch.chdir(tmp_path)
    assert tinyae(["budget", "check", "--env", "boardx_tflm", "--budgets", str(p)]) == 2
    err = capsys.readouterr().err
    assert "build it first with `make build BOARD=boardx_tflm`" in err
    assert str(Path(".pio") / "build" / "boardx_tflm" / "firmware.elf") in err
