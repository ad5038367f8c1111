"""Run the Cortex-M4 image on QEMU mps2-an386, its UART0 on a loopback TCP socket.

The host tool opens the board with pyserial as ``socket://127.0.0.1:PORT`` and cannot tell it from a
real serial port. ``tinyae emulate [--elf ...]`` prints that URL and runs until Ctrl-C.

Handshake between the runner and QEMU
-------------------------------------
1. The runner picks a free loopback port (or takes ``port=``) and starts::

       qemu-system-arm -M mps2-an386 -nographic -monitor none -kernel tinyae.elf
         -icount shift=6 -semihosting-config enable=on,target=native
         -chardev socket,id=ser0,host=127.0.0.1,port=PORT,server=on,wait=on,nodelay=on
         -serial chardev:ser0

2. With ``server=on,wait=on`` QEMU listens and does **not** start the guest until a client connects.
   It says so on stderr ("QEMU waiting for connection on: ...tcp:127.0.0.1:PORT,server=on"). The runner
   waits for that line, or for a listening socket on the port owned by QEMU's PID (/proc/net/tcp and
   /proc/PID/fd), **without connecting**: the
   first connection belongs to the user of ``.url`` (the host tool through ``serial_for_url``, or
   ``Emulator.connect()``), so that client receives the boot banner
   (``tinyae: boot target=mps2-an386 ...``) and everything after it. A port taken by someone else
   between picking and binding ends QEMU at once ("Address already in use"); the runner then retries
   with another port.
3. QEMU serves one client at a time. When the client closes, the guest keeps running and its output is
   dropped until the next client connects (the protocol is request/response, so a reconnecting host
   simply sends its handshake again).
4. Storage: QEMU runs in a storage directory (``storage=``; a private temporary one by default, which
   is removed at stop) and the firmware keeps its calibration record there as a file through
   semihosting (firmware/targets/mps2_an386/store.c). QEMU's mps2 "flash" is RAM reloaded on every
   system_reset, so this file is the emulated board's non-volatile memory: it survives a reset, a
   QEMU restart with the same directory (a power cycle) and another image (reflashing). The host CLI
   uses build/emulator/storage (``--emulator-storage``), so successive commands see the same board.
5. With ``qmp=True`` QEMU also serves its QMP control socket on a private Unix socket
   (``-qmp unix:PATH,server=on,wait=off``); ``Emulator.reset()`` sends ``system_reset`` there, so the
   guest really reboots (banner, 0x00, BOOT frame) while the serial connection stays open, as a board
   whose reset button is pressed. tools/faultproxy/proxy.py uses it for its mid-stream reset fault.
6. The guest ends QEMU itself through semihosting ``SYS_EXIT_EXTENDED``: exit code 0 for a normal end,
   90 when the store-fault test image stops inside a record write, 100 + exception number after a
   fault (HardFault 103, MemManage 104, BusFault 105, UsageFault 106),
   the fault line ("FAULT UsageFault pc=0x... lr=0x... cfsr=0x...") going to the UART and to QEMU's stderr.
   Otherwise the runner stops QEMU by its PID: SIGTERM, then SIGKILL, always, even when a test fails.

``-icount shift=6`` makes every instruction last 64 ns of virtual time, so SysTick (25 MHz) counts are
deterministic and ``tae_port_cycles()`` returns exact instruction counts (firmware/targets/mps2_an386/
timer.c explains the arithmetic).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

import serial

from tinyae import buildcache
from tinyae.buildcache import Key
from tinyae.errors import UserError
from tinyae.paths import ROOT

DEFAULT_ELF = ROOT / "build" / "firmware" / "mps2_an386" / "tinyae.elf"
QEMU = "qemu-system-arm"
MACHINE = "mps2-an386"
ICOUNT_SHIFT = 6
BANNER_PREFIX = b"tinyae: boot"
EXIT_OK = 0
EXIT_STORE_FAULT = 90  # TAE_EMU_EXIT_STORE_FAULT: the EMU_STORE_FAULT test image stopped inside a write
EXIT_FAULT_BASE = 100
DEFAULT_STORAGE = ROOT / "build" / "emulator" / "storage"
STORE_FILE = "tinyae-calibration.bin"  # firmware/targets/mps2_an386/store.c
EXCEPTION_NAMES = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault"}
_LISTEN_MARK = "waiting for connection"
_PORT_ATTEMPTS = 4


def describe_exit(code: int | None) -> str:
    """A human sentence for QEMU's exit code under this firmware's conventions."""
    if code is None:
        return "still running"
    if code == EXIT_OK:
        return "exited normally (0)"
    if code == EXIT_STORE_FAULT:
        return f"stopped inside a calibration record write (store-fault test image, exit code {code})"
    if code < 0:
        return f"stopped by signal {-code}"
    if code >= EXIT_FAULT_BASE + 2:
        n = code - EXIT_FAULT_BASE
        name = EXCEPTION_NAMES.get(n, f"IRQ {n - 16}" if n >= 16 else f"exception {n}")
        return f"the firmware faulted ({name}, exit code {code})"
    return f"exited with code {code}"


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (QEMU binds it; a lost race is retried)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_listening(port: int, pid: int) -> bool:
    """True when process `pid` holds a socket listening on 127.0.0.1:port (Linux /proc; else False).

    Checking the owner matters: another program listening on the port must not pass for QEMU.
    """
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
        fds = [os.readlink(p) for p in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return False
    want = f"0100007F:{port:04X}"
    inodes = {f[9] for line in lines if len(f := line.split()) > 9 and f[1] == want and f[3] == "0A"}
    return any(fd == f"socket:[{inode}]" for fd in fds for inode in inodes)


def _kill_if_running(proc: subprocess.Popen[bytes]) -> None:
    """Last resort (garbage collection, interpreter exit): never leave a QEMU behind."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=5.0)


