"""The fault proxy itself (no emulator): fault specs, exact placement of each fault kind in a frame
stream, and a live relay over loopback sockets."""

from __future__ import annotations

import random
import socket
import threading

import pytest

from tinyae.errors import UserError
from tinyae.tools.faultproxy.proxy import Fault, FaultProxy, _Direction, label
from tinyae.tools.link import protocol as p


def frames() -> list[bytes]:
    out = [p.encode_frame(p.Result(w, 0.5, False, False, 0, 7), w + 3) for w in range(4)]
    return [p.encode_frame(p.Ack(p.MsgType.SAMPLES, 1, 0, 2), 2), *out]


def run(faults: list[Fault], data: bytes) -> tuple[bytes, list]:
    d = _Direction("d2h", faults, random.Random(1))
    out, log = bytearray(), []
    for i in range(0, len(data), 7):  # arbitrary chunking must not matter
        for piece, entries, _ in d.feed(data[i : i + 7]):
            out += piece
            log += entries
    return bytes(out), log


def decoded(data: bytes) -> list[str | None]:
    return [label(ev.msg and p.encode_frame(ev.msg, ev.seq)) if isinstance(ev, p.Frame) else None
            for ev in p.StreamDecoder().feed(data)]  # fmt: skip


def test_spec_parsing_and_refusals():
    f = Fault.parse("flip@d2h,msg=result:20,bit=3,pos=-1")
    assert (f.kind, f.direction, f.msg, f.bit, f.pos) == ("flip", "d2h", "result:20", 3, -1)
    for bad in ("melt@d2h,at=1", "flip@up,at=1", "flip@d2h", "flip@d2h,at=1,frame=2", "flip@d2h,at=x"):
        with pytest.raises(UserError):
            Fault.parse(bad)


def test_clean_stream_passes_unchanged_and_is_labelled():
    data = b"".join(frames())
    out, log = run([], data)
    assert out == data
    assert [e.label for e in log] == ["ack:0", "result:0", "result:1", "result:2", "result:3"]


@pytest.mark.parametrize(
    ("fault", "lost"),
    [
        (Fault("flip", "d2h", msg="result:2"), {"result:2"}),
        (Fault("drop", "d2h", msg="result:1", pos=-1), {"result:1", "result:2"}),  # delimiter: two frames
        (Fault("dup", "d2h", frame=4, count=2), {"result:3"}),
        (Fault("garbage", "d2h", msg="result:0", pos=3, count=50), {"result:0"}),
    ],
)
def test_each_fault_hits_exactly_its_frame(fault, lost):
    data = b"".join(frames())
    out, log = run([fault], data)
    assert fault.fired and sum(e.fault is not None for e in log) == 1
    got = {x for x in decoded(out) if x}
    assert got == {"ack:0", "result:0", "result:1", "result:2", "result:3"} - lost


def test_byte_offset_trigger_and_cut():
    data = b"".join(frames())
    at = len(frames()[0]) + 2  # third byte of result 0
    out, _ = run([Fault("flip", "d2h", at=at, bit=7)], data)
    assert [i for i, (a, b) in enumerate(zip(out, data, strict=True)) if a != b] == [at]
    d = _Direction("d2h", [Fault("cut", "d2h", msg="result:1", pos=0)], random.Random(0))
    pieces = d.feed(data)
    assert pieces[-1][2] == "cut" and b"".join(x[0] for x in pieces) == b"".join(frames()[:2])


def test_live_relay_both_directions():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def echo_upstream():
        conn, _ = srv.accept()
        with conn:
            while chunk := conn.recv(4096):
                conn.sendall(chunk)

    threading.Thread(target=echo_upstream, daemon=True).start()
    data = b"".join(frames())
    faults = [Fault("flip", "h2d", msg="result:1"), Fault("drop", "d2h", msg="result:3", count=3)]
    with FaultProxy(srv.getsockname()[1], faults) as proxy:
        c = socket.create_connection(("127.0.0.1", proxy.port))
        c.sendall(data)
        c.settimeout(5.0)
        back = b""
        while back.count(0) < 5:
            back += c.recv(4096)
        c.close()
    assert {x for x in decoded(back) if x} == {"ack:0", "result:0", "result:2"}
    assert not proxy.unfired
    assert [e.label for e in proxy.frames("h2d", fault=True)] == ["result:1"]
    srv.close()
