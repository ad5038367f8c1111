"""A fault-injecting TCP proxy on loopback, between the host tool and the emulated board's UART socket.

    with Emulator(elf, qmp=True) as emu, FaultProxy(emu.port, [Fault("flip", "d2h", msg="result:20")],
                                                   reset=emu.reset) as proxy:
        main(["verify", "--port", proxy.url, ...])
        proxy.log      # every frame seen in each direction, with the fault applied to it

Faults are deterministic: each fires once, at an exact place of one direction's byte stream
(``h2d`` host->device, ``d2h`` device->host), chosen by one trigger:

- ``at=N``      the stream's byte offset N (0-based, counted on the bytes received from the source);
- ``frame=K``   the K-th non-empty frame (bytes up to a 0x00 delimiter; the boot banner counts as one);
- ``msg=NAME``  the first frame that decodes as NAME: ``result:W`` (window_seq W), ``samples:B``
                (batch_seq B), ``ack:B`` (ACK of SAMPLES batch B), ``hello``, ``info``, ``boot``,
                ``set``, ``reset``, ``error``, ``telemetry:S`` (first_sample S).

and ``pos`` (the byte within that frame, counted on its wire bytes including the delimiter;
default: the middle, -1 = the delimiter itself). Kinds:

====================  ======================================================================
``flip``              flip bit ``bit`` (default 0) of the byte at pos
``drop``              drop ``count`` bytes (default 1) from pos
``dup``               send ``count`` bytes at pos twice
``garbage``           insert ``count`` seeded random bytes (default 64, zeros included) at pos
                      (default 0: just before the frame)
``cut``               forward the bytes before pos, then close both connections
``reset``             forward the bytes before pos (default 0), swallow the rest of the frame and
                      reset the device (the ``reset`` callable, e.g. ``Emulator.reset``: a real
                      QMP ``system_reset``, the firmware reboots)
====================  ======================================================================

Frames are forwarded when their delimiter arrives (a partial frame idle for 0.2 s is forwarded as
it is), so a fault can pick a whole frame by content. CLI (prints the proxy's URL, runs until Ctrl-C)::

    python -m tinyae.tools.faultproxy.proxy --upstream 127.0.0.1:PORT --fault flip@d2h,msg=result:20 \
        --fault drop@h2d,msg=samples:3,pos=-1 [--listen PORT] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tinyae.args import non_negative_int
from tinyae.errors import UserError, run_cli, taken
from tinyae.tools.link import protocol as p

KINDS = ("flip", "drop", "dup", "garbage", "cut", "reset")
DIRECTIONS = ("h2d", "d2h")
IDLE_FLUSH_S = 0.2
CHUNK = 65536


@dataclass
class Fault:
    kind: str
    direction: str
    at: int | None = None
    frame: int | None = None
    msg: str | None = None
    pos: int | None = None
    count: int | None = None
    bit: int = 0
    fired: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"unknown fault kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.direction not in DIRECTIONS:
            raise UserError(f"unknown direction {self.direction!r}; use h2d (host->device) or d2h")
        if sum(x is not None for x in (self.at, self.frame, self.msg)) != 1:
            raise UserError(
                f"fault {self.kind}@{self.direction} needs exactly one trigger: at=, frame= or msg="
            )

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """``KIND@DIR,key=value,...``, e.g. ``flip@d2h,msg=result:20,bit=3``."""
        head, _, rest = spec.partition(",")
        kind, _, direction = head.partition("@")
        kw: dict = {}
        for item in filter(None, rest.split(",")):
            key, _, value = item.partition("=")
            if key == "msg":
                kw[key] = value
            elif key in ("at", "frame", "pos", "count", "bit"):
                try:
                    kw[key] = int(value)
                except ValueError:
                    raise UserError(f"fault {spec!r}: {key} must be an integer, got {value!r}") from None
            else:
                raise UserError(f"fault {spec!r}: unknown key {key!r} (at, frame, msg, pos, count, bit)")
        return cls(kind, direction, **kw)


def label(frame: bytes) -> str | None:
    """The ``msg=`` name of one wire frame (with or without its delimiter), None if it does not decode."""
    try:
        m = p.decode_frame(frame).msg
    except (p.ProtocolError, ValueError):
        return None
    if isinstance(m, p.Result):
        return f"result:{m.window_seq}"
    if isinstance(m, p.Telemetry):
        return f"telemetry:{m.first_sample}"
    if isinstance(m, p.Samples):
        return f"samples:{m.batch_seq}"
    if isinstance(m, p.Ack):
        return f"ack:{m.batch_seq}" if m.ref_type == p.MsgType.SAMPLES else "ack"
    if isinstance(m, p.ErrorReply):
        return f"error:{m.code_name}"
    return {p.Hello: "hello", p.Boot: "boot", p.Info: "info", p.Setting: "set", p.Reset: "reset"}.get(
        type(m), type(m).__name__.lower()
    )


@dataclass
class LogEntry:
    direction: str
    frame: int  # index of the frame in its direction (-1: an idle partial flush)
    offset: int  # stream offset of its first byte
    size: int
    label: str | None
    fault: str | None = None


class _Direction:
    """One direction's frame splitter and fault applier."""

    def __init__(self, name: str, faults: list[Fault], rng: random.Random) -> None:
        self.name = name
        self.faults = [f for f in faults if f.direction == name]
        self.rng = rng
        self.offset = 0  # stream offset of cur[0]
        self.frames = 0
        self.cur = bytearray()

    def _match(self, f: Fault, start: int, size: int, lab: str | None) -> bool:
        if f.fired:
            return False
        if f.at is not None:
            return start <= f.at < start + size
        if f.frame is not None:
            return f.frame == self.frames
        return lab == f.msg

    def piece(self, data: bytes, whole: bool) -> tuple[bytes, list[LogEntry], str | None]:
        """Apply this direction's faults to one frame; (bytes to forward, log, 'cut'/'reset'/None)."""
        start, size = self.offset, len(data)
        self.offset += size
        lab = label(data) if whole else None
        out = bytearray(data)
        action = None
        applied = []
        for f in self.faults:
            if not self._match(f, start, size, lab):
                continue
            f.fired = True
            if f.at is not None:
                pos = f.at - start
            elif f.pos is not None:
                pos = f.pos if f.pos >= 0 else len(out) + f.pos
            else:
                pos = 0 if f.kind in ("garbage", "reset") else len(out) // 2
            pos = max(0, min(pos, len(out)))
            count = f.count if f.count is not None else (64 if f.kind == "garbage" else 1)
            if f.kind == "flip" and pos < len(out):
                out[pos] ^= 1 << (f.bit & 7)
            elif f.kind == "drop":
                del out[pos : pos + count]
            elif f.kind == "dup":
                out[pos:pos] = out[pos : pos + count]
            elif f.kind == "garbage":
                out[pos:pos] = bytes(self.rng.randrange(256) for _ in range(count))
            else:  # cut, reset: nothing of the frame from pos on goes through
                del out[pos:]
                action = f.kind
            applied.append(f"{f.kind}@{pos}")
        entry = LogEntry(self.name, self.frames if whole else -1, start, size, lab, ",".join(applied) or None)
        if whole and data != b"\x00":
            self.frames += 1
        return bytes(out), [entry], action

    def feed(self, data: bytes) -> list[tuple[bytes, list[LogEntry], str | None]]:
        pieces = []
        self.cur += data
        while (i := self.cur.find(0)) >= 0:
            frame = bytes(self.cur[: i + 1])
            del self.cur[: i + 1]
            pieces.append(self.piece(frame, True))
            if pieces[-1][2] is not None:
                break
        return pieces

    def flush_partial(self) -> tuple[bytes, list[LogEntry], str | None] | None:
        if not self.cur:
            return None
        data = bytes(self.cur)
        self.cur.clear()
        return self.piece(data, False)