class Emulator:
    """QEMU running one firmware image; a context manager that always stops the process it started.

    >>> with Emulator("build/firmware/mps2_an386/tinyae.elf") as emu:
    ...     ser = emu.connect()            # or: serial.serial_for_url(emu.url)
    ...     print(emu.read_banner(ser))
    """

    def __init__(
        self,
        elf: str | Path = DEFAULT_ELF,
        *,
        port: int | None = None,
        icount_shift: int = ICOUNT_SHIFT,
        timeout: float = 10.0,
        qemu: str = QEMU,
        qmp: bool = False,
        storage: str | Path | None = None,
    ) -> None:
        self.elf = Path(elf)
        self.qmp = qmp
        self._storage_tmp: tempfile.TemporaryDirectory[str] | None = None
        self._storage = Path(storage) if storage is not None else None
        self._qmp_dir: tempfile.TemporaryDirectory[str] | None = None
        self.resets = 0
        self.icount_shift = icount_shift
        self.timeout = timeout
        self.qemu = qemu
        self._fixed_port = port
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr = bytearray()
        self._stdout = bytearray()
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []
        self.boot_seconds: float | None = None  # QEMU start -> socket listening

    # ------------------------------------------------------------------ properties
    @property
    def url(self) -> str:
        if self.port is None:
            raise UserError("the emulator is not running; start it first (use `with Emulator(...)`)")
        return f"socket://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def exit_code(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    @property
    def stderr_text(self) -> str:
        with self._lock:
            return self._stderr.decode(errors="replace")

    @property
    def stdout_text(self) -> str:
        with self._lock:
            return self._stdout.decode(errors="replace")

    def command(self, port: int) -> list[str]:
        """The exact QEMU command line for `port`."""
        return [
            self.qemu,
            "-M",
            MACHINE,
            "-nographic",
            "-monitor",
            "none",
            "-kernel",
            str(self.elf.resolve()),
            "-icount",
            f"shift={self.icount_shift}",
            "-semihosting-config",
            "enable=on,target=native",
            "-chardev",
            f"socket,id=ser0,host=127.0.0.1,port={port},server=on,wait=on,nodelay=on",
            "-serial",
            "chardev:ser0",
            *(["-qmp", f"unix:{self.qmp_path},server=on,wait=off"] if self.qmp else []),
        ]

    @property
    def storage(self) -> Path:
        """The board's non-volatile storage: QEMU's working directory (store.c keeps its file there)."""
        if self._storage is None:
            if self._storage_tmp is None:
                self._storage_tmp = tempfile.TemporaryDirectory(prefix="tinyae-storage-")
            return Path(self._storage_tmp.name)
        return self._storage

    @property
    def record_path(self) -> Path:
        """The calibration record file the firmware writes (it may not exist)."""
        return self.storage / STORE_FILE

    @property
    def qmp_path(self) -> str:
        """The QMP Unix socket (qmp=True only), in a private temporary directory."""
        if self._qmp_dir is None:
            self._qmp_dir = tempfile.TemporaryDirectory(prefix="tinyae-qmp-")
        return str(Path(self._qmp_dir.name) / "qmp.sock")

    def reset(self, timeout: float = 5.0) -> None:
        """Reset the guest like a reset button (QMP ``system_reset``); needs ``Emulator(..., qmp=True)``.

        The firmware reboots from its reset vector: banner line, 0x00, BOOT frame with seq 0.
        """
        self.qmp_execute("system_reset", timeout=timeout)
        self.resets += 1

    def pause(self, timeout: float = 5.0) -> None:
        """Stop the guest's CPU (QMP ``stop``): it executes nothing and takes no UART byte until
        ``resume()``; the serial connection stays open. Needs ``Emulator(..., qmp=True)``."""
        self.qmp_execute("stop", timeout=timeout)

    def resume(self, timeout: float = 5.0) -> None:
        """Run the guest again after ``pause()`` (QMP ``cont``)."""
        self.qmp_execute("cont", timeout=timeout)

    def qmp_execute(self, command: str, timeout: float = 5.0, arguments: dict | None = None) -> Any:
        """Send one QMP command (after the capabilities handshake), with its ``arguments`` if any, and
        return its answer's ``return``: the JSON value QEMU's schema gives the command (a dict, a list
        for ``query-cpus-fast``, the monitor's text for ``human-monitor-command``)."""
        if not self.qmp or self._proc is None or self._proc.poll() is not None:
            raise UserError(
                f"the emulator cannot take the QMP command {command}: start it with Emulator(..., qmp=True) "
                "and keep it running"
            )
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.qmp_path)
            f = s.makefile("rwb")

            def reply() -> dict:
                while True:  # skip asynchronous events ({"event": ...}) until the command's answer
                    line = f.readline()
                    if not line:
                        raise UserError(f"QEMU closed its QMP socket during {command}")
                    msg = json.loads(line)
                    if "return" in msg or "error" in msg:
                        return msg

            json.loads(f.readline())  # greeting {"QMP": ...}
            ans: dict = {}
            for cmd, args in (("qmp_capabilities", None), (command, arguments)):
                f.write(
                    json.dumps({"execute": cmd, **({"arguments": args} if args else {})}).encode() + b"\n"
                )
                f.flush()
                ans = reply()
                if "error" in ans:
                    raise UserError(f"QEMU refused {cmd}: {ans['error'].get('desc', ans['error'])}")
        return ans.get("return", {})

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if shutil.which(self.qemu) is None:
            raise UserError(
                f"'{self.qemu}' was not found; install QEMU with `make toolchain` "
                "(Debian: apt-get install qemu-system-arm)"
            )
        if not self.elf.is_file():
            raise UserError(
                f"the firmware image {self.elf} does not exist; build it with `make firmware-emu`"
            )
        attempts = 1 if self._fixed_port is not None else _PORT_ATTEMPTS
        for attempt in range(attempts):
            port = self._fixed_port if self._fixed_port is not None else free_port()
            if self._launch(port):
                return
            if "Address already in use" not in self.stderr_text or attempt == attempts - 1:
                break
        raise UserError(f"QEMU exited early ({describe_exit(self.exit_code)}): {self._last_stderr_line()}")

    def _launch(self, port: int) -> bool:
        """Start QEMU on `port`; True once it listens, False when it exited first."""
        self._reset_output()
        self.port = port
        t0 = time.monotonic()
        try:
            self.storage.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"cannot use {self.storage} as the emulated board's storage ({exc}); pass another"
            ) from None
        self._proc = subprocess.Popen(
            self.command(port),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.storage,
        )
        weakref.finalize(self, _kill_if_running, self._proc)
        self._readers = [
            threading.Thread(target=self._pump, args=(self._proc.stdout, self._stdout), daemon=True),
            threading.Thread(target=self._pump, args=(self._proc.stderr, self._stderr), daemon=True),
        ]
        for t in self._readers:
            t.start()
        deadline = t0 + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._join_readers()
                return False
            if _LISTEN_MARK in self.stderr_text or _port_listening(port, self._proc.pid):
                self.boot_seconds = time.monotonic() - t0
                return True
            time.sleep(0.01)
        self.stop()
        raise UserError(
            f"QEMU did not open its serial socket on port {port} within {self.timeout:.0f} s; "
            f"check that {self.qemu} works (last stderr line: {self._last_stderr_line()})"
        )

    def _pump(self, stream, sink: bytearray) -> None:  # type: ignore[no-untyped-def]
        for chunk in iter(lambda: stream.read1(4096), b""):
            with self._lock:
                sink.extend(chunk)

    def _join_readers(self) -> None:
        for t in self._readers:
            t.join(timeout=2.0)

    def _reset_output(self) -> None:
        with self._lock:
            self._stderr.clear()
            self._stdout.clear()

    def _last_stderr_line(self) -> str:
        lines = [ln.strip() for ln in self.stderr_text.splitlines() if ln.strip()]
        return lines[-1] if lines else "(no output on stderr)"

    def wait(self, timeout: float) -> int | None:
        """Wait up to `timeout` s for QEMU to end by itself; its exit code, or None if still running."""
        if self._proc is None:
            return None
        try:
            code = self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._join_readers()
        return code

    def stop(self) -> None:
        """Stop the QEMU this object started, by its PID: SIGTERM, then SIGKILL."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)
        self._join_readers()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        if self._qmp_dir is not None:
            self._qmp_dir.cleanup()
            self._qmp_dir = None
        if self._storage_tmp is not None:
            self._storage_tmp.cleanup()
            self._storage_tmp = None

    # ------------------------------------------------------------------ the serial side
    def connect(self, timeout: float = 2.0) -> serial.SerialBase:
        """Open the UART as a pyserial port (the first client gets the banner). Retries until QEMU accepts."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return serial.serial_for_url(self.url, timeout=timeout)
            except serial.SerialException as exc:
                if self.exit_code is not None:
                    raise UserError(
                        f"QEMU exited before the connection ({describe_exit(self.exit_code)}): "
                        f"{self._last_stderr_line()}"
                    ) from exc
                if time.monotonic() > deadline:
                    raise UserError(f"could not connect to {self.url}: {exc}; is the port free?") from exc
                time.sleep(0.05)

    def read_until(self, ser: serial.SerialBase, marker: bytes, timeout: float = 10.0) -> bytes:
        """Bytes from `ser` up to and including the line holding `marker`; stops early when QEMU ends.

        Returns what arrived (possibly without `marker`) if QEMU exits or closes the socket; raises
        UserError on timeout.
        """
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            idx = buf.find(marker)
            if idx >= 0 and b"\n" in buf[idx:]:
                return bytes(buf[: buf.index(b"\n", idx) + 1])
            try:
                # every port pyserial opens has in_waiting; its SerialBase type does not declare it
                chunk = ser.read(max(1, getattr(ser, "in_waiting", 0)))
            except serial.SerialException:  # QEMU closed the socket (it exited)
                return bytes(buf)
            buf.extend(chunk)
            if not chunk and self.exit_code is not None:
                return bytes(buf)
        raise UserError(
            f"no '{marker.decode(errors='replace')}' from the emulator within {timeout:.0f} s "
            f"(got {len(buf)} bytes; QEMU {describe_exit(self.exit_code)})"
        )

    def read_banner(self, ser: serial.SerialBase, timeout: float = 10.0) -> str:
        """The boot banner line ("tinyae: boot target=mps2-an386 ..."), read from the first connection."""
        data = self.read_until(ser, BANNER_PREFIX, timeout)
        idx = data.find(BANNER_PREFIX)
        if idx < 0:
            raise UserError(
                f"the emulator ended without a boot banner ({describe_exit(self.exit_code)}); "
                f"stderr: {self._last_stderr_line()}"
            )
        return data[idx:].decode(errors="replace").strip()


