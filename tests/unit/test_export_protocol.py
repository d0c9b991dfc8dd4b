"""The NBD protocol layer against a fake device over a socketpair: option
negotiation, refusals, structured replies, and Hypothesis-fuzzed garbage that
must end the connection cleanly, never hang or raise."""

from __future__ import annotations

import socket
import struct
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

import vbs.export as export_pkg
from vbs.export.protocol import serve_connection

IHAVEOPT = 0x49484156454F5054
REPLY = 0x3E889045565A9


class FakeDevice:
    def __init__(self, size: int = 1 << 20, writable: bool = False) -> None:
        self.data = bytearray(i % 251 for i in range(size))
        self.writable = writable

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset : offset + length])

    def write(self, offset: int, data: bytes) -> None:
        self.data[offset : offset + len(data)] = data

    def flush(self) -> None:
        return None

    def extents(self, offset: int, length: int) -> list[tuple[int, bool]]:
        half = length // 2
        return [(half, False), (length - half, True)] if half else [(length, False)]


class FakeOpener:
    def __init__(self, dev: FakeDevice) -> None:
        self.dev = dev
        self.released: list[str] = []

    def open(self, name: str) -> FakeDevice | None:
        return self.dev if name == "good" else None

    def alive(self, name: str) -> bool:
        return True

    def release(self, name: str) -> None:
        self.released.append(name)


def _pair(dev: FakeDevice | None = None) -> tuple[socket.socket, threading.Thread, FakeOpener]:
    a, b = socket.socketpair()
    a.settimeout(5)
    opener = FakeOpener(dev or FakeDevice())
    t = threading.Thread(target=serve_connection, args=(b, opener), daemon=True)
    t.start()
    return a, t, opener


def _recv(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        part = s.recv(n - len(buf))
        assert part, "server closed early"
        buf += part
    return buf


def _start(s: socket.socket) -> None:
    magic, opt, flags = struct.unpack(">8sQH", _recv(s, 18))
    assert magic == b"NBDMAGIC" and opt == IHAVEOPT and flags == 3
    s.sendall(struct.pack(">I", 3))


def _option(s: socket.socket, option: int, data: bytes = b"") -> list[tuple[int, bytes]]:
    s.sendall(struct.pack(">QII", IHAVEOPT, option, len(data)) + data)
    replies = []
    while True:
        magic, opt, rtype, n = struct.unpack(">QIII", _recv(s, 20))
        assert magic == REPLY and opt == option
        replies.append((rtype, _recv(s, n)))
        if rtype == 1 or rtype & 0x80000000:
            return replies


def _name(name: bytes, tail: bytes) -> bytes:
    return struct.pack(">I", len(name)) + name + tail


def test_refusals_and_info() -> None:
    s, t, _ = _pair()
    _start(s)
    assert _option(s, 3)[-1][0] == 2**31 + 2  # LIST: policy, names are secret
    assert _option(s, 5)[-1][0] == 2**31 + 1  # STARTTLS: unsupported
    assert _option(s, 11)[-1][0] == 2**31 + 1  # EXTENDED_HEADERS: unsupported
    assert _option(s, 7, _name(b"bad", b"\0\0"))[-1][0] == 2**31 + 6  # unknown export
    assert _option(s, 7, b"\0\0")[-1][0] == 2**31 + 3  # malformed
    assert _option(s, 10, _name(b"good", struct.pack(">I", 0)))[-1][0] == 2**31 + 3  # no SR
    info = _option(s, 6, _name(b"good", b"\0\0"))
    assert info[-1][0] == 1
    size, flags = struct.unpack(">QH", info[0][1][2:12])
    assert size == 1 << 20 and flags & 2  # read-only
    assert _option(s, 2) == [(1, b"")]  # ABORT acknowledged
    t.join(5)
    assert not t.is_alive()


def test_structured_read_block_status_and_errors() -> None:
    dev = FakeDevice(writable=True)
    s, t, opener = _pair(dev)
    _start(s)
    assert _option(s, 8) == [(1, b"")]
    ctx = _option(s, 10, _name(b"good", struct.pack(">I", 1) + _name(b"base:allocation", b"")))
    assert ctx[0][0] == 4 and ctx[0][1] == struct.pack(">I", 1) + b"base:allocation"
    assert _option(s, 7, _name(b"good", b"\0\0"))[-1][0] == 1

    def request(ctype: int, offset: int, length: int, data: bytes = b"") -> tuple[int, bytes]:
        s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, ctype, 77, offset, length) + data)
        magic, flags, rtype, cookie, n = struct.unpack(">IHHQI", _recv(s, 20))
        assert magic == 0x668E33EF and flags & 1 and cookie == 77
        return rtype, _recv(s, n)

    rtype, payload = request(0, 1000, 300)
    assert rtype == 1 and payload == struct.pack(">Q", 1000) + dev.read(1000, 300)
    rtype, payload = request(1, 0, 4, b"abcd")
    assert rtype == 0 and dev.data[:4] == b"abcd"
    rtype, payload = request(7, 0, 4096)
    assert rtype == 5 and payload == struct.pack(">IIIII", 1, 2048, 0, 2048, 3)
    rtype, payload = request(0, (1 << 20) - 10, 20)  # past the end
    assert rtype == 2**15 + 1 and struct.unpack(">I", payload[:4])[0] == 22
    rtype, payload = request(9, 0, 0)  # unknown command
    assert struct.unpack(">I", payload[:4])[0] == 22
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 2, 0, 0, 0))  # DISC
    t.join(5)
    assert not t.is_alive() and opener.released == ["good"]


def test_old_style_export_name() -> None:
    s, t, _ = _pair()
    _start(s)
    s.sendall(struct.pack(">QII", IHAVEOPT, 1, 4) + b"good")
    size, flags = struct.unpack(">QH", _recv(s, 10))  # no zeroes: the client said so
    assert size == 1 << 20 and flags & 1
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, 5, 0, 16))
    assert _recv(s, 16) == struct.pack(">IIQ", 0x67446698, 0, 5)
    assert _recv(s, 16) == bytes(range(16))
    s.close()
    t.join(5)
    assert not t.is_alive()


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_after_the_greeting_ends_the_connection(garbage: bytes) -> None:
    s, t, _ = _pair()
    _recv(s, 18)
    try:
        s.sendall(struct.pack(">I", 3) + garbage)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
    t.join(5)
    assert not t.is_alive()


def test_package_all_is_honest() -> None:
    for name in export_pkg.__all__:
        assert hasattr(export_pkg, name)
