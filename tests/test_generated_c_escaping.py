"""Issue 15, fault 5 and its kind: user text that reaches generated C (the command in every banner with
its data paths and globs, channel names, label and config values) is escaped for its context. Hostile
strings are rendered into every generated file, which must compile with -Werror (trigraphs on, as in
strict ISO mode) and give the channel names back byte for byte."""

from __future__ import annotations

import copy
import shutil
import subprocess

import pytest

from tinyae.train.export import write_headers
from tinyae.train.manifest import Manifest

CORE = "firmware/lib/tinyae/src"
NAMES = ["ax */ #error broken /*", 'q"u\\o??/te\n??=', "é/*加速度*/\t\x01"]
COMMAND = (
    "tinyae model --set data.paths=['recordings/*.csv'] --set 'data.file_labels={\"a/*/b.csv\" = "
    '"x*/y"}\' ??/ \\ end\\\n */ #error gone /* \udcff'
)
FLAGS = ["-Wall", "-Wextra", "-Werror", "-Wcomment", "-Wtrigraphs", "-trigraphs", "-Wdouble-promotion"]

PRINT_NAMES = r"""
#include <stdio.h>
#include <string.h>
#include "model_config.h"
#include "model_data.h"
static const char *names[TAE_CHANNELS] = TAE_CHANNEL_NAMES_INIT;
int main(void) {
    for (int c = 0; c < TAE_CHANNELS; c++) {
        for (size_t i = 0; i < strlen(names[c]); i++) printf("%02x", (unsigned char)names[c][i]);
        printf("\n");
    }
    return (int)(TAE_THRESHOLD > 0.0f) - 1 + (TAE_MODEL_DATA_LEN == 0);
}
"""


@pytest.fixture(scope="module")
def hostile_dir(default_model_dir, default_manifest, tmp_path_factory):
    import tinyae.train.compiled

    m = copy.deepcopy(default_manifest)
    m["generator"]["command"] = COMMAND
    m["generator"]["threshold_command"] = COMMAND.replace("model", "threshold")
    m["window"]["channel_names"] = NAMES
    m["normalization"]["method"] = "zscore */ #error x /*"
    m["threshold"]["method"] = "percentile ??/"
    m["frontend"]["feature_names"] = [
        f"{NAMES[i % 3]}@{i}" for i in range(len(m["frontend"]["feature_names"]))
    ]
    out = tmp_path_factory.mktemp("hostile")
    flat = (default_model_dir / "model_int8.tflite").read_bytes()
    write_headers(Manifest.from_dict(m), flat, out)
    tinyae.train.compiled.generate(default_model_dir / "model_int8.tflite", out, banner_command=COMMAND)
    return out


def test_filters_keep_comments_closed_and_strings_exact():
    from tinyae.train.render import c_comment, c_string

    for s in [*NAMES, COMMAND]:
        text = c_comment(s)
        assert "*/" not in text and "/*" not in text and "??" not in text and "\n" not in text
        lit = str(c_string(s))
        assert lit.isascii() and "??" not in lit and "*/" not in lit and "/*" not in lit and "\n" not in lit


@pytest.mark.parametrize("std", ["-std=c99", "-std=c11"])
def test_hostile_strings_compile_and_round_trip_on_the_host(hostile_dir, tmp_path, std):
    src = tmp_path / "names.c"
    src.write_text(PRINT_NAMES)
    exe = tmp_path / "names"
    subprocess.run(["gcc", std, *FLAGS, f"-I{hostile_dir}", str(src), "-o", str(exe)], check=True)
    got = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert got == [n.encode("utf-8").hex() for n in NAMES]
    subprocess.run(
        ["gcc", std, *FLAGS, f"-I{hostile_dir}", f"-I{CORE}", "-c", str(hostile_dir / "model_compiled.c"),
         "-o", str(tmp_path / "compiled.o")],
        check=True,
    )  # fmt: skip
    if shutil.which("g++"):
        subprocess.run(
            ["g++", "-std=c++11", *FLAGS, f"-I{hostile_dir}", "-c", str(hostile_dir / "model_data.cc"),
             "-o", str(tmp_path / "data.o")],
            check=True,
        )  # fmt: skip
    banner = (hostile_dir / "model_config.h").read_text()[:800]
    assert "recordings/ *.csv" in banner and "#error gone / *" in banner  # readable, and inert


@pytest.mark.emulator
def test_hostile_strings_compile_for_the_cortex_m4(hostile_dir, tmp_path):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed (make toolchain)")
    arch = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-std=c99"]
    src = tmp_path / "names.c"
    src.write_text(
        '#include "model_config.h"\n#include "model_data.h"\n'
        "static const char *names[TAE_CHANNELS] = TAE_CHANNEL_NAMES_INIT;\n"
        "int tae_first(void);\nint tae_first(void) { return names[0][0] + TAE_MODEL_DATA_LEN; }\n"
    )
    for f in (src, hostile_dir / "model_compiled.c"):
        subprocess.run(
            ["arm-none-eabi-gcc", *arch, *FLAGS, f"-I{hostile_dir}", f"-I{CORE}", "-c", str(f),
             "-o", str(tmp_path / (f.stem + ".o"))],
            check=True,
        )  # fmt: skip
