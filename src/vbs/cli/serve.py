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
import tempfile
from pathlib import Path
from typing import Any

from vbs.errors import ConfigError

__all__ = ["register", "run"]


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
    parser.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug"])
    parser.set_defaults(func=run)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _write_secret(path: Path, data: bytes) -> None:
    """Write ``data`` atomically with mode 0600 (temp file, fsync, rename, fsync dir).

    Private stand-in until ``vbs.fsutil.atomic_write`` exists.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from vbs.bootstrap import bootstrap_admin, build_app, migrate, prepare_data_dir
    from vbs.config import load_settings
    from vbs.db.session import Database

    server: dict[str, Any] = {}
    if args.host is not None:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    try:
        settings = load_settings(args.config, args.data_dir, {"server": server} if server else None)
    except ConfigError as exc:
        print(f"vbs serve: {exc.message}", file=sys.stderr)
        return 2
    prepare_data_dir(settings)
    migrate(settings)
    db = Database(settings.database.url)
    generated = bootstrap_admin(db, os.environ.get("VBS_ADMIN_PASSWORD") or None)
    if generated is not None:
        path = settings.data_dir / "admin-password"
        _write_secret(path, (generated + "\n").encode())
        print(f"Created user 'admin' in project 'admin'. Password: {generated}\n"
              f"(also stored in {path}, mode 0600; shown only this once)", flush=True)
    app = build_app(settings, db)
    uvicorn.run(app, host=settings.server.host, port=settings.server.port,
                log_level=args.log_level)
    db.dispose()
    return 0
