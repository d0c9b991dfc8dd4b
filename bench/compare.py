#!/usr/bin/env python3
"""VBS against restic and borg on one disk image, in one run, same protocol.

This reuses the anchor harness of ../shared/bench/anchors.py unchanged (fresh
repositories, sync, warm page cache, whole-process wall clock, CPU and peak
RSS from wait4) and adds one more tool configuration, ``vbs``, driven through
the ``vbs repo`` command exactly like the others are driven through theirs:

  init     vbs repo --repo R/repo init
  full     vbs repo --repo R/repo backup L --id full
  incr     vbs repo --repo R/repo backup L --id incr --parent full
  restore  vbs repo --repo R/repo restore incr R/restore/<L>

Usage (from the repository root, images outside it):

  python3 ../shared/bench/make_volume.py generate $BENCH/vol-2g.raw --size 2G --seed 42
  .venv/bin/python bench/compare.py run $BENCH/vol-2g.raw --reps 3 \
      --tools vbs,restic --out $BENCH/results/compare-2g.json --work $BENCH/work
  .venv/bin/python bench/compare.py report $BENCH/results/compare-2g.json

``report`` prints the anchor tables plus a ratio table (restic time / vbs
time, repository sizes against restic's).

Before a ``run`` the ``vbs`` package is byte-compiled (``compileall``), as
``pip install`` does: the checkout's venv is an editable install, and with
``PYTHONDONTWRITEBYTECODE`` set (as on the machines we measure on) every
``vbs`` process would otherwise compile its modules again, 0.07-0.15 s per
command that no installed vbs pays.
"""

from __future__ import annotations

import compileall
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED_BENCH = Path(os.environ.get("VBS_SHARED_BENCH", HERE.parent.parent / "shared" / "bench"))
sys.path.insert(0, str(SHARED_BENCH))

import anchors  # noqa: E402  (the shared harness, imported, not copied)

VBS_BIN = os.environ.get("VBS_BIN", str(Path(sys.executable).with_name("vbs")))
VBS_PASSWORD = "vbs-bench-password"


class Tool(anchors.Tool):
    """anchors.Tool plus the ``vbs`` kind."""

    def __init__(self, name: str, spec: dict, rep_dir: Path, live: Path) -> None:
        if spec["kind"] != "vbs":
            super().__init__(name, spec, rep_dir, live)
            return
        self.name, self.spec, self.dir, self.live = name, spec, rep_dir, live
        self.repo = rep_dir / "repo"
        self.restore_dir = rep_dir / "restore"
        self.env = dict(os.environ, VBS_REPO_PASSWORD=VBS_PASSWORD)

    def _vbs(self, *args: str) -> list[str]:
        return [VBS_BIN, "repo", "--repo", str(self.repo), "--no-progress", *args]

    def init_cmd(self) -> list[str]:
        if self.spec["kind"] != "vbs":
            return super().init_cmd()
        return self._vbs("init")

    def backup_cmd(self, archive: str) -> list[str]:
        if self.spec["kind"] != "vbs":
            return super().backup_cmd(archive)
        parent = ["--parent", "full"] if archive != "full" else []
        return self._vbs("backup", str(self.live), "--id", archive, *parent)

    def restore_cmd(self, archive: str) -> list[str]:
        if self.spec["kind"] != "vbs":
            return super().restore_cmd(archive)
        target = self.restored_file()
        target.parent.mkdir(parents=True, exist_ok=True)
        return self._vbs("restore", archive, str(target), "--overwrite")

    def cache_dir(self) -> Path:
        if self.spec["kind"] != "vbs":
            return super().cache_dir()
        return self.dir / "cache"  # vbs keeps no client cache


anchors.Tool = Tool  # type: ignore[misc]
anchors.TOOLS["vbs"] = {"kind": "vbs"}


def ratios(path: str) -> str:
    res = json.loads(Path(path).read_text())
    tools = res["tools"]
    if "vbs" not in tools or "restic" not in tools:
        return ""
    size = res["logical_bytes"]
    med = statistics.median
    lines = [
        "| op | vbs median s | vbs MB/s | restic median s | restic/vbs | vbs peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for op in res["ops"]:
        v = med([r[op]["wall"] for r in tools["vbs"]])
        r = med([x[op]["wall"] for x in tools["restic"]])
        rss = max(x[op]["maxrss_mib"] for x in tools["vbs"])
        lines.append(
            f"| {op} | {v:.2f} | {size / v / 1e6:.0f} | {r:.2f} | {r / v:.2f}x | {rss:.0f} |"
        )
    lines.append("")
    vf = med([x["repo_bytes_after_full"] for x in tools["vbs"]])
    rf = med([x["repo_bytes_after_full"] for x in tools["restic"]])
    lines.append(
        f"repository after full: vbs {vf / 1e6:.0f} MB, restic {rf / 1e6:.0f} MB "
        f"(vbs/restic {vf / rf:.2f})"
    )
    if "incr" in res["ops"]:
        vg = med([x["repo_bytes_after_incr"] - x["repo_bytes_after_full"] for x in tools["vbs"]])
        rg = med([x["repo_bytes_after_incr"] - x["repo_bytes_after_full"] for x in tools["restic"]])
        lines.append(
            f"growth from the incremental: vbs {vg / 1e6:.1f} MB, restic {rg / 1e6:.1f} MB "
            f"(vbs/restic {vg / rg:.3f})"
        )
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "report":
        print(anchors.report(sys.argv[2:]))
        for p in sys.argv[2:]:
            print(ratios(p))
        return 0
    import vbs

    compileall.compile_dir(Path(vbs.__file__).parent, quiet=1)
    return anchors.main()


if __name__ == "__main__":
    sys.exit(main())
