"""The precompiled prefix header of the TFLM library builds (mk/tflm/library.mk, mk/tflm/pch-compile.sh)
changes no byte of the libraries it is used for (chirale-cm4, upstream-cm4): representative objects of
each (a framework file, a reference kernel, the CMSIS-NN or the heavier reference kernel, the schema
utils), recompiled without it with the same flags otherwise, are byte-identical to the archive's, which
were compiled with it. It fails if a compiler or a header ever makes the PCH alter code. (All objects
of the three libraries were compared once by hand when the PCH came in: chirale and upstream identical,
two of esp32's in another section order, which is why esp32 is built without it.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from boardlibs import ROOT, build_tflm, library

from tests.conftest import has_arm_toolchain

pytestmark = [pytest.mark.board_libs, pytest.mark.timeout(2400)]  # a first run builds the library

ARM = [pytest.mark.emulator, pytest.mark.skipif(not has_arm_toolchain(), reason="needs arm-none-eabi-gcc")]
# (library, arch, representative C++ sources: framework, reference kernel, CMSIS-NN or the heavier
# reference kernel, schema utils (upstream keeps them under tensorflow/compiler/mlir/lite/))
CASES = [
    pytest.param(
        "chirale",
        "cm4",
        [
            "tensorflow/lite/micro/micro_interpreter.cpp",
            "tensorflow/lite/micro/kernels/logistic.cpp",
            "tensorflow/lite/micro/kernels/cmsis_nn/fully_connected.cpp",
            "tensorflow/lite/schema/schema_utils.cpp",
        ],
        marks=ARM,
        id="chirale-cm4",
    ),
    pytest.param(
        "upstream",
        "cm4",
        [
            "tensorflow/lite/micro/micro_interpreter.cc",
            "tensorflow/lite/micro/kernels/logistic.cc",
            "tensorflow/lite/micro/kernels/fully_connected.cc",
            "tensorflow/compiler/mlir/lite/schema/schema_utils.cc",
        ],
        marks=ARM,
        id="upstream-cm4",
    ),
]
# Not esp32-host: built without the PCH (mk/tflm/library.mk says why).


def archive_members(archive: Path) -> dict[str, list[bytes]]:
    """A GNU ar archive's members by name (a name can be there twice: same file name in two folders)."""
    data = archive.read_bytes()
    assert data.startswith(b"!<arch>\n"), f"{archive} is not an ar archive"
    members: dict[str, list[bytes]] = {}
    long_names = b""
    pos = 8
    while pos < len(data):
        header = data[pos : pos + 60]
        name, size = header[:16].decode().rstrip(), int(header[48:58])
        body = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + size % 2
        if name == "//":
            long_names = body
        elif name.startswith("/") and name[1:].isdigit():
            start = int(name[1:])
            end = long_names.index(b"/\n", start)
            members.setdefault(long_names[start:end].decode(), []).append(body)
        elif name not in ("/", "/SYM64/"):
            members.setdefault(name.rstrip("/"), []).append(body)
    return members


@pytest.mark.parametrize(("lib", "arch", "sources"), CASES)
def test_the_precompiled_header_changes_no_byte(lib: str, arch: str, sources: list[str]) -> None:
    built = build_tflm(lib, arch)
    listed = set((built / "stamps" / "sources.txt").read_text().split())
    assert set(sources) <= listed, f"not compiled into {lib}-{arch}: {sorted(set(sources) - listed)}"
    # Each was compiled with the PCH (else this proves nothing): pch-compile.sh leaves OUT.with-pch.
    without_pch = [s for s in sources if not (built / "obj" / f"{s}.o.with-pch").is_file()]
    assert without_pch == [], f"compiled without the precompiled header in {lib}-{arch}: {without_pch}"

    # The same objects by the same rule with TFLM_PCH=0: the flags but the PCH are library.mk's own. They
    # are kept in build/tflm/ beside the library and, like its objects, recompiled only when their content
    # inputs change (sources, headers, flags, compiler: mk/tflm/content-stamps.sh); the bytes are compared
    # on every run. One make at a time per folder (flock), as for the libraries (mk/tflm.mk).
    out = ROOT / "build" / "tflm" / f"{lib}-{arch}-without-pch"
    proc = subprocess.run(
        ["flock", f"{out}.lock", "make", "--no-print-directory", "-j2", "-f", "mk/tflm/library.mk",
         "TFLM_PCH=0", f"TFLM_LIB={lib}", f"TFLM_ARCH={arch}", f"TFLM_SRC={library(lib)}", f"TFLM_OUT={out}",
         *(f"{out}/obj/{s}.o" for s in sources)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (out / "pch").exists()
    members = archive_members(built / "libtflm.a")
    for source in sources:
        plain = (out / "obj" / f"{source}.o").read_bytes()
        with_pch = members.get(Path(source).name + ".o", [])
        assert plain in with_pch, f"{lib}-{arch}: {source} compiled with the precompiled header differs"
