"""The libFuzzer harness over the protocol decoder and the device application (make fuzz,
make fuzz-coverage): testing-only, never reached from the `tinyae` command.

    python -m tinyae.tools.testing.fuzz --seconds 60     # fuzz (ASan + UBSan)
    python -m tinyae.tools.testing.fuzz --coverage       # replay the corpus through a coverage build
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from tinyae import hostbuild, peakrss
from tinyae.args import positive_int
from tinyae.buildcache import tool_version
from tinyae.errors import UserError, run_cli
from tinyae.tools.link import protocol as p
from tinyae.tools.simdevice.native import ROOT, SRC, TESTS_C, SimDevice, config_dir
from tinyae.tools.simdevice.vectors import CONFIG, VECTORS_PATH

FUZZ_DIR = ROOT / "build" / "fuzz"
# What fuzzing found, kept in the repository and replayed by `make test` (see "the kept corpus" below).
KEPT = ROOT / "tests" / "vectors" / "fuzz_corpus.json"
FUZZ_SOURCES = [
    TESTS_C / "fuzz_protocol.c",
    SRC / "tae_protocol.c",
    SRC / "tae_app.c",
    SRC / "tae_pipeline.c",
    SRC / "tae_calib.c",
    SRC / "tae_digest.c",
    SRC / "tae_frontend.c",
    SRC / "tae_pace.c",
    TESTS_C / "sim_device.c",
    TESTS_C / "sim_engine.c",
]
FUZZ_FLAGS = ["-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
              *hostbuild.WARNING_FLAGS, *hostbuild.FP_FLAGS]  # fmt: skip


def build_fuzzer(compiler: str = "clang-14") -> Path:
    """The libFuzzer + ASan + UBSan executable of firmware/tests/fuzz_protocol.c (cached)."""
    if shutil.which(compiler) is None:
        raise UserError(f"'{compiler}' was not found; install clang and libclang-rt-14-dev (make toolchain)")
    return _built(compiler, FUZZ_FLAGS, "fuzz_protocol", "the fuzzer did not build")


def _built(compiler: str, flags: list[str], stem: str, failure: str) -> Path:
    """FUZZ_SOURCES compiled with `flags` into build/fuzz/STEM-DIGEST, once per content: the digest covers
    the compiler's version, the flags, the sources and every header they may include. Built under a
    temporary name and renamed, so a parallel test never runs a half-written executable."""
    inc = [config_dir(), SRC]
    h = hashlib.sha256(" ".join([tool_version(compiler), *flags]).encode())
    for path in [*FUZZ_SOURCES, *sorted(SRC.glob("*.h")), config_dir() / "model_config.h"]:
        h.update(path.read_bytes())
    FUZZ_DIR.mkdir(parents=True, exist_ok=True)
    exe = FUZZ_DIR / f"{stem}-{h.hexdigest()[:16]}"
    if not exe.exists():
        tmp = exe.with_name(f"{exe.name}.{os.getpid()}.tmp")
        cmd = [compiler, *flags, *(f"-I{d}" for d in inc), *map(str, FUZZ_SOURCES), "-lm", "-o", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise UserError(f"{failure} ({' '.join(cmd)}): {proc.stderr.strip()[-500:]}")
        tmp.replace(exe)
    return exe


def seed_corpus(directory: Path) -> Path:
    """Write every wire stream of the shared vectors as one seed file."""
    directory.mkdir(parents=True, exist_ok=True)
    for v in json.loads(VECTORS_PATH.read_text())["vectors"]:
        (directory / f"seed-{v['name']}").write_bytes(bytes.fromhex(v["wire"]))
    seeds = structured_seeds()
    for name, msgs in seeds.items():
        (directory / f"seed-structured-{name}").write_bytes(_structured(msgs))
    (directory / "seed-structured-engine-fails").write_bytes(_structured(seeds["stream"], 3))
    (directory / "seed-structured-calibrate-engine-fails").write_bytes(_structured(seeds["calibrate"], 2))
    for bit in (SimDevice.STORE_READ_FAILS, SimDevice.STORE_WRITE_FAILS, SimDevice.STORE_ERASE_FAILS,
                SimDevice.STORE_WRITE_TEARS):  # fmt: skip
        for name in ("calibrate", "record"):
            (directory / f"seed-structured-{name}-store-{bit}").write_bytes(_structured(seeds[name], 0, bit))
    return directory


def calibration_samples(n: int, seed: int = 0) -> np.ndarray:
    """Samples [n, C] of the test configuration's normal operation: its training reference mean and
    spread (calib_spec), so a calibration on them is accepted."""
    from tinyae.tools.simdevice.vectors import calib_spec

    spec = calib_spec()
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n, spec.channels)) * np.asarray(spec.ref_std) + np.asarray(spec.ref_mean)
    return x.astype(np.float32)


def valid_record(windows: int = 4) -> bytes:
    """A record the simulated device computed and stored (so valid for the test configuration)."""
    dev = SimDevice()
    dev.store_fail(0)
    dev.store = None
    dev.boot()
    x = calibration_samples(64)
    batches = [
        p.Samples(b, tuple(map(tuple, x[32 * b : 32 * b + 32].tolist())), x.shape[1]) for b in range(2)
    ]
    msgs: list[p.Message] = [p.Calib(int(p.CalibAction.START), windows), *batches]
    for seq, m in enumerate(msgs):
        dev.write(p.encode_frame(m, seq))
    record = dev.store
    dev.store = None
    dev.boot()
    if record is None:
        raise RuntimeError("the simulated device did not store a calibration record for the fuzz seeds")
    return record


def _structured(msgs: list, fail_every: int = 0, store_faults: int = 0) -> bytes:
    """fuzz_protocol.c's structured input: 0xA5, a byte with the engine's fail-every (low 3 bits, 0:
    never) and the storage faults (high 4 bits, SimDevice.STORE_*), then `len u16 | header|body` per
    message."""
    out = bytearray(b"\xa5" + bytes([fail_every | (store_faults << 4)]))
    for seq, m in enumerate(msgs):
        payload = p.encode_payload(m, seq)[: -p.CRC_SIZE]
        out += len(payload).to_bytes(2, "little") + payload
    return bytes(out)


def structured_seeds() -> dict[str, list]:
    """Valid host sessions the fuzzer mutates: windows completing, settings, mode switches, resets."""
    ch = CONFIG["channels"]

    def batch(b: int, n: int = p.MAX_BATCH) -> p.Samples:
        return p.Samples(b, tuple(tuple(0.25 * ((i + c) % 7) for c in range(ch)) for i in range(n)), ch)

    verify, sensor = p.Setting(int(p.Param.VERIFY), 1), p.Setting(int(p.Param.MODE), int(p.Mode.SENSOR))
    normal = calibration_samples(64)

    def normal_batch(b: int) -> p.Samples:
        return p.Samples(b, tuple(map(tuple, normal[32 * b : 32 * b + 32].tolist())), ch)

    def calib(action: p.CalibAction, windows: int = 0, record: bytes = b"") -> p.Calib:
        return p.Calib(int(action), windows, record)

    record = valid_record()
    torn = record[:-1] + bytes([record[-1] ^ 1])

    # edited with the CRC recomputed, to values the record's statistics do not give: the percentile's order
    # statistic moved above the factory threshold (0.5) no score reached, below the lowest the score mean
    # and std allow, and a phase-1 sample count that is not (N - 1) hop + L
    from dataclasses import replace

    from tinyae.train.calibration.record import Record

    genuine = Record.from_bytes(record)
    forged = [calib(p.CalibAction.WRITE, 0, r.to_bytes()) for r in (
        replace(genuine, threshold=0.75), replace(genuine, threshold=0.07), replace(genuine, samples=21))]  # fmt: skip
    return {
        "stream": [p.Hello(), verify, p.Reset(), *(batch(b) for b in range(4))],
        "settings": [p.Setting(int(p.Param.THRESHOLD), 0.5), p.Setting(int(p.Param.THRESHOLD), float("nan")),
                     p.Setting(int(p.Param.VERIFY), 2), p.Setting(int(p.Param.MODE), 7), batch(0, 5)],
        "sensor": [sensor, batch(0), p.Reset(), p.Setting(int(p.Param.MODE), 0), batch(1)],
        "calibrate": [p.Hello(), calib(p.CalibAction.QUERY), calib(p.CalibAction.START, 4), verify,
                      normal_batch(0), normal_batch(1), calib(p.CalibAction.QUERY),
                      p.Setting(int(p.Param.THRESHOLD), float("nan")), batch(2), p.Hello()],
        "calibrate-refused": [calib(p.CalibAction.START, 9), calib(p.CalibAction.START, 1), batch(0),
                              calib(p.CalibAction.START, 3), calib(p.CalibAction.START, 0), batch(0, 12),
                              p.Reset(), batch(0, 12), calib(p.CalibAction.ABORT), calib(p.CalibAction.START, 4),
                              sensor],
        "record": [calib(p.CalibAction.WRITE, 0, record), calib(p.CalibAction.QUERY), p.Hello(), batch(0),
                   calib(p.CalibAction.WRITE, 0, torn), *forged, calib(p.CalibAction.FACTORY),
                   calib(p.CalibAction.QUERY),
                   calib(p.CalibAction.START, 4), calib(p.CalibAction.WRITE, 0, record)],
    }  # fmt: skip


def run_fuzzer(seconds: int, workdir: Path = FUZZ_DIR) -> subprocess.CompletedProcess:
    """Explore for `seconds` from the seeds and the kept corpus (new inputs every run: `make fuzz`, never
    `make test`); a crash leaves its input in workdir/crash-* and a non-zero exit code."""
    exe = build_fuzzer()
    corpus = workdir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    cmd = [str(exe), f"-max_total_time={seconds}", "-max_len=4096", "-print_final_stats=1",
           f"-artifact_prefix={workdir}/", str(corpus), str(seed_corpus(workdir / "seeds")),
           str(kept_corpus(workdir / "kept"))]  # fmt: skip
    return subprocess.run(peakrss.fresh(cmd), capture_output=True, text=True, cwd=workdir)


def replay(workdir: Path) -> subprocess.CompletedProcess:
    """Run every seed and every kept input once (-runs=0): the same inputs on every run, what
    `make test` checks."""
    cmd: list[str | Path] = [
        build_fuzzer(),
        "-runs=0",
        seed_corpus(workdir / "seeds"),
        kept_corpus(workdir / "kept"),
    ]
    return subprocess.run(peakrss.fresh(cmd), capture_output=True, text=True)


# ---------------------------------------------------------------- the kept corpus (KEPT)
# libFuzzer finds inputs at random; what it found is kept in the repository so that `make test` replays
# the same inputs every run. One JSON file, one input per line (base64, named by content), so a diff
# shows what a `make fuzz` added: every input that reached new coverage (libFuzzer's -merge=1) and every
# input that failed (named crash-/leak-/timeout-…, kept even once fixed).


def _load_kept() -> dict[str, str]:
    return json.loads(KEPT.read_text())["inputs"] if KEPT.exists() else {}


def kept_corpus(directory: Path) -> Path:
    """Write every kept input as one file of `directory` (emptied first)."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for name, data in _load_kept().items():
        (directory / name).write_bytes(base64.b64decode(data))
    return directory


