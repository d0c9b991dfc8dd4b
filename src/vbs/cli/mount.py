"""File-level restore on Linux: an NBD export mounted read-only as a filesystem.

Steps (each undone in reverse by :func:`unmount`, and on failure):

1. ``nbdfuse --readonly STATE/fuse/disk URI``: the export appears as a file
   (needs ``/dev/fuse`` and the ``nbdfuse`` program, package ``nbdfuse``);
2. ``losetup --find --show --read-only`` on that file: a read-only loop
   device of the whole disk, or (``--offset``/``--sizelimit`` from the MBR or
   GPT as ``partx`` reads it, so no kernel partition scan is needed, which
   containers often lack) of one partition;
3. the device to mount: ``--partition M``, else the whole disk when ``blkid``
   finds a filesystem on it, else its first partition that holds one;
4. ``mount -o ro`` (``ro,noload`` for ext3/ext4 and ``ro,norecovery`` for
   XFS: a crash-consistent backup's journal is never replayed, which would
   need a write).

The state of a mount lives in ``/run/vbs/mounts/<hash of the mountpoint>/``
(``state.json`` and the FUSE directory), so ``vbs backup unmount`` finds it
from another shell. Needs root (loop devices and mount).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from vbs.errors import ConfigError

__all__ = ["STATE_ROOT", "MountError", "mount", "unmount"]

STATE_ROOT = Path(os.environ.get("VBS_MOUNT_STATE", "/run/vbs/mounts"))
OPTIONS = {"ext2": "ro", "ext3": "ro,noload", "ext4": "ro,noload", "xfs": "ro,norecovery"}


class MountError(ConfigError):
    """A mount step failed or its requirements are missing (exit code 2)."""

    code = "cli.mount"


def _state_dir(mountpoint: str) -> Path:
    key = hashlib.sha256(os.path.realpath(mountpoint).encode()).hexdigest()[:16]
    return STATE_ROOT / key


def _run(*cmd: str) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise MountError(f"{cmd[0]} is not installed (see docs/operations.md)") from None
    if r.returncode != 0:
        raise MountError(f"{' '.join(cmd)}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout.strip()


def _fstype(dev: str) -> str:
    r = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", dev], capture_output=True,
                       text=True, timeout=30)
    return r.stdout.strip() if r.returncode == 0 else ""


def _partitions(disk: Path) -> list[tuple[int, int, int]]:
    """(number, start byte, length) of the disk's partitions (MBR or GPT), read
    with ``partx`` from the file itself: no kernel partition scan needed."""
    r = subprocess.run(["partx", "-g", "-o", "NR,START,SECTORS", str(disk)],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return []
    out = []
    for line in r.stdout.splitlines():
        nr, start, sectors = (int(x) for x in line.split())
        out.append((nr, start * 512, sectors * 512))
    return out


def _attach(disk: Path, state: dict[str, Any], offset: int = 0, length: int = 0) -> str:
    cmd = ["losetup", "--find", "--show", "--read-only"]
    if length:
        cmd += ["--offset", str(offset), "--sizelimit", str(length)]
    loop = _run(*cmd, str(disk))
    state.setdefault("loops", []).append(loop)
    return loop


def _pick_device(disk: Path, partition: int | None, state: dict[str, Any]) -> tuple[str, str]:
    """Loop-attach the filesystem to mount: the whole disk or one partition."""
    parts = _partitions(disk)
    if partition is None:
        whole = _attach(disk, state)
        fs = _fstype(whole)
        if fs or not parts:
            if not fs:
                raise MountError("no filesystem found on the disk, and it has no partitions")
            return whole, fs
        candidates = parts
    else:
        candidates = [p for p in parts if p[0] == partition]
        if not candidates:
            raise MountError(f"the disk has no partition {partition}")
    for nr, start, length in candidates:
        dev = _attach(disk, state, start, length)
        fs = _fstype(dev)
        if fs:
            state["partition"] = nr
            return dev, fs
    raise MountError("no filesystem found on the disk's partitions"
                     if partition is None else f"partition {partition} holds no filesystem")


def _start_nbdfuse(state_dir: Path, uri: str, state: dict[str, Any]) -> None:
    """Start nbdfuse in its own session (it serves until ``fusermount3 -u``) and
    wait for its pid file, written once the disk file is ready."""
    pidfile = state_dir / "nbdfuse.pid"
    with (state_dir / "nbdfuse.log").open("wb") as log:
        proc = subprocess.Popen(
            ["nbdfuse", "--readonly", "--pidfile", str(pidfile), str(state_dir / "fuse" / "disk"),
             uri], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    deadline = time.monotonic() + 30
    while not pidfile.exists():
        if proc.poll() is not None:
            err = (state_dir / "nbdfuse.log").read_text(errors="replace").strip()
            raise MountError(f"nbdfuse exited with {proc.returncode}: {err}")
        if time.monotonic() > deadline:
            state["fuse_mounted"] = True
            raise MountError("nbdfuse did not become ready within 30 s")
        time.sleep(0.05)
    state["fuse_mounted"] = True


def mount(uri: str, mountpoint: str, *, partition: int | None = None,
          extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Mount the export at ``uri`` read-only on ``mountpoint``; returns the state."""
    if os.geteuid() != 0:
        raise MountError("vbs backup mount needs root (loop devices and mount)")
    if not Path("/dev/fuse").exists():
        raise MountError("FUSE is not available (/dev/fuse missing)")
    if shutil.which("nbdfuse") is None:
        raise MountError("nbdfuse is not installed (package nbdfuse)")
    if not Path(mountpoint).is_dir():
        raise MountError(f"mountpoint {mountpoint} is not a directory")
    state_dir = _state_dir(mountpoint)
    if (state_dir / "state.json").exists():
        raise MountError(f"{mountpoint} is already a vbs mount; vbs backup unmount it first")
    fuse_dir = state_dir / "fuse"
    fuse_dir.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {**(extra or {}), "mountpoint": os.path.realpath(mountpoint),
                             "fuse": str(fuse_dir), "uri": uri}
    try:
        _start_nbdfuse(state_dir, uri, state)
        disk = fuse_dir / "disk"
        dev, fs = _pick_device(disk, partition, state)
        state["device"], state["fstype"] = dev, fs
        _run("mount", "-o", OPTIONS.get(fs, "ro"), dev, mountpoint)
        state["mounted"] = True
        (state_dir / "state.json").write_text(json.dumps(state, indent=1))
        return state
    except BaseException:
        _undo(state)
        shutil.rmtree(state_dir, ignore_errors=True)
        raise


