"""``vbs repo export ID``: serve one backup over NBD straight from a repository.

No service and no database: the repository is opened like every ``vbs repo``
command, the export gets a random unguessable name (or ``--name``), and it is
served on ``--listen`` (default ``127.0.0.1:10809``) until Ctrl-C or
``--expires-in`` seconds. With ``--writable`` writes go to ``--overlay``
(default ``./vbs-export-<id>.overlay``), which is discarded at the end unless
``--keep-overlay``: then every block not written is filled in from the
backup, leaving a complete raw image of the modified volume there (zero
chunks stay holes), e.g. for ``vbs admin volume import``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vbs.errors import ConfigError

__all__ = ["register"]


def register(rs: Any, run: Callable[..., Callable[[argparse.Namespace], int]]) -> None:
    """Add ``export`` to the ``vbs repo`` actions; ``run`` is repo.py's wrapper."""
    c = rs.add_parser("export", help="serve a backup over NBD until Ctrl-C (no service)")
    c.add_argument("backup_id")
    c.add_argument("--listen", default="127.0.0.1:10809", metavar="HOST:PORT",
                   help="address to serve on (port 0: any free port)")
    c.add_argument("--name", default=None, help="export name (default: random, unguessable)")
    c.add_argument("--writable", action="store_true",
                   help="copy-on-write: writes go to the overlay file, never the repository")
    c.add_argument("--overlay", type=Path, default=None, help="overlay file (with --writable)")
    c.add_argument("--keep-overlay", action="store_true",
                   help="at the end, complete the overlay into a full raw image and keep it")
    c.add_argument("--expires-in", type=float, default=None, metavar="SECONDS",
                   help="stop serving after this many seconds")
    c.add_argument("--cache-mib", type=int, default=64, help="chunk cache size (default 64)")
    c.set_defaults(func=run(_export))


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"--listen must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _export(args: argparse.Namespace, store: Any) -> int:
    from vbs.cli.repo import _resolve
    from vbs.export import CowDevice, ExportTarget, NbdServer, StaticCatalog

    host, port = _listen(args.listen)
    name = args.name or secrets.token_hex(24)
    args.backup_id = _resolve(store, args.backup_id)  # latest / unique prefix, as elsewhere
    store.load_manifest(args.backup_id)  # BackupNotFound (exit 6) before listening
    overlay = None
    if args.writable:
        overlay = args.overlay or Path(f"vbs-export-{args.backup_id}.overlay")
        overlay = overlay.absolute()
    elif args.overlay or args.keep_overlay:
        raise ConfigError("--overlay and --keep-overlay need --writable")
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=args.expires_in)
               if args.expires_in else None)
    target = ExportTarget(name, store.project, args.backup_id, args.writable, expires, overlay)
    server = NbdServer(store.repo, StaticCatalog(target), host=host, port=port,
                       cache_bytes=args.cache_mib * 1024 * 1024, sweep_every=1.0)
    try:
        server.start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.listen}: {exc.strerror}") from None
    uri = server.uri(name)
    if args.json:
        print(json.dumps({"uri": uri, "backup_id": args.backup_id, "writable": args.writable,
                          "overlay": str(overlay) if overlay else None}), flush=True)
    else:
        print(uri, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            if expires is not None and dt.datetime.now(dt.UTC) >= expires:
                break
    except KeyboardInterrupt:
        pass
    if args.keep_overlay and overlay is not None:
        device = server.detach(name)
        server.stop()
        if not isinstance(device, CowDevice):  # never opened: make the image now
            from vbs.export import BackupSource

            device = CowDevice(BackupSource(store, args.backup_id), overlay)
        image = device.complete()
        device.close()
        if not args.json:
            print(f"overlay completed into a full image of the volume: {image}")
        return 0
    server.stop()
    if overlay is not None:
        overlay.unlink(missing_ok=True)
        overlay.with_name(overlay.name + ".map").unlink(missing_ok=True)
    return 0
