"""What every long-running ``vbs`` process shares: settings, role logging,
readiness and signal handling.

A process plays one or more *roles*: ``api`` (``vbs serve``), ``worker``
(claims and runs jobs) and ``scheduler`` (fires policy slots while it holds
the scheduler lease). ``vbs serve`` plays all three by default, ``vbs serve
--no-worker --no-scheduler`` only ``api``, ``vbs worker`` and ``vbs scheduler``
their own (plus maintenance: reconciliation, garbage collection, job purging,
which is safe in any number of processes).

Readiness: when a process is ready (schema checked, repository opened,
threads started, for the API: the socket listening) it logs one line
``vbs <roles> ready: pid=...`` and, with ``--ready-file PATH``, writes that
file (JSON: roles, pid, host, ready_at) atomically; the file is removed on a
clean exit. An orchestrator or a test waits for the file or the log line;
liveness is the process itself (systemd, Kubernetes exec probe ``test -f``).

Stopping: SIGTERM or SIGINT stops claiming, cancels running jobs, which hand
their lease back at once with their progress (and every stored pack indexed)
so another worker resumes them immediately; the scheduler deletes its lease.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from vbs.errors import ConfigError

__all__ = ["add_common_arguments", "configure_logging", "describe", "install_stop_handlers",
           "load", "mark_ready", "unmark_ready"]

log = logging.getLogger("vbs.process")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``, ``--config``, ``--log-level``, ``--ready-file``."""
    env_config = os.environ.get("VBS_CONFIG")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data directory (default: $VBS_DATA_DIR or ./vbs-data)")
    parser.add_argument("--config", type=Path, default=Path(env_config) if env_config else None,
                        help="TOML settings file (default: $VBS_CONFIG)")
    parser.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument("--ready-file", type=Path, default=None,
                        help="write this file (JSON) once ready; removed on a clean exit")


def load(args: argparse.Namespace, command: str,
         overrides: dict[str, Any] | None = None) -> Any:
    """Settings for ``command``, or None after printing the problem (exit 2)."""
    from vbs.config import load_settings

    try:
        return load_settings(args.config, args.data_dir, overrides)
    except ConfigError as exc:
        print(f"vbs {command}: {exc.message}", file=sys.stderr)
        return None


def configure_logging(roles: str, level: str, fmt: str = "text",
                      file: Path | None = None) -> None:
    """Log lines name the process's roles and pid, so mixed logs stay readable
    (:func:`vbs.logging_setup.configure_logging` with ``role``)."""
    from vbs.logging_setup import configure_logging as configure

    configure(level, fmt, file, role=roles)


def describe(settings: Any) -> str:
    """Where this process points: database (no password) and repository."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database.url).render_as_string(hide_password=True)
    return f"database={url} repository={settings.repository.location}"


def mark_ready(path: Path | None, roles: str, **extra: Any) -> None:
    """Log readiness and write the ready file (atomically) if asked to."""
    doc = {"roles": roles.split("+"), "pid": os.getpid(), "host": socket.gethostname(),
           "ready_at": dt.datetime.now(dt.UTC).isoformat(), **extra}
    log.info("vbs %s ready: %s", roles, " ".join(f"{k}={v}" for k, v in doc.items()
                                                  if k not in ("roles", "ready_at")))
    if path is not None:
        from vbs.fsutil import atomic_write

        atomic_write(path, json.dumps(doc).encode() + b"\n", mode=0o644)


def unmark_ready(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def install_stop_handlers() -> threading.Event:
    """An event set by SIGTERM / SIGINT (second signal: exit at once)."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            os._exit(128 + signum)
        log.info("%s received: stopping (running jobs are handed back)",
                 signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