# ---------------------------------------------------------------------- building images
IMAGE_FILES = ("tinyae.elf", "tinyae.bin", "tinyae.map")


class _BuildFailed(Exception):
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        super().__init__(proc.stderr)
        self.proc = proc


def image_key(variables: list[str], model_dir: Path | None, engine: str, tflm_lib: str) -> Key:
    """Everything `make firmware-emu` reads for one variant: its variables, the target's and the core's
    sources, the model's generated C, the make files, the compilers (and, for TFLM, the library)."""
    key = Key("firmware-emu").text(*variables)
    for folder in ("firmware/targets/mps2_an386", "firmware/lib/tinyae/src"):
        key.tree(ROOT / folder)
    for mk in ("Makefile", "mk/firmware-emu.mk", "mk/tflm.mk"):
        key.file(ROOT / mk, mk)
    if model_dir is not None:
        for path in sorted(model_dir.glob("*")):
            if path.suffix in (".c", ".h", ".cc"):
                key.file(path)
    key.tool("arm-none-eabi-gcc").tool("arm-none-eabi-g++")
    if engine == "tflm":
        lib = ROOT / "build" / "tflm" / f"{tflm_lib}-cm4"
        key.file(lib / "libtflm.a").file(lib / "flags.txt")
    return key


def build_image(
    out_dir: Path,
    *,
    app: str = "core",
    fault: int | None = None,
    ballast_ram: int = 0,
    ballast_flash: int = 0,
    model_dir: Path | None = None,
    engine: str = "compiled",
    tflm_lib: str = "chirale",
    calib_at_boot: bool = False,
    store_fault: bool = False,
    sensor_paced: bool = False,
    sensor_stall: int | None = None,
    spin_polls: int | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`make firmware-emu` for one variant into `out_dir` (mk/firmware-emu.mk documents the variables):
    out_dir receives tinyae.elf, tinyae.bin and tinyae.map.

    app: "core" (the real image; needs a model), "stub" (UART echo) or "calib" (instruction-count
    calibration). engine: "compiled" or "tflm" (with tflm_lib "chirale" or "upstream", built from the
    sources mk/tflm.mk finds). calib_at_boot: the image calibrates from its sensor at boot when it has
    no record; store_fault: the test image that stops inside a record write; sensor_paced: the synthetic
    sensor skips slots the loop is late for, like a board's; sensor_stall=K: the loop stalls 2.5 sample
    periods after every K-th sample; spin_polls=N: the main loop's idle polls before it sleeps (main.c's
    TAE_EMU_SPIN_POLLS when None; 0 sleeps as soon as the app is idle). With check=False a failed build
    is returned (tests read its stderr).

    Images are built once per content (tinyae.buildcache: the variables, every source, the model's C,
    the compilers): a second call with the same inputs copies the cached image.
    """
    if shutil.which("make") is None or shutil.which("arm-none-eabi-gcc") is None:
        raise UserError("make or arm-none-eabi-gcc is missing; install the toolchain with `make toolchain`")
    variables = [f"EMU_APP={app}", f"EMU_ENGINE={engine}", f"TFLM_LIB={tflm_lib}"]
    if fault is not None:
        variables.append(f"EMU_FAULT={fault}")
    variables += [f"EMU_BALLAST_RAM={ballast_ram}", f"EMU_BALLAST_FLASH={ballast_flash}"]
    variables += [
        f"EMU_CALIB_AT_BOOT={1 if calib_at_boot else ''}",
        f"EMU_STORE_FAULT={1 if store_fault else ''}",
        f"EMU_SENSOR={'paced' if sensor_paced else ''}",
        f"EMU_SENSOR_STALL={sensor_stall or ''}",
        f"EMU_SPIN_POLLS={'' if spin_polls is None else spin_polls}",
    ]
    model_args: list[str] = []
    if model_dir is not None:
        # -o: take the model directory as it is; never let make retrain it with the default config.
        model_args = [f"MODEL_DIR={model_dir}", "-o", f"{model_dir}/manifest.json"]

    def make(target: str, out: Path) -> subprocess.CompletedProcess[str]:
        cmd = ["make", "--no-print-directory", "-s", target, *variables, f"EMU_OUT={out}", *model_args]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)

    def build(out: Path) -> None:
        proc = make("firmware-emu", out)
        if proc.returncode != 0:
            raise _BuildFailed(proc)
        (out / "build.log").write_text(json.dumps({"stdout": proc.stdout, "stderr": proc.stderr}))

    out_dir = Path(out_dir)
    try:
        if app == "core" and model_dir is None:  # make decides about build/model itself: no cache
            build(out_dir)
            cached = out_dir
        else:
            if engine == "tflm":  # the library is part of the key: bring it up to date first
                lib = make(f"build/tflm/{tflm_lib}-cm4/libtflm.a", out_dir)
                if lib.returncode != 0:
                    raise _BuildFailed(lib)
            key = image_key(variables, model_dir, engine, tflm_lib)
            cached = buildcache.entry("images", key, build, scratch=out_dir)
    except _BuildFailed as failed:
        if check:
            tail = (failed.proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise UserError(f"building the {app} firmware image failed: {tail}") from None
        return failed.proc
    if cached != out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in IMAGE_FILES:
            shutil.copyfile(cached / name, out_dir / name)
    log = json.loads((cached / "build.log").read_text())
    return subprocess.CompletedProcess(["make", "firmware-emu", *variables], 0, log["stdout"], log["stderr"])


# ---------------------------------------------------------------------- CLI
def serve(
    elf: Path, port: int | None = None, icount_shift: int = ICOUNT_SHIFT, storage: Path = DEFAULT_STORAGE
) -> int:
    """Run QEMU, print its socket:// URL and wait for Ctrl-C (or SIGTERM) or for the firmware to exit.

    Ctrl-C and SIGTERM (tinyae.errors.run_cli turns it into Terminated, a KeyboardInterrupt: a background
    job ignores SIGINT) stop QEMU, then end the command with 130 / 143 like every other command."""
    with Emulator(elf, port=port, icount_shift=icount_shift, storage=storage) as emu:
        print(emu.url, flush=True)
        if emu.record_path.is_file():
            print(
                f"the board's storage holds a calibration record ({emu.record_path}, {emu.record_path.stat().st_size} "
                "B): the firmware uses it when it fits this image (`tinyae device info` says; `tinyae device "
                "calibrate --factory` removes it)",
                file=sys.stderr,
                flush=True,
            )
        print(
            f"QEMU {MACHINE} pid {emu.pid}: connect with the host tool (the first client gets the boot "
            "banner); Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        try:
            while emu.wait(0.5) is None:
                pass
        except KeyboardInterrupt:
            print("stopping QEMU", file=sys.stderr)
            raise
        code = emu.exit_code
        print(f"QEMU {describe_exit(code)}", file=sys.stderr)
        return 0 if code == EXIT_OK else 1
