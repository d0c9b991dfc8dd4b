"""The NBD export server: a listening socket, one thread per connection.

Who may be served is asked of a :class:`Catalog` (the service's is the
``backup_exports`` table; ``vbs repo export`` uses a :class:`StaticCatalog`
of one name): ``lookup(name)`` returns an :class:`ExportTarget` or None when
the name is unknown or expired. The server opens one device per live export
name and shares it between that name's connections (so its chunk cache and
overlay are shared), and keeps it while the export lives:

* a connection asks ``lookup`` again at most once a second before a request,
  and closes when the answer is None (ended elsewhere, or expired);
* :meth:`NbdServer.end` closes a name's connections and device now, and
  discards its overlay (the service calls it on ``DELETE``);
* :meth:`NbdServer.sweep` (every ``sweep_every`` seconds in the accept
  thread's companion) ends devices whose names no longer resolve, and calls
  ``Catalog.purge`` so expired records go away.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vbs.repository.repo import Repository

from .overlay import CowDevice
from .protocol import BlockDevice, serve_connection
from .source import DEFAULT_CACHE_BYTES, BackupSource

__all__ = ["Catalog", "ExportTarget", "NbdServer", "StaticCatalog"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportTarget:
    """What one export name serves."""

    name: str
    project: str
    backup_id: str
    writable: bool
    expires_at: dt.datetime | None
    overlay: Path | None
    """Overlay file of a writable export (None when read-only)."""

    def live(self, now: dt.datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


class Catalog(Protocol):
    def lookup(self, name: str) -> ExportTarget | None:
        """The live export called ``name``, or None (unknown, ended, expired)."""
        ...

    def purge(self) -> None:
        """Forget expired exports (called by the sweeper)."""
        ...


class StaticCatalog:
    """A fixed set of exports (``vbs repo export``, tests)."""

    def __init__(self, *targets: ExportTarget) -> None:
        self.targets = {t.name: t for t in targets}

    def lookup(self, name: str) -> ExportTarget | None:
        t = self.targets.get(name)
        if t is None or not t.live(dt.datetime.now(dt.UTC)):
            return None
        return t

    def purge(self) -> None:
        return None


@dataclass
class _Open:
    target: ExportTarget
    device: BackupSource | CowDevice
    users: int
    sockets: set[socket.socket]


class NbdServer:
    """Serve the catalog's exports on ``host:port`` (port 0: any free port)."""

    def __init__(self, repository: Repository, catalog: Catalog, *, host: str = "127.0.0.1",
                 port: int = 10809, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 sweep_every: float = 10.0) -> None:
        self.repository = repository
        self.catalog = catalog
        self.host = host
        self.port = port
        self.cache_bytes = cache_bytes
        self.sweep_every = sweep_every
        self._lock = threading.Lock()
        self._open: dict[str, _Open] = {}
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.on_connection: Callable[[str], None] | None = None

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        """Bind and listen (raises OSError when the address is taken), then
        serve in daemon threads."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(64)
        sock.settimeout(0.5)
        self._listener = sock
        self.port = sock.getsockname()[1]
        for target, name in ((self._accept_loop, "vbs-nbd-accept"),
                             (self._sweep_loop, "vbs-nbd-sweep")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            names = list(self._open)
        for name in names:
            self._close(name, discard=False)

    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def uri(self, name: str, host: str | None = None) -> str:
        h = host or self.host
        if ":" in h:
            h = f"[{h}]"
        return f"nbd://{h}:{self.port}/{name}"

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), name="vbs-nbd-conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        opener = _ConnOpener(self, conn)
        serve_connection(conn, opener)

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.sweep_every):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - the sweeper must go on
                log.exception("NBD export sweep failed")

    # -- exports --------------------------------------------------------------------
    def sweep(self) -> None:
        """End devices whose exports are gone or expired; purge expired records."""
        with self._lock:
            names = list(self._open)
        for name in names:
            if self.catalog.lookup(name) is None:
                self.end(name)
        self.catalog.purge()

    def end(self, name: str) -> None:
        """End an export now: close its connections and discard its overlay."""
        self._close(name, discard=True)

    def detach(self, name: str) -> BackupSource | CowDevice | None:
        """Close a name's connections and hand its open device (if any) to the
        caller, who then owns it (``vbs repo export --keep-overlay``)."""
        with self._lock:
            entry = self._open.pop(name, None)
        if entry is None:
            return None
        for s in list(entry.sockets):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        return entry.device

    def open_names(self) -> list[str]:
        with self._lock:
            return sorted(self._open)

    def _close(self, name: str, *, discard: bool) -> None:
        with self._lock:
            entry = self._open.pop(name, None)
        if entry is None:
            return
        for s in list(entry.sockets):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        if isinstance(entry.device, CowDevice) and discard:
            entry.device.discard()
        else:
            entry.device.close()

    def acquire(self, name: str, conn: socket.socket) -> BlockDevice | None:
        target = self.catalog.lookup(name)
        if target is None:
            return None
        with self._lock:
            entry = self._open.get(name)
            if entry is not None:
                entry.users += 1
                entry.sockets.add(conn)
                return entry.device
        device = self._make_device(target)
        with self._lock:
            entry = self._open.get(name)
            if entry is not None:  # another connection opened it meanwhile
                device.close()
            else:
                entry = self._open[name] = _Open(target, device, 0, set())
            entry.users += 1
            entry.sockets.add(conn)
            return entry.device

    def _make_device(self, target: ExportTarget) -> BackupSource | CowDevice:
        store = self.repository.project(target.project)
        source = BackupSource(store, target.backup_id, cache_bytes=self.cache_bytes)
        if target.writable:
            if target.overlay is None:
                raise ValueError(f"writable export {target.name} has no overlay path")
            return CowDevice(source, target.overlay)
        return source

    def release(self, name: str, conn: socket.socket) -> None:
        with self._lock:
            entry = self._open.get(name)
            if entry is not None:
                entry.users -= 1
                entry.sockets.discard(conn)

    def device(self, name: str) -> BackupSource | CowDevice | None:
        """The open device of ``name`` (None when no client opened it yet)."""
        with self._lock:
            entry = self._open.get(name)
            return entry.device if entry else None


class _ConnOpener:
    """The :class:`~vbs.export.protocol.Opener` of one connection."""

    def __init__(self, server: NbdServer, conn: socket.socket) -> None:
        self.server = server
        self.conn = conn

    def open(self, name: str) -> BlockDevice | None:
        try:
            return self.server.acquire(name, self.conn)
        except Exception:  # noqa: BLE001 - the client gets "unknown export"
            log.exception("opening NBD export failed")
            return None

    def alive(self, name: str) -> bool:
        try:
            return self.server.catalog.lookup(name) is not None
        except Exception:  # noqa: BLE001 - a database hiccup must not drop clients
            log.exception("NBD export lookup failed")
            return True

    def release(self, name: str) -> None:
        self.server.release(name, self.conn)
