"""Object names in a repository: the only place that builds keys.

Layout (see docs/repository-format.md, "Layout")::

    config                                   plaintext JSON: format, chunk size, algorithms
    keys/<slot-id>                           key slots: master key wrapped by a passphrase/key file
    projects/<project>/key                   the project's data keys, sealed with the master key
    projects/<project>/data/<pp>/<pack-id>   packs (pp = first two hex digits of the pack id)
    projects/<project>/index/<index-id>      index files: which chunks live in which pack
    projects/<project>/backups/<backup-id>   manifest roots, one per backup
    projects/<project>/locks/<lock-id>       plaintext JSON locks of running backups and GCs
    projects/<project>/gc/<record-id>        GC condemnation records
    projects/<project>/quarantine/<id>       chunk locations verify found corrupt
"""

from __future__ import annotations

import re

__all__ = [
    "CONFIG",
    "KEYS",
    "PROJECTS",
    "backup_key",
    "backups_prefix",
    "gc_key",
    "gc_prefix",
    "index_key",
    "index_prefix",
    "key_slot",
    "lock_key",
    "locks_prefix",
    "pack_key",
    "packs_prefix",
    "project_key",
    "quarantine_key",
    "quarantine_prefix",
    "validate_project",
    "validate_uid",
]

CONFIG = "config"
KEYS = "keys/"
PROJECTS = "projects/"

_PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_UID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def validate_project(project: str) -> str:
    """Project names become path segments: letters, digits, ``_.-``, 1-64 chars."""
    if not _PROJECT_RE.match(project) or project in {".", ".."}:
        raise ValueError(f"invalid project name {project!r}: use 1-64 of [A-Za-z0-9_.-]")
    return project


def validate_uid(uid: str) -> str:
    """Backup, index, lock and record ids: letters, digits, ``_-``, 1-128 chars."""
    if not _UID_RE.match(uid):
        raise ValueError(f"invalid object id {uid!r}")
    return uid


def key_slot(slot_id: str) -> str:
    return KEYS + validate_uid(slot_id)


def _p(project: str) -> str:
    return f"{PROJECTS}{validate_project(project)}/"


def project_key(project: str) -> str:
    return _p(project) + "key"


def packs_prefix(project: str) -> str:
    return _p(project) + "data/"


def pack_key(project: str, pack_hex: str) -> str:
    return f"{packs_prefix(project)}{pack_hex[:2]}/{pack_hex}"


def index_prefix(project: str) -> str:
    return _p(project) + "index/"


def index_key(project: str, index_id: str) -> str:
    return index_prefix(project) + validate_uid(index_id)


def backups_prefix(project: str) -> str:
    return _p(project) + "backups/"


def backup_key(project: str, backup_id: str) -> str:
    return backups_prefix(project) + validate_uid(backup_id)


def locks_prefix(project: str) -> str:
    return _p(project) + "locks/"


def lock_key(project: str, lock_id: str) -> str:
    return locks_prefix(project) + validate_uid(lock_id)


def gc_prefix(project: str) -> str:
    return _p(project) + "gc/"


def gc_key(project: str, record_id: str) -> str:
    return gc_prefix(project) + validate_uid(record_id)


def quarantine_prefix(project: str) -> str:
    return _p(project) + "quarantine/"


def quarantine_key(project: str, record_id: str) -> str:
    return quarantine_prefix(project) + validate_uid(record_id)
