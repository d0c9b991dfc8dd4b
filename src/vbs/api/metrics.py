"""Prometheus metrics of the service (``GET /metrics``, text format 0.0.4).

Two kinds, because several ``vbs serve`` processes share one database:

* **Global state, read from the database (and repository) at scrape time**
  by :class:`StateCollector`, so every API process reports the same values
  whichever one Prometheus reaches: jobs by type and status, queue depth,
  lease expiries, job durations, bytes read/new/stored and the dedup ratio of
  backup jobs, repository size, last successful backup per volume and per
  policy. Job-derived values cover the jobs the database still keeps
  (finished jobs are purged after 30 days), hence gauges, not counters.
* **Per-process request metrics** kept in memory by :class:`ApiMetrics`:
  request counts and latency by method, route *template*
  (``/v2/{project_id}/cloudbackups``, never the raw path, so cardinality
  stays bounded) and status. Scrape every process (each listens on its own
  port) and ``sum()`` them, as with any multi-instance exporter.

Each app owns its own :class:`prometheus_client.CollectorRegistry`, so
several apps in one process (tests) never clash and nothing is registered at
import time.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vbs.db.base import utcnow
from vbs.db.models_backups import Backup
from vbs.db.models_jobs import Job

__all__ = ["ApiMetrics", "StateCollector", "install_metrics"]

log = logging.getLogger(__name__)
access_log = logging.getLogger("vbs.access")

JOB_DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0,
                        21600.0)
_CREATE_JOB = "bksCreateBackup"
_UNMATCHED = "<unmatched>"


def _stamp(value: dt.datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


class StateCollector(Collector):
    """Reads the shared state at every scrape (a few aggregate queries).

    ``repository`` (a :class:`vbs.repository.repo.Repository`, or None) is
    listed for its size at most every ``size_ttl`` seconds: listing a large
    S3 bucket at every scrape would be the expensive part.
    """

    def __init__(self, db: Any, repository: Any | None, size_ttl: float = 60.0) -> None:
        self.db = db
        self.repository = repository
        self.size_ttl = size_ttl
        self._size: tuple[float, int, int] | None = None  # (when, bytes, objects)
        self._size_lock = threading.Lock()

    def describe(self) -> list[Metric]:
        return []  # collected lazily: never touch the database at registration

    def collect(self) -> Iterator[Metric]:
        with self.db.session() as s:
            yield from self._jobs(s)
            yield from self._backups(s)
        yield from self._repository_size()

    # -- jobs -------------------------------------------------------------------

    def _jobs(self, s: Any) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("vbs_jobs", "Jobs kept in the database, by type and status.",
                                 labels=["type", "status"])
        for job_type, status, count in s.execute(
                select(Job.job_type, Job.status, func.count()).group_by(Job.job_type,
                                                                        Job.status)):
            jobs.add_metric([job_type, status], count)
        yield jobs

        now = utcnow()
        depth = s.execute(select(func.count()).where(or_(
            (Job.status == "INIT") & (or_(Job.run_after.is_(None), Job.run_after <= now)),
            (Job.status == "RUNNING") & (or_(Job.lease_owner.is_(None),
                                             Job.lease_expires_at < now)),
        ))).scalar_one()
        yield GaugeMetricFamily("vbs_job_queue_depth",
                                "Jobs waiting for a worker: INIT and due, or RUNNING with an "
                                "expired lease (to be resumed).", value=depth)
        losses = s.execute(select(func.coalesce(func.sum(Job.lease_losses), 0))).scalar_one()
        yield GaugeMetricFamily("vbs_job_lease_expiries",
                                "Times a worker lost a job's lease (it expired and another "
                                "worker resumed the job), over the jobs kept.", value=losses)

        durations: dict[str, list[float]] = defaultdict(list)
        for job_type, begin, end in s.execute(
                select(Job.job_type, Job.begin_time, Job.end_time)
                .where(Job.status.in_(("SUCCESS", "FAIL")), Job.begin_time.is_not(None),
                       Job.end_time.is_not(None))):
            durations[job_type].append(max(0.0, _stamp(end) - _stamp(begin)))
        hist = HistogramMetricFamily("vbs_job_duration_seconds",
                                     "Run time of finished jobs (begin to end), by type.",
                                     labels=["type"])
        for job_type, values in sorted(durations.items()):
            buckets = [(repr(b), sum(1 for v in values if v <= b)) for b in JOB_DURATION_BUCKETS]
            buckets.append(("+Inf", len(values)))
            hist.add_metric([job_type], buckets, sum_value=sum(values))
        yield hist

        read = new = stored = 0
        for (checkpoint,) in s.execute(select(Job.checkpoint).where(
                Job.job_type == _CREATE_JOB, Job.status == "SUCCESS")):
            stats = (checkpoint or {}).get("stats") or {}
            read += int(stats.get("bytes_read", 0))
            new += int(stats.get("bytes_new_plain", 0))
            stored += int(stats.get("bytes_new_stored", 0))
        for name, value, text in (
                ("vbs_backup_bytes_read", read, "Bytes read from volumes by backup jobs."),
                ("vbs_backup_bytes_new", new,
                 "Bytes of chunks the repository did not have yet (before compression)."),
                ("vbs_backup_bytes_stored", stored,
                 "Bytes those new chunks took in the repository (compressed, encrypted).")):
            yield GaugeMetricFamily(name, text + " Over the successful backup jobs kept.",
                                    value=value)
        yield GaugeMetricFamily(
            "vbs_backup_dedup_ratio",
            "vbs_backup_bytes_read / vbs_backup_bytes_new: bytes read for every new byte "
            "(1 = nothing deduplicated; 0 when nothing was read).",
            value=(read / new) if new else (0.0 if not read else float(read)))

    # -- backups ----------------------------------------------------------------

    def _backups(self, s: Any) -> Iterator[Metric]:
        per_volume = GaugeMetricFamily(
            "vbs_last_successful_backup_timestamp_seconds",
            "Creation time (Unix seconds) of the newest available backup of each volume.",
            labels=["project_id", "volume_id"])
        for project_id, volume_id, last in s.execute(
                select(Backup.project_id, Backup.volume_id, func.max(Backup.created_at))
                .where(Backup.status == "available")
                .group_by(Backup.project_id, Backup.volume_id)):
            per_volume.add_metric([project_id, volume_id], _stamp(last))
        yield per_volume
        per_policy = GaugeMetricFamily(
            "vbs_policy_last_successful_backup_timestamp_seconds",
            "Creation time (Unix seconds) of the newest available backup made by each policy.",
            labels=["project_id", "policy_id"])
        for project_id, policy_id, last in s.execute(
                select(Backup.project_id, Backup.policy_id, func.max(Backup.created_at))
                .where(Backup.status == "available", Backup.policy_id.is_not(None))
                .group_by(Backup.project_id, Backup.policy_id)):
            per_policy.add_metric([project_id, policy_id], _stamp(last))
        yield per_policy

    # -- repository -------------------------------------------------------------

    def _repository_size(self) -> Iterator[Metric]:
        if self.repository is None:
            return
        with self._size_lock:
            if self._size is None or time.monotonic() - self._size[0] > self.size_ttl:
                try:
                    total = count = 0
                    for info in self.repository.backend.list(""):
                        total += info.size
                        count += 1
                    self._size = (time.monotonic(), total, count)
                except Exception:  # a scrape must not fail because storage hiccups
                    log.warning("repository size: listing failed", exc_info=True)
            if self._size is None:
                return
            _, total, count = self._size
        yield GaugeMetricFamily("vbs_repository_size_bytes",
                                "Bytes of every object in the repository (listed at most "
                                "once a minute).", value=total)
        yield GaugeMetricFamily("vbs_repository_objects", "Objects in the repository.",
                                value=count)


class ApiMetrics:
    """The app's registry: per-process request metrics plus the shared state."""

    def __init__(self, db: Any, repository: Any | None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("vbs_api_requests", "API requests, by method, route "
                                "template and status code.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("vbs_api_request_duration_seconds",
                                 "API request latency, by method and route template.",
                                 ["method", "route"], registry=self.registry)
        self.registry.register(StateCollector(db, repository))


class _MetricsMiddleware:
    """Times every HTTP request, counts it by route template, logs an access line."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or _UNMATCHED
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            access_log.info("%s %s %d %.1fms", method, scope.get("path", ""), status,
                            elapsed * 1000)


def install_metrics(app: FastAPI) -> ApiMetrics:
    """Give ``app`` its registry (``app.state.metrics``) and the timing middleware.

    Call before the request-id middleware is added, so that this one runs
    inside it and its access lines carry the request id.
    """
    ctx = app.state.ctx
    metrics = ApiMetrics(ctx.db, ctx.repository)
    app.state.metrics = metrics
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    return metrics
