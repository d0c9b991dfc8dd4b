"""``vbs repo``: work on a repository directly, without the service or its database.

Like restic or borg: for disaster recovery, scripting and benchmarks. The
passphrase comes from ``VBS_REPO_PASSWORD`` or ``--password-file``, else it is
asked for when standard input is a terminal; a key file (``--key-file``, as
the service uses) opens a repository too.

Habits of restic users hold: the global options (``-r/--repo``, ``--json``,
``--password-file``, ``--project``, endpoint options, ...) go before or after
the action (:func:`_share_global_options` copies them onto every action, so
an action added later gets them too); wherever a backup id is taken,
``latest`` or a unique prefix of the id works (:func:`_resolve`); ``backup -``
reads standard input.

Exit codes (stable, documented in docs/operations.md)::

    0  success                          5  corrupt object, or verify found errors
    1  other error                      6  no such backup
    2  usage error                      7  repository locked by another operation
    3  no repository at the location    8  source or target unusable
    4  wrong passphrase / key file      9  storage backend error
  130  interrupted
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vbs.errors import (
    BackendError,
    BackupNotFound,
    ChunkMissing,
    ConfigError,
    CorruptObject,
    LockConflict,
    RepositoryExists,
    RepositoryNotFound,
    SourceError,
    TargetError,
    VbsError,
    WrongPassword,
)

__all__ = ["EXIT_CODES", "UNINDEXED_EXPLAINED", "register"]

UNINDEXED_EXPLAINED = (
    "an unindexed pack holds chunks no index names yet: left by a backup that was "
    "interrupted, or being written by one running now. No backup depends on it, it is "
    "not an error (exit 0), and `vbs repo gc` deletes it once it is older than the grace "
    "period."
)

EXIT_CODES: list[tuple[type[VbsError], int]] = [
    (RepositoryNotFound, 3),
    (WrongPassword, 4),
    (CorruptObject, 5),
    (ChunkMissing, 5),
    (BackupNotFound, 6),
    (LockConflict, 7),
    (SourceError, 8),
    (TargetError, 8),
    (BackendError, 9),
    (RepositoryExists, 1),
    (ConfigError, 2),
]


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every action takes. ``suppress``: no defaults, so that an
    option given after the action never resets one given before it."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "-r",
        "--repo",
        default=default(os.environ.get("VBS_REPO")),
        help="directory or s3://bucket/prefix (env VBS_REPO)",
    )
    parser.add_argument("--password-file", type=Path, default=default(None),
                        help="file whose first line is the passphrase")
    parser.add_argument("--key-file", type=Path, default=default(None),
                        help="open with a key file instead of a passphrase")
    parser.add_argument("--project", default=default("default"),
                        help="project whose keys and chunks to use: its id, or its name "
                        "when --data-dir names the service that owns the repository")
    parser.add_argument("--data-dir", type=Path, default=default(_env_path("VBS_DATA_DIR")),
                        help="the service's data dir, to look --project names up (env "
                        "VBS_DATA_DIR)")
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="machine-readable output")
    parser.add_argument("--endpoint-url", default=default(os.environ.get("AWS_ENDPOINT_URL")))
    parser.add_argument("--region", default=default(os.environ.get("AWS_DEFAULT_REGION")))
    parser.add_argument("--access-key", default=default(None),
                        help="default: AWS_ACCESS_KEY_ID")
    parser.add_argument("--secret-key", default=default(None),
                        help="default: AWS_SECRET_ACCESS_KEY")
    parser.add_argument("--no-progress", action="store_true", default=default(False))


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _share_global_options(actions: Any) -> None:
    """Let every action take the global options after its name too (``vbs repo
    list --repo R``, as restic allows), unless it defines an option itself."""
    shared = argparse.ArgumentParser(add_help=False)
    _global_options(shared, suppress=True)
    for parser in actions.choices.values():
        for action in shared._actions:
            if not any(o in parser._option_string_actions for o in action.option_strings):
                parser._add_action(action)


def register(sub: Any) -> None:
    p = sub.add_parser("repo", help="work on a backup repository directly (no service)")
    _global_options(p, suppress=False)
    rs = p.add_subparsers(dest="repo_command", metavar="ACTION")
    rs.required = True

    c = rs.add_parser("init", help="create a new repository")
    c.add_argument("--chunk-size", type=int, default=64 * 1024)
    c.set_defaults(func=_run(_init, open_repo=False))

    c = rs.add_parser("backup", help="back up a file or block device ('-': standard input)")
    c.add_argument("source", help="file or block device; '-' reads standard input")
    c.add_argument("--stdin-name", default="stdin",
                   help="source name recorded for '-' (default: stdin)")
    c.add_argument("--parent", default=None, help="id of the previous backup of this source")
    c.add_argument("--name", default="")
    c.add_argument("--id", dest="backup_id", default=None, help="backup id (default: random)")
    c.add_argument("--changed-ranges", type=Path, default=None, metavar="FILE",
                   help="read only these byte ranges (rbd diff --format=json output, or a JSON "
                   "list of [offset, length]); needs --parent; a sample of the rest is verified")
    c.add_argument("--verify-unchanged", action="store_true",
                   help="with --changed-ranges: read and compare every unchanged chunk")
    c.set_defaults(func=_run(_backup))

    c = rs.add_parser("restore", help="restore a backup into a file or block device")
    c.add_argument("backup_id", help="id, unique id prefix, or 'latest'")
    c.add_argument("target")
    c.add_argument("--overwrite", action="store_true",
                   help="write over an existing non-empty file or a block device")
    c.add_argument("--processes", type=int, default=min(4, os.cpu_count() or 1),
                   help="worker processes decoding chunks, for a local repository "
                        "(default: the CPU count, at most 4; 1: threads only)")
    c.set_defaults(func=_run(_restore))

    c = rs.add_parser("list", help="list backups")
    c.set_defaults(func=_run(_list))

    c = rs.add_parser("show", help="show one backup")
    c.add_argument("backup_id")
    c.set_defaults(func=_run(_show))

    c = rs.add_parser("verify", help="read back and check one backup, or everything")
    c.add_argument("backup_id", nargs="?")
    c.set_defaults(func=_run(_verify))

    c = rs.add_parser("delete", help="delete a backup (space is freed by gc)")
    c.add_argument("backup_id")
    c.set_defaults(func=_run(_delete))

    c = rs.add_parser("gc", help="free the space of deleted backups")
    c.add_argument("--grace", type=float, default=3600.0, help="seconds (default 3600)")
    c.add_argument(
        "--repack-below",
        type=float,
        default=0.5,
        help="repack packs whose live fraction is below this (default 0.5)",
    )
    c.add_argument("--dry-run", action="store_true")
    c.set_defaults(func=_run(_gc))

    c = rs.add_parser("stats", help="repository size and dedup statistics")
    c.set_defaults(func=_run(_stats))

    from vbs.cli.repo_export import register as register_export

    register_export(rs, _run)  # vbs repo export ID: NBD, until Ctrl-C

    _share_global_options(rs)


def _secret(args: argparse.Namespace, *, confirm: bool = False) -> dict[str, Any]:
    if args.key_file:
        try:
            return {"key_file_bytes": args.key_file.read_bytes()}
        except OSError as exc:
            raise ConfigError(f"cannot read key file {args.key_file}: {exc.strerror}") from None
    if args.password_file:
        try:
            return {"passphrase": args.password_file.read_text().splitlines()[0]}
        except (OSError, IndexError) as exc:
            raise ConfigError(f"cannot read password file {args.password_file}: {exc}") from None
    pw = os.environ.get("VBS_REPO_PASSWORD")
    if pw is None and sys.stdin.isatty():
        pw = _prompt_passphrase(confirm)
    if pw is None:
        raise ConfigError("no passphrase: set VBS_REPO_PASSWORD, use --password-file, "
                          "or run on a terminal to be asked")
    return {"passphrase": pw}


def _prompt_passphrase(confirm: bool) -> str:
    """Ask on the terminal (no echo), twice when creating a repository."""
    import getpass

    pw = getpass.getpass("enter password for repository: ")
    if confirm and getpass.getpass("enter password again: ") != pw:
        raise ConfigError("passwords do not match")
    if not pw:
        raise ConfigError("empty passphrase")
    return pw


def _resolve(store: Any, ref: str) -> str:
    """A backup id from an exact id, ``latest`` (newest by creation time), or a
    unique prefix of an id (restic's habit)."""
    ids = store.backup_ids()
    if ref in ids:
        return ref
    if ref == "latest":
        if not ids:
            raise BackupNotFound("no backups in this project, so no 'latest'")
        return str(max((store.load_manifest(b) for b in ids), key=lambda r: r.created).backup_id)
    matches: list[str] = [str(b) for b in ids if str(b).startswith(ref)] if ref else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ValueError(f"backup id prefix {ref!r} is ambiguous: it matches "
                         + ", ".join(sorted(matches)[:5]) + (" ..." if len(matches) > 5 else ""))
    raise BackupNotFound(f"no backup {ref!r} (no id is or starts with it)")


def _project_store(args: argparse.Namespace, repo: Any) -> Any:
    """The project store named by ``--project``: an id in the repository, or a
    project name of the service whose data dir ``--data-dir`` names.

    Only ``backup`` may start a new project; in a repository that has projects,
    every other action says clearly that nothing matched instead of silently
    creating one and listing nothing.
    """
    from vbs.repository import layout

    wanted = str(args.project)
    known = repo.projects()
    if wanted in known:
        return repo.project(wanted)
    found = _service_project_id(args, wanted)
    if found is not None and (found in known or args.repo_command == "backup"):
        return repo.project(found)
    if (args.repo_command == "backup" or not known) and found is None:
        layout.validate_project(wanted)
        return repo.project(wanted)
    hint = ("; give --data-dir of the service to use project names"
            if args.data_dir is None else "")
    listing = ", ".join(known) if known else "none"
    raise ConfigError(f"no project {wanted!r} in this repository (projects: {listing}){hint}")


def _service_project_id(args: argparse.Namespace, name: str) -> str | None:
    """The id of the service's project called ``name``, when ``--data-dir`` is given."""
    if args.data_dir is None:
        return None
    from vbs.config import load_settings
    from vbs.db.session import Database
    from vbs.identity import find_project

    settings = load_settings(None, args.data_dir)
    if not (settings.data_dir / "vbs.db").exists() and settings.database.url.startswith(
            "sqlite"):
        raise ConfigError(f"{args.data_dir}: no service database there")
    db = Database(settings.database.url)
    try:
        with db.session() as session:
            try:
                return str(find_project(session, name).id)
            except VbsError:
                return None
    finally:
        db.dispose()


def _backend(args: argparse.Namespace, create: bool = False) -> Any:
    from vbs.repository.backends import open_backend

    if not args.repo:
        raise ConfigError("no repository: use --repo or set VBS_REPO")
    return open_backend(
        args.repo,
        endpoint_url=args.endpoint_url,
        region=args.region,
        access_key=args.access_key,
        secret_key=args.secret_key,
        create=create,
    )


def _open_repository(backend: Any, secret: dict[str, Any]) -> Any:
    """Open the repository, deriving the key while the engine is imported.

    Why a thread: argon2id takes about 0.2 s by design and releases the GIL,
    and importing numpy, zstd and the engine takes about as long; a 3 s
    backup or restore otherwise pays both in a row.
    """
    from concurrent.futures import ThreadPoolExecutor

    from vbs.repository.unlock import unlock

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vbs-unlock") as pool:
        unlocked = pool.submit(unlock, backend, **secret)
        import vbs.engine.backup
        import vbs.engine.restore
        from vbs.repository.repo import Repository

        del vbs.engine.backup, vbs.engine.restore  # imported for their cost only
        config, master = unlocked.result()
    return Repository(backend, config, master)


def _run(action: Callable[..., int], open_repo: bool = True) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            if not open_repo:
                return action(args)
            backend = _backend(args)
            try:
                repo = _open_repository(backend, _secret(args))
                return action(args, _project_store(args, repo))
            finally:
                backend.close()
        except KeyboardInterrupt:
            print("vbs repo: interrupted", file=sys.stderr)
            return 130
        except VbsError as exc:
            print(f"vbs repo: {exc.message}", file=sys.stderr)
            for cls, code in EXIT_CODES:
                if isinstance(exc, cls):
                    return code
            return 1
        except ValueError as exc:
            print(f"vbs repo: {exc}", file=sys.stderr)
            return 2

    return run


def _out(args: argparse.Namespace, doc: Any, text: str) -> None:
    if args.json:
        print(json.dumps(doc, indent=1, sort_keys=True))
    else:
        print(text)


@contextmanager
def _progress(args: argparse.Namespace, what: str) -> Iterator[Callable[[int, int], None] | None]:
    if args.json or args.no_progress or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _init(args: argparse.Namespace) -> int:
    from vbs.repository.repo import Repository

    backend = _backend(args, create=True)
    try:
        repo = Repository.init(backend, chunk_size=args.chunk_size, **_secret(args, confirm=True))
    finally:
        backend.close()
    _out(
        args,
        {"id": repo.config.repo_id, "location": args.repo, "chunk_size": repo.config.chunk_size},
        f"created repository {repo.config.repo_id} at {args.repo}",
    )
    return 0


def _change_hints(args: argparse.Namespace, source: Any) -> Any:
    """The ``--changed-ranges`` file parsed against the source size, or None."""
    from vbs.engine.changed import parse_change_hints
    from vbs.engine.common import open_block_or_file

    if args.changed_ranges is None:
        if args.verify_unchanged:
            raise ConfigError("--verify-unchanged only applies with --changed-ranges")
        return None
    if args.parent is None:
        raise ConfigError("--changed-ranges needs --parent: the backup the ranges are relative to")
    try:
        data = args.changed_ranges.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {args.changed_ranges}: {exc.strerror}") from None
    try:
        fd, size = open_block_or_file(os.fspath(source), os.O_RDONLY)
    except OSError as exc:
        raise SourceError(f"cannot open source {args.source!r}: {exc.strerror}") from None
    os.close(fd)
    return parse_change_hints(data, size)


def _backup(args: argparse.Namespace, store: Any) -> int:
    from vbs.engine.backup import backup
    from vbs.engine.guard import GuardPolicy

    parent = _resolve(store, args.parent) if args.parent else None
    with contextlib.ExitStack() as stack:
        if args.source == "-":
            if args.changed_ranges is not None:
                raise ConfigError("--changed-ranges needs a source file, not standard input")
            source = stack.enter_context(_spooled_stdin())
            source_name = args.stdin_name
        else:
            source = args.source
            source_name = os.path.abspath(args.source)
        changes = _change_hints(args, source)
        progress = stack.enter_context(_progress(args, "backup"))
        result = backup(
            store,
            source,
            backup_id=args.backup_id,
            name=args.name,
            parent_id=parent,
            progress=progress,
            changes=changes,
            guard=GuardPolicy(verify_all=args.verify_unchanged),
            source_name=source_name,
        )
    s = result.stats
    doc = {"id": result.root.backup_id, "stats": s.as_dict(), "seconds": round(s.seconds, 3),
           "change_tracking": result.change_tracking, "guard": result.guard_message}
    if result.guard_message:
        print(f"warning: {result.guard_message}", file=sys.stderr)
    _out(
        args,
        doc,
        f"backup {result.root.backup_id}: {s.volume_size} bytes, {s.chunks_new} new chunks "
        f"({s.bytes_new_stored} bytes stored), {s.chunks_dedup} deduplicated, "
        f"{s.chunks_zero} zero, in {s.seconds:.2f} s; change tracking {result.change_tracking}, "
        f"{s.bytes_read} bytes read, {s.chunks_sampled} chunks sampled",
    )
    return 0


@contextmanager
def _spooled_stdin() -> Iterator[str]:
    """Standard input copied to an unlinked-on-exit temporary file (sparse:
    zero blocks are skipped), because a manifest records the volume size up
    front and the engine reads its source with positioned reads."""
    import tempfile

    block = 1024 * 1024
    zero = bytes(block)
    with tempfile.NamedTemporaryFile(prefix="vbs-stdin-") as spool:
        size = 0
        stream = sys.stdin.buffer
        while True:
            data = stream.read(block)
            if not data:
                break
            if data == zero[: len(data)]:
                spool.seek(len(data), os.SEEK_CUR)
            else:
                spool.write(data)
            size += len(data)
        spool.truncate(size)
        spool.flush()
        yield spool.name


def _check_target(target: str, overwrite: bool) -> None:
    """Refuse to write over data unless ``--overwrite`` (restic and borg refuse too)."""
    import stat

    try:
        st = os.stat(target)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise TargetError(f"cannot use target {target!r}: {exc.strerror}") from None
    if overwrite:
        return
    if stat.S_ISBLK(st.st_mode):
        raise TargetError(f"target {target!r} is a block device; give --overwrite to write "
                          "the backup over its contents")
    if stat.S_ISREG(st.st_mode) and st.st_size > 0:
        raise TargetError(f"target {target!r} exists and is not empty; give --overwrite to "
                          "replace its contents")


def _restore(args: argparse.Namespace, store: Any) -> int:
    from vbs.engine.restore import restore

    args.backup_id = _resolve(store, args.backup_id)
    _check_target(args.target, args.overwrite)
    if args.processes < 1:
        raise ConfigError("--processes must be at least 1")
    with _progress(args, "restore") as progress:
        # fork is safe here: besides this thread the command runs at most
        # the progress bar's, and a worker never touches the console.
        st = restore(store, args.backup_id, args.target, progress=progress,
                     processes=args.processes, start_method="fork")
    _out(
        args,
        {
            "id": args.backup_id,
            "target": args.target,
            "bytes_written": st.bytes_written,
            "volume_size": st.volume_size,
            "seconds": round(st.seconds, 3),
        },
        f"restored {args.backup_id} to {args.target}: {st.volume_size} bytes in {st.seconds:.2f} s",
    )
    return 0


def _root_doc(root: Any) -> dict[str, Any]:
    return {
        "id": root.backup_id,
        "name": root.name,
        "created": root.created,
        "volume_size": root.volume_size,
        "chunk_size": root.chunk_size,
        "source": root.source,
        "source_id": root.source_id,
        "parent_id": root.parent_id,
        "stats": root.stats,
        "meta": root.meta,
        "pages": len(root.page_ids),
    }


def _list(args: argparse.Namespace, store: Any) -> int:
    roots = [store.load_manifest(b) for b in store.backup_ids()]
    roots.sort(key=lambda r: r.created)
    docs = [_root_doc(r) for r in roots]
    lines = [f"{r.backup_id}  {r.created}  {r.volume_size:>14}  {r.name}" for r in roots]
    _out(args, docs, "\n".join(lines) if lines else "no backups")
    return 0


def _show(args: argparse.Namespace, store: Any) -> int:
    doc = _root_doc(store.load_manifest(_resolve(store, args.backup_id)))
    _out(args, doc, "\n".join(f"{k}: {v}" for k, v in doc.items()))
    return 0


def _verify(args: argparse.Namespace, store: Any) -> int:
    from vbs.engine.verify import verify_backup, verify_project

    if args.backup_id:
        backup_id = _resolve(store, args.backup_id)
        with _progress(args, "verify") as progress:
            findings = verify_backup(store, backup_id, progress=progress)
    else:
        findings = verify_project(store)
    errors = [f for f in findings if f.kind.is_error]
    warnings = [f for f in findings if not f.kind.is_error]
    lines = [f"{f.kind.value}: {f.subject}: {f.detail}" for f in errors]
    lines += [f"warning: {f.kind.value}: {f.subject}: {f.detail}" for f in warnings]
    if warnings:
        lines.append(f"{len(warnings)} warning(s): {UNINDEXED_EXPLAINED}")
    lines.append(f"{len(errors)} error(s)" if errors else "no errors found")
    _out(
        args,
        {"ok": not errors, "errors": len(errors), "warnings": len(warnings),
         "findings": [f.as_dict() for f in findings]},
        "\n".join(lines),
    )
    if errors and not args.json:
        print(f"vbs repo: verify found {len(errors)} error(s)", file=sys.stderr)
    return 5 if errors else 0


def _delete(args: argparse.Namespace, store: Any) -> int:
    args.backup_id = _resolve(store, args.backup_id)
    store.delete_manifest(args.backup_id)
    _out(
        args, {"deleted": args.backup_id}, f"deleted backup {args.backup_id}; run gc to free space"
    )
    return 0


def _gc(args: argparse.Namespace, store: Any) -> int:
    from vbs.repository.gc import GcPolicy, collect

    policy = GcPolicy(grace_seconds=args.grace, repack_below=args.repack_below)
    status = collect(store, policy, dry_run=args.dry_run)
    _out(args, status.as_dict(), status.summary())
    return 0


def _stats(args: argparse.Namespace, store: Any) -> int:
    from vbs.repository import layout

    packs = list(store.backend.list(layout.packs_prefix(store.project)))
    index = store.load_index()
    ids = store.backup_ids()
    doc = {
        "project": store.project,
        "backups": len(ids),
        "packs": len(packs),
        "pack_bytes": sum(p.size for p in packs),
        "chunks": len(index),
        "chunk_size": store.chunk_size,
    }
    _out(args, doc, "\n".join(f"{k}: {v}" for k, v in doc.items()))
    return 0
