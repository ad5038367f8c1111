"""The budget gate on small ARM images linked here: figures equal arm-none-eabi-size and nm, overruns fail
with the expected sentence, the baseline diff, the JSON document, the ESP32 section map and --env."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tinyae.cli import main as tinyae
from tinyae.tools.budget import check, load_budgets, measure_elf

pytestmark = pytest.mark.emulator

DATA = Path(__file__).parent / "data" / "budget"
CC = [
    "arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-Os",
    "-ffunction-sections", "-fdata-sections", "-nostartfiles", "-Wl,--gc-sections",
]  # fmt: skip

# Explicit budgets so the expected figures below do not follow edits of the repository's budgets.toml.
BUDGETS = """
schema = 1
[engines.compiled]
code_flash = 4096
ram = 64
[engines.tflm]
code_flash = 28000
ram = 1024
[targets.nano33ble]
memory_map = "cortex-m"
pio_boards = ["nano33ble"]
flash_capacity = 983_040
ram_capacity = 262_144
[targets.nano33ble.budget]
flash = "100%"
ram = "75%"
model = "25%"
engine = 65_536
arena = 8_192
stack_headroom = 16_384
[targets.esp32dev]
memory_map = "esp32"
flash_capacity = 1_310_720
ram_capacity = 124_580
[targets.esp32dev.budget]
flash = "90%"
ram = 20_000
"""


def _need_toolchain() -> None:
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("arm-none-eabi-size") is None:
        pytest.skip("arm-none-eabi-gcc not installed (make toolchain)")


def build(out: Path, *scripts: str, model_bytes: int = 20_000, arena_bytes: int = 4096) -> Path:
    _need_toolchain()
    cmd = [
        *CC,
        f"-DMODEL_BYTES={model_bytes}",
        f"-DARENA_BYTES={arena_bytes}",
        "-o",
        str(out),
        str(DATA / "app.c"),
    ]
    for s in scripts:
        cmd += ["-T", str(DATA / s)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


def size_berkeley(elf: Path) -> dict[str, int]:
    out = subprocess.run(
        ["arm-none-eabi-size", "-B", str(elf)], check=True, capture_output=True, text=True
    ).stdout
    text, data, bss = (int(x) for x in out.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def nm_sizes(elf: Path) -> dict[str, int]:
    out = subprocess.run(
        ["arm-none-eabi-nm", "-S", str(elf)], check=True, capture_output=True, text=True
    ).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
        elif len(parts) == 3 and parts[1] in "aA":
            sizes[parts[2]] = int(parts[0], 16)  # absolute symbols: the value
    return sizes


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("budget")
    (d / "budgets.toml").write_text(BUDGETS, encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def nano_elf(workdir: Path) -> Path:
    return build(workdir / "nano.elf", "memory_nano33ble.ld", "sections.ld")


def _budgets(workdir: Path):  # type: ignore[no-untyped-def]
    return load_budgets(workdir / "budgets.toml")


def test_figures_equal_arm_none_eabi_size_and_nm(workdir: Path, nano_elf: Path) -> None:
    m = measure_elf(nano_elf, "nano33ble", _budgets(workdir))
    size = size_berkeley(nano_elf)
    nm = nm_sizes(nano_elf)
    assert m.berkeley == size
    assert m.flash == size["text"] + size["data"]
    assert m.ram == size["data"] + size["bss"]  # the .stack section is part of bss
    assert m.stack_reserved == nm["__stack_size"] and m.stack_source == ".stack section"
    assert m.ram_static == size["data"] + size["bss"] - nm["__stack_size"]
    assert m.stack_headroom == 262_144 - m.ram
    assert m.parts["model"] == nm["tae_model_weights"] + nm["tae_model_bias"] == 20_000 + 256
    assert m.parts["arena"] == nm["tae_arena"] == 4096
    groups = {r.name: r.group for r in m.symbols}
    assert groups["tae_model_weights"] == "model" and groups["tae_compiled_invoke"] == "engine"
    assert groups["memcpy"] == "framework" and groups["__udivmoddi4"] == "framework"
    assert groups["app_table"] == "other"
    assert m.parts["engine"] == sum(r.flash for r in m.symbols if r.group in ("engine", "tflm"))
    # groups + unattributed add up to the totals
    assert sum(g["flash"] for g in m.groups.values()) == m.flash
    assert sum(g["ram"] for g in m.groups.values()) == m.ram_static
    assert m.engine == "compiled"
    assert check(m, budgets=_budgets(workdir)) == []


def test_stack_from_the_linker_symbol(workdir: Path) -> None:
    elf = build(workdir / "stacksym.elf", "memory_nano33ble.ld", "sections_stack_symbol.ld")
    m = measure_elf(elf, "nano33ble", _budgets(workdir))
    size = size_berkeley(elf)
    assert (
        m.stack_source == "__stack_size symbol"
        and m.stack_reserved == nm_sizes(elf)["__stack_size"] == 0x1800
    )
    assert m.ram_static == size["data"] + size["bss"]
    assert m.ram == m.ram_static + 0x1800


def test_model_part_overrun_fails_with_its_sentence(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elf = build(workdir / "bigmodel.elf", "memory_roomy.ld", "sections.ld", model_bytes=300_000)
    rc = tinyae(
        ["budget", "check", str(elf), "--target", "nano33ble", "--budgets", str(workdir / "budgets.toml")]
    )
    out, err = capsys.readouterr()
    model = nm_sizes(elf)["tae_model_weights"] + nm_sizes(elf)["tae_model_bias"]
    limit = 983_040 // 4
    assert rc == 1
    assert err.splitlines() == [
        f"error: model weights budget of nano33ble exceeded by {model - limit:,} B "
        f"(used {model:,} B of {limit:,} B)"
    ]
    assert "OVER" in out and "tae_model_weights" in out


def test_flash_overrun_names_the_budget_and_the_bytes(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elf = build(
        workdir / "huge.elf", "memory_roomy.ld", "sections.ld", model_bytes=990_000, arena_bytes=300_000
    )
    rc = tinyae(
        ["budget", "check", str(elf), "--target", "nano33ble", "--budgets", str(workdir / "budgets.toml")]
    )
    err = capsys.readouterr().err.splitlines()
    size = size_berkeley(elf)
    flash, ram = size["text"] + size["data"], size["data"] + size["bss"]
    assert rc == 1
    assert (
        f"error: flash budget of nano33ble exceeded by {flash - 983_040:,} B (used {flash:,} B of 983,040 B)"
        in err
    )
    assert (
        f"error: RAM budget of nano33ble exceeded by {ram - 196_608:,} B (used {ram:,} B of 196,608 B)" in err
    )
    free = 262_144 - ram
    assert f"error: stack headroom budget of nano33ble missed by {16_384 - free:,} B " in "\n".join(err) + " "
    assert any(line.startswith("error: arena/scratch budget of nano33ble exceeded by ") for line in err)


def _check_schema(doc: dict) -> None:
    assert doc["schema"] == 1 and doc["tool"] == "tinyae-budget" and doc["source"] in ("elf", "estimate")
    assert isinstance(doc["target"], str) and isinstance(doc["input"], str)
    assert set(doc["capacity"]) == {"flash", "ram"}
    for key, row in doc["budgets"].items():
        assert key in {"flash", "ram", "model", "engine", "arena", "stack_headroom"}
        assert set(row) == {"used", "budget", "headroom", "percent", "kind", "region", "ok"}
        assert (
            isinstance(row["used"], int)
            and row["kind"] in ("max", "min")
            and row["region"] in ("flash", "ram")
        )
        if row["budget"] is not None:
            sign = 1 if row["kind"] == "max" else -1
            assert row["headroom"] == sign * (row["budget"] - row["used"])
            assert row["ok"] == (row["headroom"] >= 0)
    assert set(doc["ram"]) == {"static", "stack_reserved", "stack_source", "heap_reserved", "total"}
    assert (
        doc["ram"]["total"]
        == doc["ram"]["static"] + doc["ram"]["stack_reserved"] + doc["ram"]["heap_reserved"]
    )
    assert isinstance(doc["violations"], list) and doc["ok"] == (not doc["violations"])
    for v in doc["violations"]:
        assert set(v) == {"budget", "message", "excess"} and v["excess"] > 0
    if doc["source"] == "elf":
        assert set(doc["sizes"]) == {"text", "data", "bss"}
        assert set(doc["groups"]) == {"model", "engine", "tflm", "framework", "other", "unattributed"}
        for s in doc["symbols"]:
            assert set(s) == {"name", "demangled", "size", "flash", "ram", "group", "section", "file"}


def test_json_document_and_baseline_diff(
    workdir: Path, nano_elf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base_json = workdir / "base.json"
    budgets = str(workdir / "budgets.toml")
    assert (
        tinyae(
            [
                "budget",
                "check",
                str(nano_elf),
                "--target",
                "nano33ble",
                "--budgets",
                budgets,
                "--json",
                str(base_json),
            ]
        )
        == 0
    )
    base = json.loads(base_json.read_text())
    _check_schema(base)
    assert base["budgets"]["flash"]["used"] == sum(size_berkeley(nano_elf)[k] for k in ("text", "data"))
    assert base["budgets"]["model"]["percent"] == round(100 * 20_256 / (983_040 // 4), 1)

    grown = build(workdir / "grown.elf", "memory_nano33ble.ld", "sections.ld", model_bytes=24_000)
    capsys.readouterr()
    new_json = workdir / "new.json"
    rc = tinyae(["budget", "check", str(grown), "--target", "nano33ble", "--budgets", budgets,
                 "--baseline", str(base_json), "--json", str(new_json)])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    new = json.loads(new_json.read_text())
    _check_schema(new)
    assert new["baseline"]["budgets"]["model"] == 4000
    assert (
        new["baseline"]["budgets"]["flash"]
        == new["budgets"]["flash"]["used"] - base["budgets"]["flash"]["used"]
    )
    assert new["baseline"]["groups"]["model"] == {"flash": 4000, "ram": 0}
    top = new["baseline"]["symbols"][0]
    assert top == {
        "name": "tae_model_weights",
        "before": 20_000,
        "after": 24_000,
        "delta": 4000,
        "status": "changed",
    }
    assert "Δ B" in out and "+4,000" in out and "than the baseline" in out


def test_baseline_must_be_a_budget_document(
    workdir: Path, nano_elf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = workdir / "bad.json"
    bad.write_text('{"hello": 1}')
    budgets = str(workdir / "budgets.toml")
    rc = tinyae(
        [
            "budget",
            "check",
            str(nano_elf),
            "--target",
            "nano33ble",
            "--budgets",
            budgets,
            "--baseline",
            str(bad),
        ]
    )
    assert rc == 2 and "is not a tinyae-budget schema 1 document" in capsys.readouterr().err


def test_esp32_sections_map_to_flash_dram_and_iram(workdir: Path) -> None:
    elf = build(workdir / "esp.elf", "esp32_like.ld")
    m = measure_elf(elf, "esp32dev", _budgets(workdir))
    sec = {}
    out = subprocess.run(
        ["arm-none-eabi-size", "-A", str(elf)], check=True, capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith("."):
            sec[parts[0]] = int(parts[1])
    loaded = [".iram0.vectors", ".iram0.text", ".dram0.data", ".flash.rodata", ".flash.text", ".ARM.exidx"]
    assert m.flash == sum(sec[s] for s in loaded)
    assert m.ram_static == sec[".dram0.data"] + sec[".dram0.bss"]
    assert m.other_regions == {"iram": sec[".iram0.vectors"] + sec[".iram0.text"]}
    assert m.stack_reserved == 0 and "heap" in (m.stack_source or "")
    assert m.parts["model"] == 20_256
    assert m.stack_headroom == 124_580 - m.ram_static


def test_env_reads_the_platformio_build(
    workdir: Path,
    nano_elf: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "platformio.ini").write_text("[env:nano_tflm]\nboard = nano33ble\n")
    build_dir = tmp_path / ".pio" / "build" / "nano_tflm"
    build_dir.mkdir(parents=True)
    shutil.copy(nano_elf, build_dir / "firmware.elf")
    monkeypatch.chdir(tmp_path)
    rc = tinyae(
        [
            "budget",
            "check",
            "--env",
            "nano_tflm",
            "--budgets",
            str(workdir / "budgets.toml"),
            "--json",
            "out.json",
        ]
    )
    assert rc == 0
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["target"] == "nano33ble" and doc["input"].endswith("firmware.elf")
    assert "nano33ble image" in capsys.readouterr().out


def test_not_an_elf(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = workdir / "junk.elf"
    junk.write_bytes(b"not an elf at all")
    assert (
        tinyae(
            [
                "budget",
                "check",
                str(junk),
                "--target",
                "nano33ble",
                "--budgets",
                str(workdir / "budgets.toml"),
            ]
        )
        == 2
    )
    assert "is not a readable ELF file" in capsys.readouterr().err
