"""``--wait``: poll a job until it ends, with a live progress bar.

The bar (rich, on stderr, only when stderr is a terminal and neither
``--json`` nor ``--no-progress`` is given) is fed by the job's ``progress``
member (``{"done": bytes, "total": bytes}``, a VBS extension of the job
object); rich derives the rate and the ETA from successive updates. A job
that ends ``FAIL`` raises :class:`JobFailed` (exit 5). Interrupting the wait
(Ctrl-C) leaves the job running on the server and prints the command that
resumes waiting for it. The job's ``total`` is known from the moment it is
created (the service sets it at enqueue), so the bar is sized from the start.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from vbs.cli.client_http import Client, JobFailed

__all__ = ["FINISHED", "add_wait_options", "job_progress", "wait_for_job"]

FINISHED = ("SUCCESS", "FAIL")

_LABELS = {"bksCreateBackup": "backup", "bksRestoreBackup": "restore",
           "bksDeleteBackup": "delete"}


def add_wait_options(parser: argparse.ArgumentParser, *, wait_flag: bool = True) -> None:
    """``--wait`` (optional), ``--interval``, ``--no-progress``."""
    if wait_flag:
        parser.add_argument("--wait", action="store_true",
                            help="wait for the job to finish, showing its progress")
    parser.add_argument("--interval", type=float, default=0.5, metavar="SECONDS",
                        help="polling interval while waiting (default 0.5)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar while waiting")


def job_progress(job: dict[str, Any]) -> tuple[int, int]:
    """``(done, total)`` bytes from the job object; ``(0, 0)`` when not reported."""
    p = job.get("progress")
    if isinstance(p, dict):
        return int(p.get("done") or 0), int(p.get("total") or 0)
    return 0, 0


Update = Callable[[dict[str, Any]], None]


@contextmanager
def _bar(enabled: bool, job_id: str) -> Iterator[Update]:
    if not enabled:
        yield lambda job: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        TextColumn("{task.fields[status]}"),
        BarColumn(),
        DownloadColumn(binary_units=True),  # GiB, as the API counts sizes
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task(f"job {job_id}", total=None, status="INIT")

        def update(job: dict[str, Any]) -> None:
            done, total = job_progress(job)
            label = _LABELS.get(str(job.get("job_type")), "job")
            if job.get("status") == "SUCCESS" and total:
                done = total  # the last report may predate the end
            bar.update(task, description=label, status=str(job.get("status")),
                       completed=done, total=total or None)

        yield update


@contextmanager
def _interrupt_flag() -> Iterator[threading.Event]:
    """Ctrl-C sets the returned event instead of raising where it lands.

    Why: a KeyboardInterrupt may land anywhere, also inside the progress
    bar's code while it holds its console lock, which its refresh thread
    then waits on; the wait loop checks the event between polls and raises
    there, after the bar has stopped. Off the main thread (no signal
    handlers there) nothing is installed, nor where SIGINT is ignored (a
    shell's background job): it stays ignored.
    """
    flag = threading.Event()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        yield flag
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: flag.set())
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def wait_for_job(client: Client, job_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """Poll ``job_id`` until SUCCESS (returned) or FAIL (:class:`JobFailed`)."""
    show = not (args.json or args.no_progress) and sys.stderr.isatty()
    interval = max(0.05, float(args.interval))
    try:
        with _interrupt_flag() as interrupted:
            with _bar(show, job_id) as update:
                while not interrupted.is_set():
                    job = client.job(job_id)
                    update(job)
                    if job.get("status") in FINISHED:
                        break
                    interrupted.wait(interval)
            if interrupted.is_set():
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        # The job runs on: say how to pick it up again (the caller exits 130).
        print(f"vbs: stopped waiting; job {job_id} keeps running. Resume with: "
              f"vbs job show {job_id} --wait", file=sys.stderr, flush=True)
        raise
    if job.get("status") == "FAIL":
        raise JobFailed(job)
    return job
