"""``vbs serve --processes N``: N API processes sharing one port.

The parent has already migrated, bootstrapped identity and created the
repository; it binds the port once per child, forks N children (before any
thread or database connection exists in them) and supervises them like gunicorn's
arbiter: a child that dies while the service is not stopping (killed -9, out
of memory) is replaced after a second; SIGTERM/SIGINT is forwarded to every
child, which finishes its requests (uvicorn graceful shutdown), stops its
background roles (jobs handed back) and exits; the parent exits when all
have. Each child builds its own database engine, repository client, app and
runtime, and logs ``vbs api... ready`` when it serves. The children share one
thing: the token revocation counter (:mod:`vbs.api.token_cache`), so a token
revoked through one process stops working in all of them at once.

Each child accepts on its own socket of the port (``SO_REUSEPORT``, see
:func:`_listeners`), and the kernel spreads connections over them. A
request in flight in a child that is killed is lost to its client
(connection reset) and leaves no half-created record: every API write is
one database transaction.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import time
from typing import Any

__all__ = ["serve_processes"]

log = logging.getLogger("vbs.process")


def _child(settings: Any, args: argparse.Namespace, roles: str, sock: socket.socket,
           number: int, revocations: Any) -> int:
    import uvicorn

    from vbs.bootstrap import build_app, build_runtime, open_repository
    from vbs.cli.roles import mark_ready
    from vbs.cli.serve import UVICORN_HTTP, UVICORN_LOOP, freeze_startup_heap
    from vbs.db.session import Database

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    db = Database(settings.database.url)
    repository = open_repository(settings)
    app = build_app(settings, db, repository, revocations)
    # One NBD listener per host: process 0 serves every export (the catalog
    # is the database, so it serves those the other processes recorded too).
    runtime = build_runtime(settings, app.state.ctx, workers=not args.no_worker,
                            scheduler=not args.no_scheduler, exports=number == 0)
    runtime.start()
    # The socket itself, not uvicorn's ``fd=``: uvicorn takes an fd for an AF_UNIX
    # socket, so accepted TCP connections never got TCP_NODELAY and every small
    # reply waited ~40 ms for the client's delayed ACK (Nagle).
    server = uvicorn.Server(uvicorn.Config(app, log_level=settings.logging.level,
                                          log_config=None, access_log=False,
                                          loop=UVICORN_LOOP, http=UVICORN_HTTP))

    import threading

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            mark_ready(None, roles, process=number,
                       listen=f"{settings.server.host}:{settings.server.port}")

    threading.Thread(target=announce, daemon=True).start()
    freeze_startup_heap()
    try:
        server.run(sockets=[sock])
    finally:
        runtime.stop()
        repository.backend.close()
        db.dispose()
    return 0


def _spawn(settings: Any, args: argparse.Namespace, roles: str, socks: list[socket.socket],
           number: int, revocations: Any) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for other, sock in enumerate(socks):
                if other != number:
                    sock.close()  # its own socket only: the others are its siblings'
            code = _child(settings, args, roles, socks[number], number, revocations)
        except BaseException:  # noqa: BLE001 - report, then leave the child
            log.exception("api process %d crashed", number)
        finally:
            os._exit(code)
    log.info("api process %d started: pid=%d", number, pid)
    return pid


def serve_processes(settings: Any, args: argparse.Namespace, roles: str) -> int:
    """Run ``args.processes`` API processes on one port until SIGTERM/SIGINT."""
    from vbs.api.token_cache import RevocationCounter
    from vbs.cli.roles import mark_ready, unmark_ready

    socks = _listeners(settings.server.host, settings.server.port, args.processes)
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    children: dict[int, int] = {}
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Mapped before the first fork, so every child (respawned ones too) shares it.
    revocations = RevocationCounter()
    for number in range(args.processes):
        children[_spawn(settings, args, roles, socks, number, revocations)] = number
    mark_ready(args.ready_file, roles, processes=args.processes,
               pids=",".join(str(p) for p in children),
               listen=f"{settings.server.host}:{settings.server.port}")
    try:
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if pid not in children:
                continue
            number = children.pop(pid)
            if stopping:
                continue
            log.warning("api process %d (pid %d) ended (%s); starting a new one", number, pid,
                        _status(status))
            time.sleep(1.0)
            if not stopping:
                children[_spawn(settings, args, roles, socks, number, revocations)] = number
    finally:
        unmark_ready(args.ready_file)
        for sock in socks:
            sock.close()
    return 0


def _listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """One listening socket per process, all bound to ``host:port`` with
    ``SO_REUSEPORT``: the kernel spreads new connections over them by a hash of
    the addresses. With one shared socket, whichever process woke first
    accepted a whole burst (uvloop accepts until the queue is empty), so eight
    keep-alive clients often all landed in one process while the others idled
    (half the throughput, twice the latency). The parent keeps every socket
    open: connections that reach a dead process's socket wait in its queue
    for the replacement (a second) instead of being refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(family)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        port = sock.getsockname()[1]  # port 0: the others join the port the first got
        sock.listen(2048)
        sock.set_inheritable(True)
        socks.append(sock)
    return socks


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit {os.WEXITSTATUS(status)}"
