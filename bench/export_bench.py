#!/usr/bin/env python3
"""NBD export of a backup: time to first byte, random 4 KiB reads, sequential copy.

One run, same backup, same machine, reported side by side:

* ``ttfb_cold``: from spawning ``vbs repo export`` to the first 4 KiB read
  answered (process start, repository open with the passphrase, manifest and
  index load, handshake, one chunk fetched and decrypted);
* ``ttfb_connect``: on the running server, a new connection's handshake plus
  its first 4 KiB read of a chunk not read before;
* ``rand4k_p50/p99``: 4 KiB reads at random offsets (one at a time over one
  connection; cold: each mostly fetches a chunk not read before);
* ``seq``: ``nbdcopy`` of the export to a file vs ``vbs repo restore`` of the
  same backup to a file (both write sparse files on the same filesystem);
  MB/s = volume size / wall time.

Usage (image outside the repository; ../shared/bench/make_volume.py makes one):

  python3 ../shared/bench/make_volume.py generate $BENCH/vol-1g.raw --size 1G --seed 42
  .venv/bin/python bench/export_bench.py $BENCH/vol-1g.raw --work $BENCH/export-work \
      [--reads 2000] [--out $BENCH/results/export.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.support.nbd_client import NbdClient  # noqa: E402

VBS_BIN = os.environ.get("VBS_BIN", str(Path(sys.executable).with_name("vbs")))
PASSWORD = "vbs-bench-password"


def _vbs(repo: Path, *args: str) -> list[str]:
    return [VBS_BIN, "repo", "--repo", str(repo), "--no-progress", *args]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("image", type=Path)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    env = dict(os.environ, VBS_REPO_PASSWORD=PASSWORD)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    repo = args.work / "repo"
    size = args.image.stat().st_size
    subprocess.run(_vbs(repo, "init"), env=env, check=True, capture_output=True)
    t = time.monotonic()
    subprocess.run(_vbs(repo, "backup", str(args.image), "--id", "b"), env=env, check=True,
                   capture_output=True)
    backup_s = time.monotonic() - t
    subprocess.run(["sync"], check=True)

    # -- restore baseline ------------------------------------------------------------
    target = args.work / "restored.img"
    t = time.monotonic()
    subprocess.run(_vbs(repo, "restore", "b", str(target)), env=env, check=True,
                   capture_output=True)
    restore_s = time.monotonic() - t
    target.unlink()

    # -- export: cold time to first byte -------------------------------------------------
    t0 = time.monotonic()
    proc = subprocess.Popen(_vbs(repo, "export", "b", "--listen", "127.0.0.1:0"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        uri = proc.stdout.readline().strip()
        with NbdClient(uri) as c:
            c.pread(4096, 0)
            ttfb_cold = time.monotonic() - t0
            rng = random.Random(1)
            offsets = [rng.randrange(0, size - 4096) & ~4095 for _ in range(args.reads)]
            lat: list[float] = []
            for off in offsets:
                t = time.perf_counter()
                c.pread(4096, off)
                lat.append(time.perf_counter() - t)
            warm: list[float] = []
            for off in offsets[: args.reads // 2]:
                t = time.perf_counter()
                c.pread(4096, off)
                warm.append(time.perf_counter() - t)
        t = time.monotonic()
        with NbdClient(uri) as c:
            c.pread(4096, (size // 2 + 12345 * 4096) % (size - 4096) & ~4095)
            ttfb_connect = time.monotonic() - t
        proc.terminate()
        proc.wait(30)
        # -- sequential: nbdcopy of a fresh export (cold cache) ------------------------------
        proc = subprocess.Popen(_vbs(repo, "export", "b", "--listen", "127.0.0.1:0"), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        uri = proc.stdout.readline().strip()
        out = args.work / "nbdcopy.img"
        t = time.monotonic()
        subprocess.run(["nbdcopy", uri, str(out)], check=True)
        nbdcopy_s = time.monotonic() - t
        same = subprocess.run(["cmp", str(out), str(args.image)]).returncode == 0
        out.unlink()
    finally:
        proc.terminate()
        proc.wait(30)

    mb = size / 1e6
    result = {
        "image": str(args.image), "size_bytes": size, "backup_s": round(backup_s, 2),
        "ttfb_cold_s": round(ttfb_cold, 3), "ttfb_connect_s": round(ttfb_connect, 4),
        "rand4k_cold_p50_ms": round(statistics.median(lat) * 1e3, 3),
        "rand4k_cold_p99_ms": round(_pct(lat, 0.99) * 1e3, 3),
        "rand4k_warm_p50_ms": round(statistics.median(warm) * 1e3, 3),
        "rand4k_warm_p99_ms": round(_pct(warm, 0.99) * 1e3, 3),
        "nbdcopy_s": round(nbdcopy_s, 2), "nbdcopy_MBps": round(mb / nbdcopy_s, 1),
        "restore_s": round(restore_s, 2), "restore_MBps": round(mb / restore_s, 1),
        "nbdcopy_over_restore_time": round(nbdcopy_s / restore_s, 2),
        "nbdcopy_equals_image": same, "reads": args.reads,
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
