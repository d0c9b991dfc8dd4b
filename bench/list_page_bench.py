#!/usr/bin/env python3
"""What one native list page costs in-process, stage by stage (not a test).

``bench/api_bench.py`` measures the whole HTTP path, and on a shared VM its
latencies move by tens of percent between runs. This one times the page
itself in one thread, with no server and no load generator:
``GET /v3/{p}/backups/detail?limit=100`` at 3.64 over ``--records`` backups
(the first page), split into

* ``query``   ``query_backup_page``: the SQL, its rows, the frozen records
  (as queried: the API's ``list_backups`` reuses a page on SQLite while the
  database is unchanged, and its rendered items, see docs/operations.md);
* ``views``   ``to_view`` of each record;
* ``render``  the wire dictionaries (``render_backup_list``);
* ``json``    orjson bytes (``vbs.api.responses.dumps``);

and prints the mean milliseconds of each over ``--pages`` pages, after a
warm-up. Compare changes by running it on both trees in turn (A, B, A, B).
The rows come from the same ``insert_backups`` as api_bench.

Usage (from the repository root)::

  .venv/bin/python bench/list_page_bench.py
  .venv/bin/python bench/list_page_bench.py --pages 1000 --records 10000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from api_bench import insert_backups  # noqa: E402

from vbs.api.responses import dumps  # noqa: E402
from vbs.api.routers.backups_views import to_view  # noqa: E402
from vbs.api.schemas.backups import LinkContext  # noqa: E402
from vbs.api.schemas.render import render_backup_list  # noqa: E402
from vbs.db.migrate import upgrade  # noqa: E402
from vbs.db.session import Database  # noqa: E402
from vbs.service.backup_queries import query_backup_page  # noqa: E402
from vbs.service.backup_rules import parse_native_list_query  # noqa: E402

PROJECT = "0" * 32
VERSION = (3, 64)
STAGES = ("query", "views", "render", "json")


def page_seconds(db: Database, ctx: LinkContext) -> list[float]:
    """Seconds of each stage for one first page of 100."""
    query = parse_native_list_query({"limit": "100"}, version=VERSION)
    t0 = time.perf_counter()
    with db.session() as s:
        page = query_backup_page(s, PROJECT, query)
    t1 = time.perf_counter()
    views = [to_view(r) for r in page.items]
    t2 = time.perf_counter()
    body = render_backup_list(views, ctx, detail=True, version=VERSION)
    t3 = time.perf_counter()
    out = dumps(body)
    t4 = time.perf_counter()
    if len(page.items) != 100 or not out:
        raise SystemExit(f"expected a page of 100, got {len(page.items)}")
    return [t1 - t0, t2 - t1, t3 - t2, t4 - t3]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--pages", type=int, default=600)
    ap.add_argument("--warmup", type=int, default=50)
    args = ap.parse_args(argv)
    if args.records < 101:
        ap.error("--records must be at least 101")
    with tempfile.TemporaryDirectory(prefix="vbs-list-page-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'vbs.db'}"
        upgrade(url)
        insert_backups(url, PROJECT, args.records)
        db = Database(url)
        ctx = LinkContext("http://127.0.0.1:8776", "v3", PROJECT)
        try:
            for _ in range(args.warmup):
                page_seconds(db, ctx)
            sums = [0.0] * len(STAGES)
            for _ in range(args.pages):
                for i, s in enumerate(page_seconds(db, ctx)):
                    sums[i] += s
        finally:
            db.dispose()
    ms = [s / args.pages * 1000 for s in sums]
    print(" | ".join(f"{name} {v:.3f}" for name, v in zip(STAGES, ms, strict=True))
          + f" | total {sum(ms):.3f} ms a page ({args.records} backups, {args.pages} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
