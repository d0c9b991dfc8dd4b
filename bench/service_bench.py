#!/usr/bin/env python3
"""The service's cost on top of the engine: the seed request against ``vbs repo backup``.

One run, same image, same filesystem, warm page cache for both:

  service  a fresh ``vbs serve`` (own data dir, fresh repository), the image
           imported as a volume (``vbs admin volume import``, nothing copied),
           then the wall clock from ``POST /v2/{p}/cloudbackups`` to the job
           reading SUCCESS (polled every 250 ms, as a client would);
  engine   ``vbs repo --repo FRESH init`` then ``vbs repo --repo FRESH backup
           IMG`` (whole-process wall clock each, ``VBS_REPO_PASSWORD`` set);
           ``vbs repo list`` on the fresh repository is timed too: process
           start-up plus the passphrase KDF, a cost the service (key file,
           long-running) does not pay, so the ratio is also shown without it.

The service's time is then split, so it is clear what the overhead is:

  queue           API call -> the job's ``begin_time`` (claim);
  snapshot        the driver snapshot of the volume, timed again afterwards on
                  the same code path (``FileVolumeDriver.snapshot``): a reflink
                  where the filesystem has one, a full sparse copy elsewhere
                  (ext4);
  engine          ``begin_time`` -> the manifest root's ``created`` stamp,
                  minus the snapshot;
  finalise        manifest stored -> the job's ``end_time`` (records, snapshot
                  removal); the rest is polling.

Usage (from the repository root; the image and the work dir on one filesystem):

  .venv/bin/python bench/service_bench.py --work $BENCH/service           # generates
  .venv/bin/python bench/service_bench.py --image $BENCH/vol-2g.raw --reps 3

The image is ``make_volume.py generate IMG --size 2G --seed 42`` from
``../shared/bench`` (generated into the work dir when ``--image`` is not
given). ``--json FILE`` also writes the numbers. Timings live here only;
the tests never assert on time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED_BENCH = Path(os.environ.get("VBS_SHARED_BENCH", ROOT.parent / "shared" / "bench"))
VBS_BIN = os.environ.get("VBS_BIN", str(Path(sys.executable).with_name("vbs")))
PASSWORD = "vbs-bench-password"
ADMIN_PASSWORD = "vbs-bench-admin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VBS_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def _warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass


def _sync() -> None:
    os.sync()


def _epoch(stamp: str) -> float:
    """Seconds since the epoch of an ISO time stamp (naive ones are UTC)."""
    when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.monotonic()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    return elapsed


class Server:
    def __init__(self, data_dir: Path, import_root: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = _env({"VBS_ADMIN_PASSWORD": ADMIN_PASSWORD,
                         "VBS_VOLUMES__IMPORT_ROOTS": str(import_root)})
        self.log = (data_dir.parent / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [VBS_BIN, "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"vbs serve exited: see {self.log.name}")
            try:
                if httpx.get(self.base + "/", timeout=2).status_code == 300:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("vbs serve did not answer within 60 s")
            time.sleep(0.1)
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
        r = httpx.post(self.base + "/identity/v3/auth/tokens", json=body, timeout=30)
        r.raise_for_status()
        self.token = r.headers["X-Subject-Token"]
        self.project = r.json()["token"]["project"]["id"]
        self.http = httpx.Client(base_url=self.base, timeout=60,
                                 headers={"X-Auth-Token": self.token})

    def import_volume(self, image: Path) -> str:
        out = subprocess.run([VBS_BIN, "admin", "volume", "import", str(image), "--project",
                              "admin", "--name", "bench", "--data-dir", str(self.data_dir)],
                             env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"volume import failed:\n{out.stdout}{out.stderr}")
        return out.stdout.strip().splitlines()[-1]

    def backup(self, volume_id: str) -> tuple[float, dict[str, Any]]:
        """Seconds from the API call to the job reading SUCCESS, and the job
        (with ``posted_at``, the wall clock of the call, added)."""
        posted = time.time()
        t0 = time.monotonic()
        r = self.http.post(f"/v2/{self.project}/cloudbackups",
                           json={"backup": {"volume_id": volume_id, "name": "bench"}})
        r.raise_for_status()
        job_id = r.json()["job_id"]
        while True:
            job = self.http.get(f"/v1/{self.project}/jobs/{job_id}").json()
            if job["status"] in ("SUCCESS", "FAIL"):
                elapsed = time.monotonic() - t0
                break
            time.sleep(0.25)
        if job["status"] != "SUCCESS":
            raise SystemExit(f"backup job failed: {job}")
        job["posted_at"] = posted
        return elapsed, job

    def manifest_created(self, backup_id: str) -> float:
        """When the engine finished: the ``created`` stamp of the backup's manifest root."""
        sys.path.insert(0, str(ROOT / "src"))
        from vbs.repository.backends import LocalBackend
        from vbs.repository.repo import Repository

        repo = Repository.open(LocalBackend(self.data_dir / "repo"),
                               key_file_bytes=(self.data_dir / "master.key").read_bytes())
        return _epoch(repo.project(self.project).load_manifest(backup_id).created)

    def snapshot_seconds(self, volume_id: str) -> tuple[float, str]:
        """The driver snapshot the backup job made, timed again on the same code path."""
        sys.path.insert(0, str(ROOT / "src"))
        from vbs.volumes import FileVolumeDriver

        driver = FileVolumeDriver(self.data_dir / "volumes")
        snap_id = str(uuid.uuid4())
        t0 = time.monotonic()
        handle = driver.snapshot(volume_id, snap_id)
        elapsed = time.monotonic() - t0
        driver.delete_snapshot(snap_id)
        return elapsed, str(handle.method)

    def stop(self) -> None:
        self.http.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def one_rep(image: Path, work: Path) -> dict[str, float | str]:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    server = Server(work / "data", image.parent)
    try:
        volume_id = server.import_volume(image)
        _sync()
        _warm(image)
        service, job = server.backup(volume_id)
        engine_done = server.manifest_created(job["entities"]["backup_id"])
        _sync()
        _warm(image)
        snapshot, method = server.snapshot_seconds(volume_id)
    finally:
        server.stop()
    repo = work / "cli-repo"
    env = dict(os.environ, VBS_REPO_PASSWORD=PASSWORD)
    init = _timed([VBS_BIN, "repo", "--repo", str(repo), "--no-progress", "init"], env)
    opened = _timed([VBS_BIN, "repo", "--repo", str(repo), "--no-progress", "list"], env)
    _sync()
    _warm(image)
    cli = _timed([VBS_BIN, "repo", "--repo", str(repo), "--no-progress", "backup", str(image)],
                 env)
    begin, end = _epoch(job["begin_time"]), _epoch(job["end_time"])
    return {"service_s": service, "queue_s": begin - job["posted_at"],
            "run_to_manifest_s": engine_done - begin, "finalise_s": end - engine_done,
            "snapshot_s": snapshot, "snapshot_method": method,
            "cli_init_s": init, "cli_open_s": opened, "cli_backup_s": cli}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, help="existing image (default: generate WORK/vol-2g.raw)")
    ap.add_argument("--work", type=Path, default=None,
                    help="work dir on the image's filesystem (default: IMAGE_DIR/service-bench)")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)

    work = args.work or (args.image.parent / "service-bench" if args.image else None)
    if work is None:
        ap.error("give --image or --work")
    work = work.absolute()
    work.mkdir(parents=True, exist_ok=True)
    image = args.image.absolute() if args.image else work / "vol-2g.raw"
    if not image.exists():
        subprocess.run([sys.executable, str(SHARED_BENCH / "make_volume.py"), "generate",
                        str(image), "--size", "2G", "--seed", "42"], check=True)
    if os.stat(image).st_dev != os.stat(work).st_dev:
        print(f"warning: {image} and {work} are on different filesystems", file=sys.stderr)

    reps = [one_rep(image, work / f"rep{n}") for n in range(args.reps)]

    def med(key: str) -> float:
        return statistics.median(float(r[key]) for r in reps)

    service, cli, snap = med("service_s"), med("cli_backup_s"), med("snapshot_s")
    run = med("run_to_manifest_s")
    over = service - cli
    print(f"image            {image} ({image.stat().st_size / 2**30:.2f} GiB), "
          f"{args.reps} rep(s), medians")
    print(f"service          {service:8.2f} s   API call -> job SUCCESS")
    print(f"  queue          {med('queue_s'):8.2f} s   API call -> job begin_time")
    print(f"  snapshot       {snap:8.2f} s   ({reps[0]['snapshot_method']}; same driver call, "
          f"re-timed)")
    print(f"  engine         {run - snap:8.2f} s   (job begin -> manifest stored, minus snapshot)")
    print(f"  finalise       {med('finalise_s'):8.2f} s   manifest stored -> job end_time")
    print(f"  poll/other     {service - med('queue_s') - run - med('finalise_s'):8.2f} s")
    print(f"vbs repo backup  {cli:8.2f} s   (whole process; init {med('cli_init_s'):.2f} s "
          f"not counted)")
    opened = med("cli_open_s")
    print(f"  of which open  {opened:8.2f} s   (start-up + passphrase KDF: `vbs repo list`)")
    print(f"ratio            {service / cli:8.3f}    service / engine "
          f"({100 * over / cli:+.1f} %; bar: < +10 %)")
    print(f"ratio w/o open   {service / (cli - opened):8.3f}    service / (backup - open) "
          f"({100 * (service - cli + opened) / (cli - opened):+.1f} %)")
    if over > 0:
        print(f"overhead         {over:8.2f} s, the snapshot alone {snap:.2f} s "
              f"({100 * snap / over:.0f} % of it); without it {100 * (over - snap) / cli:+.1f} %")
    if args.json:
        args.json.write_text(json.dumps({"image": str(image), "reps": reps}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
