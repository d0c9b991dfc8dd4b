#!/usr/bin/env python3
"""Native backup API throughput and latency on loopback (not a test).

What it does:

1. starts ``vbs serve --processes N`` (default 1) on a free loopback port with
   a fresh data dir (or uses ``--url`` with ``--db-url`` and credentials of a
   running server);
2. inserts ``--records`` (default 10 000) ``available`` backup rows for the
   admin project straight into the server's database, in one transaction,
   through the SQLAlchemy model (:class:`vbs.db.models_backups.Backup`);
3. drives a bounded load generator (``--concurrency`` simulated clients, each
   on its own keep-alive connection, ``--requests`` requests per scenario,
   after a short warm-up) against:

   * ``list-first``  ``GET /v3/{p}/backups/detail?limit=100``
   * ``list-deep``   the same with ``marker`` = the 9 000th newest backup
     (keyset paging: a deep page should cost what the first one does)
   * ``show``        ``GET /v2/{p}/backups/{id}`` over random ids
   * ``show-v3``     ``GET /v3/{p}/backups/{id}`` over the same ids
   * ``list-churn``  list-first while another connection commits an update
     of the oldest backup ``--churn`` times a second (default 50; 0 skips
     it): on SQLite a page is reused only while the database is unchanged
     (``vbs.db.read_cache``), so this is the page as computed, not reused

and prints requests/s (requests / wall-clock of the scenario), the p50,
p99 and max of the per-request latency, and the server's CPU per request
(user + system of every API process, from /proc; not with ``--url``): on a
shared VM whose steal time moves the latencies by tens of percent between
runs, the CPU per request is the figure to compare changes by. Every
response is checked (status, JSON body, page length or backup status), so a
fast error cannot pass for a result.

Load generators (``--client``):

* ``raw`` (default): one asyncio task per simulated client, each writing
  HTTP/1.1 requests on its own keep-alive socket and reading the answer by
  ``Content-Length``. The server and the load generator share the machine's
  cores, and the point is to measure the server: httpx costs about as much
  CPU per request as the server's whole budget (its per-request machinery in
  Python, in 8 threads fighting for one GIL), so with it on 2 cores the
  latencies mostly measured the client. The raw client spends its CPU on
  the JSON check of each body (orjson: a 100-item page parses in ~0.15 ms
  instead of ~0.5 ms), nothing else. A request's latency is taken
  when its last body byte is read, before the check.
* ``httpx``: ``--concurrency`` threads each with its own keep-alive
  ``httpx.Client``, as a stock Python client would call.

With ``--processes N`` (N > 1) the server is ``vbs serve --processes N``:
N pre-forked API processes on one listening socket (``vbs.cli.serve_multi``),
so the API runs on N interpreters instead of one GIL.

Usage (from the repository root)::

  .venv/bin/python bench/api_bench.py
  .venv/bin/python bench/api_bench.py --processes 2
  .venv/bin/python bench/api_bench.py --client httpx --requests 600
  .venv/bin/python bench/api_bench.py --requests 5000 --concurrency 16 --json out.json
  .venv/bin/python bench/api_bench.py --url http://127.0.0.1:8776 \
      --db-url sqlite:////var/lib/vbs/vbs.db --password ...
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vbs.db.models_backups import Backup  # noqa: E402

__all__ = ["Result", "main"]

PASSWORD = "vbs-bench-admin-pw"


@dataclass(frozen=True)
class Result:
    """One scenario: ``requests`` over ``seconds`` of wall clock."""

    name: str
    requests: int
    concurrency: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_ms: float | None = None
    """Server CPU (user + system, every API process) per request; None with ``--url``.
    Less noisy than the latencies on a shared VM: steal time and the load
    generator's share of the cores do not enter it."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


ServerCpu = Callable[[], float]
"""CPU seconds the server has used so far."""


