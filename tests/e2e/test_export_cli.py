"""``vbs backup export|exports|export-end|mount|unmount`` and ``vbs repo export``
as a user runs them: real server, real nbdfuse, loop device and mount."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import ProjectClient
from tests.support.nbd_client import NbdClient
from tests.support.server import LAUNCHER, REPO_ROOT, RunningServer, run_cli, start_server
from tests.support.volumes import MIB, make_volume

OS_VARS = ("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_PROJECT_ID",
           "OS_USER_DOMAIN_NAME", "OS_PROJECT_DOMAIN_NAME", "OS_REGION_NAME", "OS_INTERFACE",
           "OS_CACERT")
CAN_MOUNT = (os.geteuid() == 0 and Path("/dev/fuse").exists() and shutil.which("nbdfuse")
             and shutil.which("losetup") and shutil.which("mkfs.ext4"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    s = start_server(tmp_path_factory.mktemp("export-cli"))
    try:
        yield s
    finally:
        s.stop()


def vbs(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict.fromkeys(OS_VARS, "")
    env.update(OS_AUTH_URL=server.auth_url, OS_USERNAME=server.admin_user,
               OS_PASSWORD=server.admin_password, OS_PROJECT_NAME=server.admin_project,
               VBS_MOUNT_STATE=str(server.data_dir.parent / "mounts"))
    return run_cli(*args, env=env)


def _write_mbr(image: Path, parts: list[tuple[int, int]]) -> None:
    """A classic MBR partition table: (start, length) in bytes, type 0x83."""
    table = b"".join(struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff",
                                 start // 512, length // 512) for start, length in parts)
    with image.open("r+b") as f:
        f.seek(446)
        f.write(table.ljust(64, b"\0") + b"\x55\xaa")


def _backup(api: ProjectClient, volume_id: str) -> str:
    r = api("POST", "/v2/{p}/cloudbackups", json={"backup": {"volume_id": volume_id,
                                                             "name": "fs"}})
    assert r.status_code == 200, r.text
    job = api.wait_job(r.json()["job_id"])
    assert job["status"] == "SUCCESS", job
    return str(job["entities"]["backup_id"])


def test_backup_export_list_end(server: RunningServer) -> None:
    api = ProjectClient(server)
    vol = api.volume("cli-export")
    bid = _backup(api, vol)
    r = vbs(server, "backup", "export", bid, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    with NbdClient(doc["uri"]) as c:
        assert c.size == 1024 * MIB and c.read_only
    r = vbs(server, "backup", "exports", bid, "--json")
    assert r.returncode == 0 and [e["id"] for e in json.loads(r.stdout)] == [doc["id"]]
    r = vbs(server, "backup", "export-renew", bid, doc["id"], "--json")
    assert r.returncode == 0, r.stderr
    r = vbs(server, "backup", "export-end", bid, doc["id"])
    assert r.returncode == 0, r.stderr
    r = vbs(server, "backup", "export-end", bid, doc["id"])
    assert r.returncode == 4 and "VolumeBackup.0110" in r.stderr  # gone: not found


@pytest.mark.slow
@pytest.mark.skipif(not CAN_MOUNT, reason="needs root, /dev/fuse, nbdfuse, losetup, mkfs.ext4")
@pytest.mark.parametrize("layout", ["whole-disk", "partition"])
def test_mount_reads_one_file_out_of_an_ext4_backup(server: RunningServer, tmp_path: Path,
                                                    layout: str) -> None:
    api = ProjectClient(server)
    vol = api.volume("ext4")
    content = random.Random(11).randbytes(3 * MIB + 17)
    src = tmp_path / "tree"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "motd").write_text("welcome\n")
    (src / "data.bin").write_bytes(content)
    image = api.volume_file(vol)
    if layout == "whole-disk":
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(src), str(image), "256M"],
                       check=True)
    else:  # an MBR disk whose second partition holds the filesystem
        _write_mbr(image, [(1 * MIB, 16 * MIB), (17 * MIB, 256 * MIB)])
        fs = tmp_path / "fs.img"
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(src), str(fs), "256M"], check=True)
        subprocess.run(["dd", f"if={fs}", f"of={image}", "bs=1M", "seek=17", "conv=notrunc,sparse",
                        "status=none"], check=True)
    bid = _backup(api, vol)
    (src / "data.bin").write_bytes(b"changed after the backup")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = vbs(server, "backup", "mount", bid, str(mnt))
    try:
        assert r.returncode == 0, r.stderr
        assert (mnt / "data.bin").read_bytes() == content
        assert (mnt / "etc" / "motd").read_text() == "welcome\n"
        with pytest.raises(OSError):
            (mnt / "new").write_text("read-only")
    finally:
        u = vbs(server, "backup", "unmount", str(mnt))
    assert u.returncode == 0, u.stderr
    assert not os.path.ismount(mnt)
    r = vbs(server, "backup", "exports", bid, "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == []  # the export ended too
    losetup = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    assert str(server.data_dir.parent / "mounts") not in losetup


def test_repo_export_serves_until_interrupted(tmp_path: Path) -> None:
    env = {"VBS_REPO_PASSWORD": "pw", "VBS_REPO": str(tmp_path / "repo")}
    assert run_cli("repo", "init", env=env).returncode == 0
    vol = make_volume(tmp_path / "v.img", 6 * MIB + 4096, seed=3)
    assert run_cli("repo", "backup", str(vol), "--id", "b1", env=env).returncode == 0
    r = run_cli("repo", "export", "nope", "--listen", "127.0.0.1:0", env=env)
    assert r.returncode == 6, r.stderr  # no such backup, before listening
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT / "src")}
    p = subprocess.Popen([sys.executable, "-c", LAUNCHER, "repo", "--json", "export", "b1",
                          "--listen", "127.0.0.1:0", "--writable", "--overlay",
                          str(tmp_path / "ov")], cwd=REPO_ROOT, env=full_env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert p.stdout is not None
        doc = json.loads(p.stdout.readline())
        data = vol.read_bytes()
        with NbdClient(doc["uri"]) as c:
            assert c.size == len(data) and not c.read_only
            assert c.pread(8192, 4096 * 100) == data[4096 * 100 : 4096 * 102]
            c.pwrite(b"\x01" * 4096, 0)
            assert c.pread(4096, 0) == b"\x01" * 4096
        assert (tmp_path / "ov").exists()
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not (tmp_path / "ov").exists()  # discarded at the end