class FaultProxy:
    """Listens on 127.0.0.1 (``url``), serves one client at a time, relays to the upstream port."""

    def __init__(
        self,
        upstream_port: int,
        faults: Sequence[Fault] = (),
        *,
        reset: Callable[[], None] | None = None,
        seed: int = 0,
        listen_port: int = 0,
        upstream_host: str = "127.0.0.1",
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.faults = list(faults)
        if any(f.kind == "reset" for f in self.faults) and reset is None:
            raise UserError("a reset fault needs a reset hook (start the emulator with qmp=True)")
        self.reset_hook = reset
        self.rng = random.Random(seed)
        self.log: list[LogEntry] = []
        self.events: list[str] = []
        self._lock = threading.Lock()
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", listen_port))
        self._srv.listen(1)
        self.port = int(self._srv.getsockname()[1])
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._srv.close()

    def frames(self, direction: str, fault: bool | None = None) -> list[LogEntry]:
        """The logged frames of one direction (only faulted ones with fault=True, clean with False)."""
        with self._lock:
            return [
                e for e in self.log
                if e.direction == direction and (fault is None or (e.fault is not None) == fault)
            ]  # fmt: skip

    @property
    def unfired(self) -> list[Fault]:
        return [f for f in self.faults if not f.fired]

    # ------------------------------------------------------------------ relaying
    def _serve(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self._srv], [], [], 0.1)
            if not r:
                continue
            client, _ = self._srv.accept()
            try:
                up = socket.create_connection(self.upstream, timeout=5.0)
            except OSError as exc:
                self.events.append(f"upstream connection failed: {exc}")
                client.close()
                continue
            self._relay(client, up)

    def _relay(self, client: socket.socket, up: socket.socket) -> None:
        for s in (client, up):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
        dirs = {
            client: (_Direction("h2d", self.faults, self.rng), up),
            up: (_Direction("d2h", self.faults, self.rng), client),
        }
        last = {client: time.monotonic(), up: time.monotonic()}
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, up], [], [], 0.05)
                now = time.monotonic()
                for src in ready:
                    try:
                        data = src.recv(CHUNK)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self.events.append(f"{dirs[src][0].name} source closed")
                        return
                    last[src] = now
                    d, dst = dirs[src]
                    for piece in d.feed(data):
                        if self._emit(piece, dst):
                            return
                for src, (d, dst) in dirs.items():
                    if d.cur and now - last[src] > IDLE_FLUSH_S:
                        partial = d.flush_partial()
                        if partial is not None and self._emit(partial, dst):
                            return
        finally:
            client.close()
            up.close()

    def _emit(self, piece: tuple[bytes, list[LogEntry], str | None], dst: socket.socket) -> bool:
        """Forward one piece; True when the connection must end (cut)."""
        data, entries, action = piece
        with self._lock:
            self.log.extend(entries)
        try:
            _send_all(dst, data)
        except OSError:
            return True
        if action == "cut":
            self.events.append("cut")
            return True
        if action == "reset":
            assert self.reset_hook is not None
            self.reset_hook()
            self.events.append("reset")
        return False


