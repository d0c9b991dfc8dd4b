"""``vbs worker`` and ``vbs scheduler``: the background roles as their own processes.

Both open the same database and repository as the API (same settings file),
check the schema (or migrate it on the embedded default, see
``database.migrate_on_start``), start their threads, report readiness
(:mod:`vbs.cli.roles`) and run until SIGTERM/SIGINT. Any number of either
may run against one database: workers claim jobs under leases
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL), schedulers elect one leader
through the ``scheduler`` lease and a slot fires once whoever ticks.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vbs.errors import VbsError

__all__ = ["register", "run_background"]


def register(subparsers: Any) -> None:
    from vbs.cli.roles import add_common_arguments

    worker = subparsers.add_parser(
        "worker", help="run job workers (no API)",
        description="Claim and run backup, restore and delete jobs from the shared queue.")
    add_common_arguments(worker)
    worker.add_argument("--threads", type=int, default=None,
                        help="job threads in this process (default: jobs.workers)")
    worker.add_argument("--stop-timeout", type=float, default=30.0,
                        help="seconds to wait for running jobs to hand back on SIGTERM")
    worker.set_defaults(func=lambda a: run_background(a, "worker"))

    sched = subparsers.add_parser(
        "scheduler", help="run the policy scheduler (no API)",
        description="Fire policy slots; with several schedulers one leads (database lease).")
    add_common_arguments(sched)
    sched.add_argument("--stop-timeout", type=float, default=30.0, help=argparse.SUPPRESS)
    sched.set_defaults(func=lambda a: run_background(a, "scheduler"))


def run_background(args: argparse.Namespace, role: str) -> int:
    from vbs.bootstrap import (
        build_context,
        build_runtime,
        migrate_or_check,
        open_repository,
        prepare_data_dir,
    )
    from vbs.cli.roles import (
        configure_logging,
        describe,
        install_stop_handlers,
        load,
        mark_ready,
        unmark_ready,
    )
    from vbs.db.session import Database

    overrides: dict[str, Any] = {}
    threads = getattr(args, "threads", None)
    if threads is not None:
        overrides["jobs"] = {"workers": threads}
    settings = load(args, role, overrides or None)
    if settings is None:
        return 2
    if role == "worker" and settings.jobs.workers < 1:
        print("vbs worker: jobs.workers (or --threads) must be at least 1", file=sys.stderr)
        return 2
    configure_logging(role, args.log_level)
    import logging

    log = logging.getLogger("vbs.process")
    log.info("vbs %s starting: %s", role, describe(settings))
    stop = install_stop_handlers()
    try:
        prepare_data_dir(settings)
        migrate_or_check(settings)
        repository = open_repository(settings)
    except VbsError as exc:
        print(f"vbs {role}: {exc.message}", file=sys.stderr)
        return 1
    db = Database(settings.database.url)
    ctx = build_context(settings, db, repository)
    runtime = build_runtime(settings, ctx, workers=role == "worker",
                            scheduler=role == "scheduler", exports=False)
    runtime.start()
    extra: dict[str, Any] = {}
    if runtime.worker is not None:
        extra = {"worker_id": runtime.worker.worker_id, "threads": runtime.worker.concurrency}
    if runtime.scheduler is not None:
        extra = {"scheduler_id": getattr(runtime.scheduler, "owner", "")}
    mark_ready(args.ready_file, role, **extra)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        unmark_ready(args.ready_file)
        running = runtime.worker.running if runtime.worker is not None else 0
        log.info("vbs %s stopping (%d running jobs to hand back)", role, running)
        runtime.stop(timeout=args.stop_timeout)
        repository.backend.close()
        db.dispose()
        log.info("vbs %s stopped", role)
    return 0