def _undo(state: dict[str, Any]) -> None:
    if state.get("mounted"):
        subprocess.run(["umount", state["mountpoint"]], capture_output=True, timeout=60)
    for loop in reversed(state.get("loops", [])):
        subprocess.run(["losetup", "-d", loop], capture_output=True, timeout=60)
    if state.get("fuse_mounted"):
        for _ in range(50):
            r = subprocess.run(["fusermount3", "-u", state["fuse"]], capture_output=True,
                               timeout=60)
            if r.returncode == 0:
                break
            time.sleep(0.1)  # the loop device lets go of the file asynchronously


def unmount(mountpoint: str) -> dict[str, Any]:
    """Undo :func:`mount`; returns its state (with the export to end)."""
    state_dir = _state_dir(mountpoint)
    try:
        state: dict[str, Any] = json.loads((state_dir / "state.json").read_text())
    except FileNotFoundError:
        raise MountError(f"{mountpoint} is not a vbs backup mount") from None
    r = subprocess.run(["umount", state["mountpoint"]], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0 and os.path.ismount(state["mountpoint"]):
        raise MountError(f"umount {state['mountpoint']}: {r.stderr.strip()}")
    state["mounted"] = False
    _undo(state)
    with contextlib.suppress(OSError):
        (state_dir / "state.json").unlink()
    shutil.rmtree(state_dir, ignore_errors=True)
    return state