def _send_all(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view)
        except (BlockingIOError, InterruptedError):
            select.select([], [sock], [], 1.0)
            continue
        view = view[n:]


# ---------------------------------------------------------------------- CLI
@run_cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tinyae.tools.faultproxy.proxy", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--upstream", required=True, metavar="HOST:PORT", help="the board's socket (emulator)")
    ap.add_argument(
        "--listen", type=non_negative_int, default=0, help="local port to listen on (default: a free one)"
    )
    ap.add_argument("--fault", action="append", default=[], metavar="SPEC", help="KIND@DIR,key=value,...")
    ap.add_argument("--seed", type=non_negative_int, default=0, help="seed of the garbage bytes")
    args = ap.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    faults = [Fault.parse(s) for s in args.fault]
    if any(f.kind == "reset" for f in faults):
        raise UserError("the CLI proxy cannot reset a device; use FaultProxy(reset=Emulator(qmp=True).reset)")
    stopped: KeyboardInterrupt | None = None  # Ctrl-C, or SIGTERM (run_cli: Terminated)
    with FaultProxy(
        int(port), faults, seed=args.seed, listen_port=args.listen, upstream_host=host or "127.0.0.1"
    ) as proxy:
        print(proxy.url, flush=True)
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt as exc:  # the fault log first, then the stop goes on
            taken(exc)
            stopped = exc
        for e in proxy.log:
            if e.fault:
                print(
                    f"{e.direction} frame {e.frame} ({e.label}) at byte {e.offset}: {e.fault}",
                    file=sys.stderr,
                )
    if stopped is not None:
        raise stopped  # 130 / 143, after the log
    return 0


if __name__ == "__main__":
    sys.exit(main())
