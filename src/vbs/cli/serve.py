"""``vbs serve``: run the API service on one data dir.

Start sequence: load settings (``--config``, ``VBS_*``, flags), create the
data dir, run migrations, bootstrap identity, then serve with uvicorn. On the
very first start without ``VBS_ADMIN_PASSWORD`` a random admin password is
generated, written to ``DATA_DIR/admin-password`` (mode 0600) and printed
once; with ``VBS_ADMIN_PASSWORD`` set, that password is used (and reset on an
existing admin user, like ``keystone-manage bootstrap``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Final

from vbs.errors import ConfigError, VbsError

__all__ = ["UVICORN_HTTP", "UVICORN_LOOP", "freeze_startup_heap", "register", "run"]

UVICORN_LOOP: Final = "uvloop"
UVICORN_HTTP: Final = "httptools"
"""uvicorn's C event loop and HTTP parser (both dependencies), named rather than
left to ``auto`` so a broken install fails at start instead of quietly serving
on asyncio + h11, which cost ~1 ms more per request (docs/operations.md)."""


def freeze_startup_heap() -> None:
    """Move every object alive at start-up out of the garbage collector's view.

    A started API process holds ~140 000 tracked objects (FastAPI, pydantic,
    SQLAlchemy, the routes), none of which ever becomes garbage; a full
    collection walked them all, ~75 ms with the GIL held, every so often
    under load, which made the slowest 1 % of requests. Frozen, a full
    collection sees only what requests allocated since (``gc.freeze``, meant
    for exactly this in pre-forking servers); reference counting frees
    everything else as before.
    """
    import gc

    gc.collect()
    gc.freeze()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the API service",
        description="Run the VBS API (VBS extension, Cinder v2/v3, Keystone v3 subset).",
    )
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data directory (default: $VBS_DATA_DIR or ./vbs-data)")
    parser.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default 8799)")
    parser.add_argument("--config", type=Path, default=_env_path("VBS_CONFIG"),
                        help="TOML settings file (default: $VBS_CONFIG)")
    parser.add_argument("--no-worker", action="store_true",
                        help="serve the API only; job workers run elsewhere (vbs serve elsewhere)")
    parser.add_argument("--no-scheduler", action="store_true",
                        help="do not run the policy scheduler in this process")
    parser.add_argument("--log-level", default=None,
                        choices=["critical", "error", "warning", "info", "debug"],
                        help="default: logging.level setting, else info")
    parser.add_argument("--log-format", default=None, choices=["text", "json"],
                        help="text lines or JSON lines (default: logging.format, else text)")
    parser.add_argument("--log-file", type=Path, default=None,
                        help="append logs to this file instead of stderr (logging.file)")
    parser.add_argument("--processes", type=int, default=1,
                        help="API processes sharing the port (pre-forked, respawned if they die)")
    parser.add_argument("--ready-file", type=Path, default=None,
                        help="write this file (JSON) once every process serves")
    parser.set_defaults(func=run)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _write_secret(path: Path, data: bytes) -> None:
    """Durably write a secret file readable by the owner only."""
    from vbs.fsutil import atomic_write

    atomic_write(path, data, mode=0o600)


def _announce_admin(password: str, path: Path) -> None:
    """Tell the operator about the generated admin password.

    The password itself goes to stdout only when stdout is a terminal: under
    systemd, docker or ``> server.log`` stdout ends up in logs that many
    people can read, and the 0600 file is where it belongs.
    """
    if sys.stdout.isatty():
        print(f"Created user 'admin' in project 'admin'. Password: {password}\n"
              f"(also stored in {path}, mode 0600; shown only this once)", flush=True)
    else:
        print(f"Created user 'admin' in project 'admin'. Its password is in {path} "
              "(mode 0600); it is not printed because stdout is not a terminal.", flush=True)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from vbs.bootstrap import (
        bootstrap_admin,
        build_app,
        build_runtime,
        migrate_or_check,
        open_repository,
        prepare_data_dir,
    )
    from vbs.cli.roles import describe, unmark_ready
    from vbs.config import load_settings
    from vbs.db.session import Database
    from vbs.logging_setup import configure_logging

    server: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    logging_overrides = {k: v for k, v in (("level", args.log_level),
                                           ("format", args.log_format),
                                           ("file", args.log_file)) if v is not None}
    if logging_overrides:
        overrides["logging"] = logging_overrides
    if args.host is not None:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    try:
        if server:
            overrides["server"] = server
        settings = load_settings(args.config, args.data_dir, overrides or None)
    except ConfigError as exc:
        print(f"vbs serve: {exc.message}", file=sys.stderr)
        return 2
    if args.processes < 1:
        print("vbs serve: --processes must be at least 1", file=sys.stderr)
        return 2
    roles = "+".join(["api"] + ([] if args.no_worker else ["worker"])
                     + ([] if args.no_scheduler else ["scheduler"]))
    configure_logging(settings.logging.level, settings.logging.format, settings.logging.file,
                      role=roles)
    import logging

    logging.getLogger("vbs.process").info("vbs %s starting: %s processes=%d", roles,
                                          describe(settings), args.processes)
    prepare_data_dir(settings)
    try:
        migrate_or_check(settings)
    except ConfigError as exc:
        print(f"vbs serve: {exc.message}", file=sys.stderr)
        return 2
    db = Database(settings.database.url)
    generated = bootstrap_admin(db, os.environ.get("VBS_ADMIN_PASSWORD") or None)
    if generated is not None:
        path = settings.data_dir / "admin-password"
        _write_secret(path, (generated + "\n").encode())
        _announce_admin(generated, path)
    try:
        repository = open_repository(settings)
    except VbsError as exc:
        print(f"vbs serve: repository {settings.repository.location}: {exc.message}",
              file=sys.stderr)
        return 1
    if args.processes > 1:
        from vbs.cli.serve_multi import serve_processes

        repository.backend.close()
        db.dispose()  # nothing may be shared across the fork
        return serve_processes(settings, args, roles)
    app = build_app(settings, db, repository)
    runtime = build_runtime(settings, app.state.ctx, workers=not args.no_worker,
                            scheduler=not args.no_scheduler)
    runtime.start()
    # log_config=None keeps configure_logging's handler; vbs.access replaces
    # uvicorn's access log with lines that carry the request id.
    config = uvicorn.Config(app, host=settings.server.host, port=settings.server.port,
                            log_level=settings.logging.level, log_config=None,
                            access_log=False, loop=UVICORN_LOOP, http=UVICORN_HTTP)
    uv = uvicorn.Server(config)
    ready = _announce_when_started(uv, args.ready_file, roles, settings)
    freeze_startup_heap()
    try:
        uv.run()
    finally:
        ready.join(1.0)
        unmark_ready(args.ready_file)
        runtime.stop()
        db.dispose()
    return 0


def _announce_when_started(server: Any, ready_file: Path | None, roles: str,
                           settings: Any) -> Any:
    """Log readiness (and write the ready file) once uvicorn listens."""
    import threading
    import time

    from vbs.cli.roles import mark_ready

    def wait() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            mark_ready(ready_file, roles, listen=f"{settings.server.host}:{settings.server.port}")

    thread = threading.Thread(target=wait, name="vbs-ready", daemon=True)
    thread.start()
    return thread
