#!/usr/bin/env python3
"""Changed-block tracking: incrementals with and without it, against restic's.

One run, same machine, same bytes (../shared/bench/anchors.py protocol where
it applies: fresh repositories, ``sync`` plus a warm-up read of the input
before every timed step, whole-process wall clock from ``wait4``):

1. a reflink XFS is made in a sparse image file and loop-mounted under WORK;
2. a 4 GiB VM-like volume is generated on it (``make_volume.py generate``),
   snapshotted with ``cp --reflink`` and backed up in full by ``vbs repo``
   (repository A, then copied to B) and by restic;
3. ``make_volume.py mutate --percent 1`` then ``--percent 10`` (scattered
   64 KiB writes plus one 8 MiB region); after each, a new reflink snapshot
   is backed up three ways:

   * ``vbs+tracking``: the FIEMAP diff of the two snapshots
     (``vbs.volumes.changes.changed_ranges``, timed as its own process)
     fed to ``vbs repo backup --parent P --changed-ranges FILE`` (repo A);
   * ``vbs``: the same incremental without ranges (repo B, reads everything);
   * ``restic``: ``restic backup`` of the same file (its own change detection);

4. a 1 TiB sparse volume with 2 GiB of data (reflinked, nothing large is
   written) is backed up in full, then re-backed up unchanged with tracking.

Reported: wall seconds and bytes read per step (VBS: the engine's
``bytes_read``; restic: its ``total_bytes_processed``), changed bytes, and the
ratios the issue sets as targets.

  sudo .venv/bin/python bench/cbt_bench.py --work /var/tmp/cbt --out cbt.json
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED_BENCH = Path(os.environ.get("VBS_SHARED_BENCH", HERE.parent.parent / "shared" / "bench"))
MAKE_VOLUME = SHARED_BENCH / "make_volume.py"
VBS = [sys.executable, "-m", "vbs.cli"]
PASSWORD = "vbs-bench-password"
GIB = 1 << 30
MIB = 1 << 20
FICLONERANGE = 0x4020940D
RANGES_SCRIPT = (
    "import json,sys;from pathlib import Path;from vbs.volumes.changes import changed_ranges;"
    "r=changed_ranges(Path(sys.argv[1]),Path(sys.argv[2]),clones=True);"
    "assert r is not None,'no FIEMAP';json.dump([list(x) for x in r],open(sys.argv[3],'w'))"
)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall seconds of the whole child process (wait4), and its stdout."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         stdin=subprocess.DEVNULL, text=True)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{err}")
    return wall, out


def warm(path: Path) -> None:
    """sync, then read the data extents of PATH once (holes need no page cache;
    ``cat`` of a 1 TiB sparse file would read a terabyte of zeros)."""
    subprocess.run(["sync"], check=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        size, pos = os.fstat(fd).st_size, 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            for off in range(start, end, 8 * MIB):
                os.pread(fd, min(8 * MIB, end - off), off)
            pos = end
    finally:
        os.close(fd)


def reflink(src: Path, dst: Path) -> None:
    subprocess.run(["cp", "--reflink=always", str(src), str(dst)], check=True)


class Xfs:
    def __init__(self, work: Path, size: str) -> None:
        self.image, self.mnt = work / "xfs.img", work / "mnt"
        self.size, self.device = size, ""

    def __enter__(self) -> Path:
        self.mnt.mkdir(parents=True, exist_ok=True)
        subprocess.run(["truncate", "-s", self.size, str(self.image)], check=True)
        subprocess.run(["mkfs.xfs", "-q", "-f", "-m", "reflink=1", str(self.image)], check=True)
        self.device = subprocess.run(["losetup", "--find", "--show", str(self.image)],
                                     check=True, capture_output=True, text=True).stdout.strip()
        subprocess.run(["mount", "-t", "xfs", self.device, str(self.mnt)], check=True)
        return self.mnt

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["umount", str(self.mnt)], check=False)
        subprocess.run(["losetup", "-d", self.device], check=False)
        self.image.unlink(missing_ok=True)


def vbs_backup(repo: Path, src: Path, *extra: str) -> tuple[float, dict[str, Any]]:
    env = dict(os.environ, VBS_REPO_PASSWORD=PASSWORD)
    warm(src)
    wall, out = timed([*VBS, "repo", "--repo", str(repo), "--json", "backup", str(src), *extra],
                      env)
    doc: dict[str, Any] = json.loads(out)
    return wall, doc


def restic(repo: Path, cache: Path, live: Path) -> tuple[float, int]:
    env = dict(os.environ, RESTIC_PASSWORD=PASSWORD)
    warm(live)
    wall, out = timed(["restic", "-r", str(repo), "--cache-dir", str(cache), "backup",
                       "--json", "--host", "vbsbench", str(live)], env)
    summary = [json.loads(line) for line in out.splitlines()
               if line.startswith("{") and '"summary"' in line][-1]
    return wall, int(summary["total_bytes_processed"])


def relink(target: Path, link: Path) -> None:
    tmp = link.with_name(link.name + ".tmp")
    tmp.unlink(missing_ok=True)
    os.link(target, tmp)
    os.replace(tmp, link)


def ranges(a: Path, b: Path, out: Path) -> tuple[float, int]:
    wall, _ = timed([sys.executable, "-c", RANGES_SCRIPT, str(a), str(b), str(out)])
    return wall, sum(n for _, n in json.loads(out.read_text()))


def run(work: Path, size: str, percents: list[float], out: Path | None) -> dict[str, Any]:
    results: dict[str, Any] = {"volume_size": size, "rounds": []}

    def save() -> None:  # after every phase: a crash keeps what was measured
        if out is not None:
            out.write_text(json.dumps(results, indent=1))

    with Xfs(work, "24G") as mnt:
        env = dict(os.environ, VBS_REPO_PASSWORD=PASSWORD, RESTIC_PASSWORD=PASSWORD)
        vol = mnt / "vol.img"
        subprocess.run([sys.executable, str(MAKE_VOLUME), "generate", str(vol), "--size", size,
                        "--seed", "42"], check=True, stdout=subprocess.DEVNULL)
        repo_a, repo_b = work / "vbs-a", work / "vbs-b"
        rrepo, rcache = work / "restic", work / "restic-cache"
        for d in (repo_a, repo_b, rrepo, rcache):
            shutil.rmtree(d, ignore_errors=True)
        subprocess.run([*VBS, "repo", "--repo", str(repo_a), "init"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["restic", "-r", str(rrepo), "init", "--repository-version", "2"],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        live = mnt / "live" / "vol.img"
        live.parent.mkdir()
        prev = mnt / "snap-0.img"
        reflink(vol, prev)
        relink(prev, live)
        wall, doc = vbs_backup(repo_a, prev, "--id", "full")
        results["full"] = {"vbs_seconds": wall, "vbs_bytes_read": doc["stats"]["bytes_read"]}
        wall, processed = restic(rrepo, rcache, live)
        results["full"].update(restic_seconds=wall, restic_bytes_read=processed)
        shutil.copytree(repo_a, repo_b)
        parent_a = parent_b = "full"
        for i, pct in enumerate(percents, 1):
            subprocess.run([sys.executable, str(MAKE_VOLUME), "mutate", str(vol), "--percent",
                            str(pct), "--seed", str(i)], check=True, stdout=subprocess.DEVNULL)
            snap = mnt / f"snap-{i}.img"
            reflink(vol, snap)
            relink(snap, live)
            hints = work / f"ranges-{i}.json"
            t_fiemap, changed = ranges(prev, snap, hints)
            t_track, tracked = vbs_backup(repo_a, snap, "--id", f"t{i}", "--parent", parent_a,
                                          "--changed-ranges", str(hints))
            t_plain, plain = vbs_backup(repo_b, snap, "--id", f"p{i}", "--parent", parent_b)
            t_restic, r_read = restic(rrepo, rcache, live)
            st = tracked["stats"]
            results["rounds"].append({
                "percent": pct, "changed_bytes": changed,
                "tracking": {"seconds": t_fiemap + t_track, "fiemap_seconds": t_fiemap,
                             "bytes_read": st["bytes_read"], "chunks_sampled": st["chunks_sampled"],
                             "sample_bytes_max": st["chunks_sampled"] * 65536,
                             "change_tracking": tracked["change_tracking"]},
                "no_tracking": {"seconds": t_plain, "bytes_read": plain["stats"]["bytes_read"]},
                "restic": {"seconds": t_restic, "bytes_read": r_read},
                "restic_over_tracking": t_restic / (t_fiemap + t_track),
                "read_over_changed_plus_sample": st["bytes_read"] / (
                    changed + st["chunks_sampled"] * 65536),
            })
            parent_a, parent_b, prev = f"t{i}", f"p{i}", snap
            save()
        results["tib"] = tib(mnt, work, env)
        save()
    return results


def tib(mnt: Path, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """1 TiB sparse volume, 2 GiB of reflinked data: full, then unchanged with tracking."""
    repo = work / "vbs-tib"
    shutil.rmtree(repo, ignore_errors=True)
    subprocess.run([*VBS, "repo", "--repo", str(repo), "init"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    seed, vol = mnt / "seed.bin", mnt / "tib.img"
    seed.write_bytes(os.urandom(64 * MIB))
    src = os.open(seed, os.O_RDONLY)
    with open(vol, "wb") as f:
        f.truncate(1 << 40)
        for i in range(32):
            arg = struct.pack("qQQQ", src, 0, 64 * MIB, i * 32 * GIB)
            fcntl.ioctl(f.fileno(), FICLONERANGE, arg)
    os.close(src)
    s0, s1 = mnt / "tib-0.img", mnt / "tib-1.img"
    reflink(vol, s0)
    t_full, full = vbs_backup(repo, s0, "--id", "tib-full")
    reflink(vol, s1)
    hints = work / "ranges-tib.json"
    t_fiemap, changed = ranges(s0, s1, hints)
    t_again, again = vbs_backup(repo, s1, "--id", "tib-again", "--parent", "tib-full",
                                "--changed-ranges", str(hints))
    return {"full_seconds": t_full, "full_bytes_read": full["stats"]["bytes_read"],
            "unchanged_seconds": t_fiemap + t_again, "fiemap_seconds": t_fiemap,
            "changed_bytes": changed, "unchanged_bytes_read": again["stats"]["bytes_read"],
            "chunks_sampled": again["stats"]["chunks_sampled"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--size", default="4G")
    ap.add_argument("--percents", default="1,10")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    res = run(a.work, a.size, [float(p) for p in a.percents.split(",")], a.out)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
