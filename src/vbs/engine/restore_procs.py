"""Restore on several worker processes: decoding beyond one interpreter lock.

Why processes: restoring a chunk is a pack read, AES-GCM decryption,
zstd decompression, a keyed BLAKE3 re-hash and a copy into a write run.
zstd and BLAKE3 release the GIL, but ``cryptography`` decrypts holding it,
and the per-chunk Python around them holds it too; on two cores a threaded
restore used about 1.4 of them and spent a sixth of its CPU handing the GIL
between its threads (``perf``: futex wake-ups and task switches). Two
processes, each with its own GIL, keep both cores busy.

Division of work: the parent plans, the workers decode and write. The
parent walks the manifest (:func:`vbs.engine.reader.plan_groups`), handles
zero runs itself and sends each range read, a *group*, to the worker with
the fewest groups outstanding; a worker reads the range from the pack,
checks and decodes every blob (:func:`vbs.engine.reader.decode_group`) and
writes the plaintext into the target through its own
:class:`~vbs.direct_io.OffsetWriter`, which it reopens from the parent's
descriptor (``/proc/<pid>/fd/<n>``: the same open file, never a path that
may have been swapped). Workers are sent the pack reader and the blob codec
(the project's data and id keys), nothing else: a worker forked from the
service's fork server holds no master key and no index; a worker forked by
the command-line tool is a copy of that process, which holds them anyway.
The parent fsyncs the target after every worker has flushed.

Failures: a worker sends the first error it meets (a corrupt or missing
chunk, a write error) and stops; the parent stops the others and raises it.
A worker that dies without a word (killed, out of memory) is an error too:
no restore is reported done unless every worker said it wrote its share.

Start methods: ``fork`` where the caller knows the process has no thread
that could hold a lock the worker needs (the ``vbs repo`` command), else
``forkserver`` (the service's job workers run other jobs on other threads).
A worker never logs, prints or imports after it starts, and leaves with
``os._exit``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkContext, ForkServerContext, SpawnContext
from typing import Literal

from vbs.direct_io import AlignedBuffer, OffsetWriter
from vbs.errors import EngineError
from vbs.repository.crypto import BlobCodec
from vbs.repository.repo import PackRanges

from .common import CancelToken
from .reader import Geometry, decode_group

__all__ = ["StartMethod", "WorkerResult", "restore_on_processes"]

StartMethod = Literal["fork", "forkserver", "spawn"]

DEPTH = 3
"""Groups outstanding per worker: one decoding, the next ones already sent."""

POLL = 0.2
"""Seconds between cancellation checks while waiting for workers."""


@dataclass(frozen=True)
class _Spec:
    """What a worker needs, sent once when it starts."""

    packs: PackRanges
    codec: BlobCodec
    target: str
    geometry: Geometry


@dataclass(frozen=True)
class WorkerResult:
    bytes_written: int
    chunks_written: int


def _worker(conn: Connection, spec: _Spec) -> None:
    """Decode and write the groups received until ``None``, then flush."""
    try:
        fd = os.open(spec.target, os.O_WRONLY | os.O_CLOEXEC)
        out = OffsetWriter(fd, spec.target)
        buf = AlignedBuffer()
        cs = spec.geometry.chunk_size
        counts = [0, 0]

        def sink(plaintext: bytes, chunk_nos: list[int]) -> None:
            for no in chunk_nos:
                out.write(no * cs, plaintext)
            counts[0] += len(plaintext) * len(chunk_nos)
            counts[1] += len(chunk_nos)

        while (group := conn.recv()) is not None:
            conn.send(("done", decode_group(spec.packs, spec.codec, group, spec.geometry,
                                            buf, sink)))
        out.flush()
        out.close()
        conn.send(("flushed", counts[0], counts[1]))
    except BaseException as exc:  # noqa: BLE001 - every failure goes to the parent
        for err in (exc, EngineError(f"restore worker failed: {exc!r}")):
            try:
                conn.send(("error", err))
                break
            except BaseException:  # noqa: BLE001, S112 - unpicklable, or the parent is gone
                continue
    finally:
        os._exit(0)


def _context(method: StartMethod) -> ForkContext | ForkServerContext | SpawnContext:
    if method == "fork":
        return multiprocessing.get_context("fork")
    if method == "spawn":
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # Takes effect when this process first starts its fork server: workers
    # forked from it then start with this module (and so the codec) imported.
    ctx.set_forkserver_preload([__name__])
    return ctx


def restore_on_processes(
    groups: Iterable[object],
    *,
    packs: PackRanges,
    codec: BlobCodec,
    fd: int,
    geometry: Geometry,
    processes: int,
    start_method: StartMethod,
    cancel: CancelToken,
    progress: Callable[[int], None] | None = None,
) -> WorkerResult:
    """Decode and write ``groups`` (from :func:`~vbs.engine.reader.plan_groups`,
    which also handles the zero runs as it is iterated) on ``processes``
    workers writing into ``fd``. Raises the first worker's error as it was
    raised there (a VbsError, or the OSError of a failed write)."""
    ctx = _context(start_method)
    spec = _Spec(packs, codec, f"/proc/{os.getpid()}/fd/{fd}", geometry)
    conns: list[Connection] = []
    procs: list[multiprocessing.process.BaseProcess] = []
    outstanding: list[int] = []
    results: dict[int, WorkerResult] = {}
    ok = False
    try:
        for _ in range(processes):
            mine, theirs = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=_worker, args=(theirs, spec), daemon=True,
                               name="vbs-restore-worker")
            proc.start()
            theirs.close()
            conns.append(mine)
            procs.append(proc)
            outstanding.append(0)

        def died(k: int) -> EngineError:
            procs[k].join(1)
            return EngineError(f"restore worker {k} ended without finishing its share "
                               f"(exit code {procs[k].exitcode})")

        def send(k: int, item: object) -> None:
            try:
                conns[k].send(item)
            except OSError:
                raise died(k) from None

        def collect(timeout: float | None) -> None:
            live = [c for k, c in enumerate(conns) if k not in results]
            for conn in wait(live, timeout):
                assert isinstance(conn, Connection)
                k = conns.index(conn)
                try:
                    msg = conn.recv()
                except (EOFError, OSError):
                    raise died(k) from None
                if msg[0] == "done":
                    outstanding[k] -= 1
                    if progress is not None:
                        progress(msg[1])
                elif msg[0] == "flushed":
                    results[k] = WorkerResult(msg[1], msg[2])
                else:
                    raise msg[1]

        for group in groups:
            cancel.check()
            while min(outstanding) >= DEPTH:
                collect(POLL)
                cancel.check()
            k = outstanding.index(min(outstanding))
            send(k, group)
            outstanding[k] += 1
        for k in range(len(conns)):
            send(k, None)
        while len(results) < len(conns):
            cancel.check()
            collect(POLL)
        ok = True
    finally:
        for worker in procs:
            if not ok:
                worker.kill()
            worker.join()
        for conn in conns:
            conn.close()
    return WorkerResult(sum(r.bytes_written for r in results.values()),
                        sum(r.chunks_written for r in results.values()))