def _save_kept(inputs: dict[str, bytes]) -> None:
    lines = ",\n".join(
        f"  {json.dumps(n)}: {json.dumps(base64.b64encode(d).decode())}" for n, d in sorted(inputs.items())
    )
    KEPT.write_text('{"inputs": {\n' + lines + "\n}}\n")


def keep_findings(workdir: Path) -> list[str]:
    """Add to KEPT the inputs of workdir/corpus that reach coverage the kept ones do not (libFuzzer's
    -merge=1) and every failing input libFuzzer left in `workdir`; the names added."""
    kept = {n: base64.b64decode(d) for n, d in _load_kept().items()}
    merged = workdir / "merged"
    kept_dir = kept_corpus(merged)
    before = {q.name for q in kept_dir.iterdir()}
    proc = subprocess.run(
        peakrss.fresh([build_fuzzer(), "-merge=1", kept_dir, seed_corpus(workdir / "seeds"), workdir / "corpus"]),
        capture_output=True, text=True,
    )  # fmt: skip
    seeds = {q.read_bytes() for q in (workdir / "seeds").iterdir()}
    found = [q for q in kept_dir.iterdir() if q.name not in before] if proc.returncode == 0 else []
    found += [q for pat in ("crash-*", "leak-*", "timeout-*") for q in sorted(workdir.glob(pat))]
    added = []
    for q in found:
        data = q.read_bytes()
        if data in seeds:
            continue
        kind = q.name.split("-")[0] if q.name.startswith(("crash-", "leak-", "timeout-")) else "cov"
        name = f"{kind}-{hashlib.sha256(data).hexdigest()[:16]}"
        if name not in kept:
            kept[name] = data
            added.append(name)
    if added:
        _save_kept(kept)
    return added