@contextmanager
def _server(data_dir: Path, processes: int = 1) -> Iterator[tuple[str, ServerCpu]]:
    """``vbs serve --processes N`` on loopback; yields the base URL to load."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VBS_")}
    env["VBS_ADMIN_PASSWORD"] = PASSWORD
    env["PYTHONPATH"] = str(ROOT / "src")
    log = (data_dir.parent / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vbs.cli", "serve", "--data-dir", str(data_dir),
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--processes", str(processes)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"vbs serve exited with {proc.returncode}")
            try:
                if httpx.get(url + "/", timeout=2).status_code == 300:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("vbs serve did not answer within 60 s")
            time.sleep(0.1)
        # every process answers before the load starts (the kernel spreads
        # connections over those that accept; a late one would skew the first run)
        time.sleep(1.0 if processes > 1 else 0.0)
        yield url, lambda: tree_cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def _login(url: str, user: str, password: str, project: str) -> tuple[str, str]:
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
    }}
    r = httpx.post(url + "/identity/v3/auth/tokens", json=body, timeout=30)
    r.raise_for_status()
    return r.headers["X-Subject-Token"], str(r.json()["token"]["project"]["id"])


def insert_backups(db_url: str, project_id: str, count: int) -> list[str]:
    """``count`` available backups, one microsecond apart; ids oldest first."""
    from sqlalchemy import create_engine, insert

    base = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    volume_id = str(uuid.uuid4())
    rows: list[dict[str, object]] = []
    for i, ident in enumerate(ids):
        at = base + dt.timedelta(microseconds=i)
        rows.append({
            "id": ident, "project_id": project_id, "user_id": None, "volume_id": volume_id,
            "snapshot_id": None, "name": f"bench-{i:05d}", "description": None,
            "status": "available", "fail_reason": None, "size_gb": 1,
            "volume_size_bytes": 1 << 30, "object_count": 16, "stored_bytes": 1 << 20,
            "container": None, "availability_zone": "nova", "is_incremental": i > 0,
            "parent_id": ids[i - 1] if i else None, "bootable": False, "progress": 100,
            "source": "native", "policy_id": None, "image_source": False, "meta": {},
            "tags": [], "created_at": at, "updated_at": at, "data_timestamp": at,
        })
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(insert(Backup), rows)
    engine.dispose()
    return ids


@contextmanager
def churn(db_url: str, backup_id: str, per_second: float) -> Iterator[None]:
    """Commit an update of ``backup_id`` (its description) ``per_second``
    times a second from another connection while the block runs."""
    from sqlalchemy import create_engine, update

    stop = threading.Event()
    engine = create_engine(db_url)

    def write() -> None:
        n = 0
        while not stop.wait(1 / per_second):
            n += 1
            with engine.begin() as conn:
                conn.execute(update(Backup).where(Backup.id == backup_id)
                             .values(description=f"churn {n}"))

    thread = threading.Thread(target=write, name="churn", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        with engine.connect() as conn:  # fold the WAL back, as the server's next commit would
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()


Check = Callable[[int, bytes], None]
"""Raises SystemExit unless (status, body) is the expected answer."""


def _summary(name: str, latencies: list[float], wall: float, concurrency: int,
             server_cpu: float | None = None) -> Result:
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    n = len(latencies)
    return Result(name, n, concurrency, round(wall, 3), round(n / wall, 1),
                  round(q[49] * 1000, 2), round(q[98] * 1000, 2),
                  round(latencies[-1] * 1000, 2),
                  None if server_cpu is None else round(server_cpu / n * 1000, 2))


def run_scenario_httpx(name: str, url: str, token: str, paths: Callable[[int], str],
                       check: Check, *, requests: int, concurrency: int,
                       warmup: int = 50, server_cpu: ServerCpu | None = None) -> Result:
    """``requests`` GETs of ``paths(i)`` from ``concurrency`` httpx threads."""
    local = threading.local()
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": "volume 3.64"}

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, headers=headers, timeout=60)
        c: httpx.Client = local.client
        return c

    def one(i: int) -> float:
        start = time.perf_counter()
        resp = client().get(paths(i))
        elapsed = time.perf_counter() - start
        check(resp.status_code, resp.content)
        return elapsed

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(warmup)))
        cpu0 = server_cpu() if server_cpu else 0.0
        start = time.perf_counter()
        latencies = list(pool.map(one, range(requests)))
        wall = time.perf_counter() - start
    cpu = (server_cpu() - cpu0) if server_cpu else None
    return _summary(name, latencies, wall, concurrency, cpu)


async def _raw_client(host: str, port: int, head: bytes, paths: Callable[[int], str],
                      check: Check, todo: Iterator[int], latencies: list[float]) -> None:
    """One simulated client: keep-alive HTTP/1.1 on one socket until ``todo`` runs out."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for i in todo:
            request = b"GET " + paths(i).encode() + b" HTTP/1.1\r\n" + head
            start = time.perf_counter()
            writer.write(request)
            header = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                if key.lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            check(int(header[9:12]), body)
    finally:
        writer.close()


def run_scenario_raw(name: str, url: str, token: str, paths: Callable[[int], str],
                     check: Check, *, requests: int, concurrency: int,
                     warmup: int = 50, server_cpu: ServerCpu | None = None) -> Result:
    """``requests`` GETs of ``paths(i)`` from ``concurrency`` asyncio socket clients."""
    parts = httpx.URL(url)
    host, port = parts.host, parts.port or 80
    head = (f"Host: {host}:{port}\r\nX-Auth-Token: {token}\r\n"
            "OpenStack-API-Version: volume 3.64\r\nAccept: application/json\r\n\r\n"
            ).encode()

    async def drive(count: int) -> tuple[list[float], float]:
        todo = iter(range(count))  # shared: each client takes the next index
        latencies: list[float] = []
        start = time.perf_counter()
        await asyncio.gather(*(_raw_client(host, port, head, paths, check, todo, latencies)
                               for _ in range(concurrency)))
        return latencies, time.perf_counter() - start

    asyncio.run(drive(warmup))
    cpu0 = server_cpu() if server_cpu else 0.0
    latencies, wall = asyncio.run(drive(requests))
    cpu = (server_cpu() - cpu0) if server_cpu else None
    return _summary(name, latencies, wall, concurrency, cpu)


