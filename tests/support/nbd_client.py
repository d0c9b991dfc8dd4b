"""A minimal NBD client for tests and the benchmark (python3-libnbd is built for
the system Python, not the venv).

Speaks fixed newstyle, ``NBD_OPT_GO`` and simple replies only: READ, WRITE,
FLUSH, DISC, one request at a time. Written independently of
:mod:`vbs.export.protocol` from the protocol document, so the tests do not
check the server against itself (nbdinfo/nbdcopy/nbdfuse check it too).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from urllib.parse import urlparse

__all__ = ["NbdClient", "NbdError"]


class NbdError(Exception):
    """The server refused an option or answered a request with an error."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


class NbdClient:
    def __init__(self, uri: str, timeout: float = 30.0) -> None:
        u = urlparse(uri)
        assert u.scheme == "nbd" and u.hostname and u.port, uri
        self.name = u.path.lstrip("/")
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._cookie = 0
        magic, opt, hflags = struct.unpack(">8sQH", self._recv(18))
        if magic != b"NBDMAGIC" or opt != 0x49484156454F5054:
            raise NbdError("not a newstyle NBD server")
        self.sock.sendall(struct.pack(">I", hflags & 3))  # fixed newstyle (+ no zeroes)
        name = self.name.encode()
        data = struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
        self.sock.sendall(struct.pack(">QII", 0x49484156454F5054, 7, len(data)) + data)
        self.size = -1
        self.flags = 0
        while True:
            rmagic, ropt, rtype, rlen = struct.unpack(">QIII", self._recv(20))
            payload = self._recv(rlen)
            if rmagic != 0x3E889045565A9 or ropt != 7:
                raise NbdError("bad option reply")
            if rtype == 1:  # ACK
                break
            if rtype & 0x80000000:
                self.sock.close()
                raise NbdError(f"NBD_OPT_GO refused: {rtype - 0x80000000} {payload!r}")
            if rtype == 3 and struct.unpack(">H", payload[:2])[0] == 0:
                self.size, self.flags = struct.unpack(">QH", payload[2:12])
        if self.size < 0:
            raise NbdError("no NBD_INFO_EXPORT")

    @property
    def read_only(self) -> bool:
        return bool(self.flags & 2)

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            part = self.sock.recv(n - len(buf))
            if not part:
                raise NbdError("server closed the connection")
            buf += part
        return bytes(buf)

    def _request(self, ctype: int, offset: int, length: int, data: bytes = b"") -> int:
        self._cookie += 1
        self.sock.sendall(struct.pack(">IHHQQI", 0x25609513, 0, ctype, self._cookie, offset,
                                      length) + data)
        magic, err, cookie = struct.unpack(">IIQ", self._recv(16))
        if magic != 0x67446698 or cookie != self._cookie:
            raise NbdError("bad reply")
        return int(err)

    def pread(self, length: int, offset: int) -> bytes:
        err = self._request(0, offset, length)
        if err:
            raise NbdError(f"read failed: errno {err}", err)
        return self._recv(length)

    def pwrite(self, data: bytes, offset: int) -> None:
        err = self._request(1, offset, len(data), data)
        if err:
            raise NbdError(f"write failed: errno {err}", err)

    def flush(self) -> None:
        err = self._request(3, 0, 0)
        if err:
            raise NbdError(f"flush failed: errno {err}", err)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 2, 0, 0, 0))
        self.sock.close()

    def __enter__(self) -> NbdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