# ---------------------------------------------------------------- source coverage of the corpus
COVERAGE_FLAGS = ["-g", "-O0", "-fsanitize=fuzzer", "-fprofile-instr-generate", "-fcoverage-mapping",
                  *hostbuild.WARNING_FLAGS, *hostbuild.FP_FLAGS]  # fmt: skip
COVERAGE_FILES = ("tae_protocol.c", "tae_app.c", "tae_calib.c")


def coverage_report(corpus: Path = FUZZ_DIR / "corpus", version: str = "14") -> dict:
    """Replay `corpus` (and the seeds) once through a clang source-coverage build of the fuzz target;
    line/branch/region/function coverage of tae_protocol.c and tae_app.c, from `llvm-cov report`.

    The libFuzzer driver runs each input once with -runs=0; llvm-profdata merges the raw profile.
    """
    tools = {t: f"{t}-{version}" for t in ("clang", "llvm-profdata", "llvm-cov")}
    missing = [v for v in tools.values() if shutil.which(v) is None]
    if missing:
        raise UserError(
            f"{', '.join(missing)} not found; install clang-{version} and llvm-{version} (make toolchain)"
        )
    out = FUZZ_DIR / "coverage"
    out.mkdir(parents=True, exist_ok=True)
    exe = _built(tools["clang"], COVERAGE_FLAGS, "fuzz_protocol_cov", "the coverage build failed")
    seeds = seed_corpus(FUZZ_DIR / "seeds")
    corpus.mkdir(parents=True, exist_ok=True)
    raw = out / "fuzz.profraw"
    raw.unlink(missing_ok=True)
    env = {**os.environ, "LLVM_PROFILE_FILE": str(raw)}
    run = subprocess.run(
        peakrss.fresh([exe, "-runs=0", corpus, seeds]), capture_output=True, text=True, env=env
    )
    if run.returncode != 0 or not raw.exists():
        raise UserError(f"replaying the corpus failed (exit {run.returncode}): {run.stderr.strip()[-500:]}")
    data = out / "fuzz.profdata"
    subprocess.run([tools["llvm-profdata"], "merge", "-sparse", str(raw), "-o", str(data)], check=True)
    files = [str(SRC / f) for f in COVERAGE_FILES]
    rep = subprocess.run(
        [tools["llvm-cov"], "report", str(exe), f"-instr-profile={data}", *files],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    exported = subprocess.run(
        [tools["llvm-cov"], "export", "-summary-only", str(exe), f"-instr-profile={data}", *files],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = {}
    for f in json.loads(exported.stdout)["data"][0]["files"]:
        s = f["summary"]
        summary[Path(f["filename"]).name] = {
            k: {"covered": s[k]["covered"], "count": s[k]["count"], "percent": round(s[k]["percent"], 2)}
            for k in ("lines", "branches", "regions", "functions")
        }
    n_inputs = sum(1 for q in corpus.iterdir() if q.is_file())
    return {"inputs": n_inputs, "files": summary, "text": rep.stdout}


@run_cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fuzz the protocol decoder and the device application.")
    ap.add_argument("--seconds", type=positive_int, default=60, help="fuzzing time (default 60)")
    ap.add_argument(
        "--coverage",
        action="store_true",
        help="no fuzzing: replay the corpus through a source-coverage build",
    )
    args = ap.parse_args(argv)
    if args.coverage:
        cov = coverage_report()
        print(cov["text"])
        for name, s in cov["files"].items():
            print(f"{name}: lines {s['lines']['percent']}%, branches {s['branches']['percent']}%, "
                  f"functions {s['functions']['percent']}% over {cov['inputs']} corpus inputs")  # fmt: skip
        return 0
    proc = run_fuzzer(args.seconds)
    keep = ("Done ", "stat::", "==", "SUMMARY", "runtime error", "INFO: Seed")
    lines = proc.stderr.splitlines()
    done = [line for line in lines if "DONE" in line and "cov:" in line]  # libFuzzer's final cov/ft/corp
    print(
        "\n".join(line for line in lines if line.startswith(keep) or "ERROR" in line)
        + "".join("\n" + d for d in done)
    )
    added = keep_findings(FUZZ_DIR)
    where = KEPT.relative_to(ROOT)
    print(
        f"{len(added)} new inputs kept in {where}"
        + (": commit it, so `make test` replays them" if added else "")
    )
    if proc.returncode != 0:
        print(
            f"fuzzer found a failure (exit {proc.returncode}); its input is kept in {where} as "
            f"{', '.join(n for n in added if not n.startswith('cov-')) or 'an input already kept'}: fix the "
            "fault, then commit the file",
            file=sys.stderr,
        )
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