def _fail(what: str, status: int, body: bytes) -> None:
    raise SystemExit(f"bad {what} answer {status}: {body[:300]!r}")


def _page_check(expected: int) -> Check:
    def check(status: int, body: bytes) -> None:
        if status != 200 or len(orjson.loads(body)["backups"]) != expected:
            _fail("list", status, body)
    return check


def _show_check(status: int, body: bytes) -> None:
    if status != 200 or orjson.loads(body)["backup"]["status"] != "available":
        _fail("show", status, body)


def bench(url: str, db_url: str | None, user: str, password: str, project: str,
          records: int, requests: int, concurrency: int, client: str = "raw",
          server_cpu: ServerCpu | None = None, churn_per_s: float = 50) -> list[Result]:
    token, project_id = _login(url, user, password, project)
    if db_url is None:
        raise SystemExit("--db-url is needed to insert the records")
    t0 = time.perf_counter()
    ids = insert_backups(db_url, project_id, records)
    print(f"inserted {records} backups for project {project_id} "
          f"in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    newest_first = ids[::-1]
    deep = newest_first[min(9000, records - 101)]
    rng = random.Random(7)
    show_ids = [rng.choice(ids) for _ in range(requests + 100)]
    p = project_id
    run_scenario = run_scenario_raw if client == "raw" else run_scenario_httpx
    results = [
        run_scenario("list-first  GET /v3/{p}/backups/detail?limit=100", url, token,
                     lambda i: f"/v3/{p}/backups/detail?limit=100", _page_check(100),
                     requests=requests, concurrency=concurrency, server_cpu=server_cpu),
        run_scenario("list-deep   GET /v3/{p}/backups/detail?limit=100&marker=#9000", url,
                     token, lambda i: f"/v3/{p}/backups/detail?limit=100&marker={deep}",
                     _page_check(100), requests=requests, concurrency=concurrency,
                     server_cpu=server_cpu),
        run_scenario("show        GET /v2/{p}/backups/{id}", url, token,
                     lambda i: f"/v2/{p}/backups/{show_ids[i]}", _show_check,
                     requests=requests, concurrency=concurrency, server_cpu=server_cpu),
        run_scenario("show-v3     GET /v3/{p}/backups/{id}", url, token,
                     lambda i: f"/v3/{p}/backups/{show_ids[i]}", _show_check,
                     requests=requests, concurrency=concurrency, server_cpu=server_cpu),
    ]
    # last: the commits leave a long WAL behind, which slowed the reads after it
    if churn_per_s > 0:
        with churn(db_url, ids[0], churn_per_s):
            results.append(run_scenario(
                f"list-churn  list-first, {churn_per_s:g} commits/s by another connection",
                url, token, lambda i: f"/v3/{p}/backups/detail?limit=100", _page_check(100),
                requests=requests, concurrency=concurrency, server_cpu=server_cpu))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a running server (default: start one)")
    ap.add_argument("--db-url", help="its database URL (required with --url)")
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", default=PASSWORD)
    ap.add_argument("--project", default="admin")
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=2_000, help="per scenario")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--processes", type=int, default=1,
                    help="API processes serving the load (vbs serve --processes; default 1)")
    ap.add_argument("--client", choices=["raw", "httpx"], default="raw",
                    help="load generator (see the module docstring; default raw)")
    ap.add_argument("--churn", type=float, default=50,
                    help="commits a second during list-churn (0: skip that scenario)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    if args.records < 201:
        ap.error("--records must be at least 201")

    def go(url: str, db_url: str | None, cpu: ServerCpu | None = None) -> list[Result]:
        return bench(url, db_url, args.user, args.password, args.project, args.records,
                     args.requests, args.concurrency, args.client, cpu, args.churn)

    if args.url:
        results = go(args.url.rstrip("/"), args.db_url)
    else:
        with tempfile.TemporaryDirectory(prefix="vbs-api-bench-") as tmp:
            data_dir = Path(tmp) / "data"
            with _server(data_dir, args.processes) as (url, cpu):
                results = go(url, f"sqlite:///{data_dir / 'vbs.db'}", cpu)
    print(f"client={args.client} processes={args.processes}", file=sys.stderr)
    print(f"{'scenario':<66} {'N':>6} {'conc':>4} {'req/s':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'cpu ms':>7}")
    for r in results:
        cpu_ms = "-" if r.server_cpu_ms is None else r.server_cpu_ms
        print(f"{r.name:<66} {r.requests:>6} {r.concurrency:>4} {r.rps:>8} {r.p50_ms:>8} "
              f"{r.p99_ms:>8} {r.max_ms:>8} {cpu_ms:>7}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
