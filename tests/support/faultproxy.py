"""A small fault-injecting TCP proxy, put between VBS and a real S3 server.

``FaultProxy(host, port)`` listens on 127.0.0.1 (``.endpoint_url``) and
forwards to the target. ``set_mode`` switches what new and existing
connections experience (every open connection is closed on a switch, so a
client's keep-alive pool meets the new mode at once):

* ``pass``: forward both ways;
* ``slow``: forward, but at most ``rate`` bytes/s per direction per connection
  and ``delay`` seconds before the first byte (a congested store);
* ``503``: read the request head, answer ``503 ServiceUnavailable`` in S3's
  XML error format with ``Connection: close``;
* ``drop``: accept and close at once (connection reset / remote disconnect).

Counters (``connections``, ``refused``, ``dropped``) let tests assert that a
fault was really met. Threads only; ``close()`` stops everything.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass

__all__ = ["FaultProxy"]

_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
         b"<Message>injected by the test proxy</Message></Error>")
_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n"
             b"Content-Length: " + str(len(_BODY)).encode() + b"\r\nConnection: close\r\n\r\n"
             + _BODY)


@dataclass
class _Mode:
    name: str = "pass"
    rate: float = 0.0
    delay: float = 0.0


class FaultProxy:
    """See the module docstring."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._mode = _Mode()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        self.connections = 0
        self.refused = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy",
                                        daemon=True)
        self._thread.start()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mode(self) -> str:
        return self._mode.name

    def set_mode(self, name: str, *, rate: float = 0.0, delay: float = 0.0) -> None:
        if name not in ("pass", "slow", "503", "drop"):
            raise ValueError(f"unknown proxy mode {name!r}")
        with self._lock:
            self._mode = _Mode(name, rate, delay)
            victims, self._open = self._open, set()
        for s in victims:
            self._kill(s)

    def close(self) -> None:
        self._closed = True
        self.set_mode("pass")
        with contextlib.suppress(OSError):
            self._listener.close()

    # -- internals --------------------------------------------------------------

    @staticmethod
    def _kill(s: socket.socket) -> None:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            s.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                mode = self._mode
            threading.Thread(target=self._serve, args=(client, mode), daemon=True).start()

    def _serve(self, client: socket.socket, mode: _Mode) -> None:
        if mode.name == "drop":
            with self._lock:
                self.dropped += 1
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            self._kill(client)  # RST
            return
        if mode.name == "503":
            self._refuse(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            self._kill(client)
            return
        upstream.settimeout(None)
        with self._lock:
            if self._mode is not mode:  # switched meanwhile
                self._kill(client)
                self._kill(upstream)
                return
            self._open.update((client, upstream))
        rate = mode.rate if mode.name == "slow" else 0.0
        delay = mode.delay if mode.name == "slow" else 0.0
        a = threading.Thread(target=self._pump, args=(client, upstream, rate, delay), daemon=True)
        b = threading.Thread(target=self._pump, args=(upstream, client, rate, 0.0), daemon=True)
        a.start()
        b.start()

    def _refuse(self, client: socket.socket) -> None:
        with self._lock:
            self.refused += 1
        client.settimeout(5)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < 65536:
                got = client.recv(65536)
                if not got:
                    break
                head += got
            client.sendall(_RESPONSE)
        except OSError:
            pass
        self._kill(client)

    def _pump(self, src: socket.socket, dst: socket.socket, rate: float, delay: float) -> None:
        first = True
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if first and delay:
                    time.sleep(delay)
                first = False
                if rate:
                    time.sleep(len(data) / rate)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            self._kill(src)
            self._kill(dst)
