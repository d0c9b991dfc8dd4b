"""Reading the repository config and unwrapping the master key.

Kept apart from :mod:`vbs.repository.repo` (and so from numpy, zstd and the
index) on purpose: the key derivation (argon2id, about 0.2 s by design) needs
none of them, so a command can derive the key on one thread while it imports
the rest on another (``vbs repo``, see :mod:`vbs.cli.repo`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from vbs.errors import CorruptObject, ObjectNotFound, RepositoryNotFound, WrongPassword
from vbs.repository import format as fmt
from vbs.repository import layout
from vbs.repository.backends.base import Backend
from vbs.repository.keys import open_slot

__all__ = ["RepoConfig", "unlock"]


@dataclass(frozen=True)
class RepoConfig:
    """The plaintext ``config`` object. Format parameters live here and in
    each manifest root, never in service settings."""

    repo_id: str
    chunk_size: int
    pack_target: int
    created: str
    version: int = fmt.FORMAT_VERSION

    def encode(self) -> bytes:
        return json.dumps(
            {
                "magic": fmt.CONFIG_MAGIC,
                "version": self.version,
                "id": self.repo_id,
                "chunk_size": self.chunk_size,
                "pack_target": self.pack_target,
                "chunk_hash": "blake3-keyed-256",
                "cipher": "aes-256-gcm",
                "compression": "zstd",
                "created": self.created,
            },
            indent=1,
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> RepoConfig:
        try:
            doc = json.loads(data)
            if doc.get("magic") != fmt.CONFIG_MAGIC:
                raise CorruptObject("config: not a VBS repository")
            if doc.get("version") != fmt.FORMAT_VERSION:
                raise CorruptObject(f"config: unsupported format version {doc.get('version')}")
            return cls(
                repo_id=str(doc["id"]),
                chunk_size=int(doc["chunk_size"]),
                pack_target=int(doc["pack_target"]),
                created=str(doc["created"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptObject(f"config unreadable: {exc}") from None



def unlock(
    backend: Backend,
    *,
    passphrase: str | None = None,
    key_file_bytes: bytes | None = None,
) -> tuple[RepoConfig, bytes]:
    """The config and the master key: tries every key slot; none opening
    means a wrong passphrase or key file."""
    try:
        config = RepoConfig.decode(backend.get(layout.CONFIG))
    except ObjectNotFound:
        raise RepositoryNotFound(f"no repository at {backend.location}") from None
    slots = [o.key for o in backend.list(layout.KEYS)]
    if not slots:
        raise CorruptObject("repository has no key slots")
    last: Exception | None = None
    for key in sorted(slots):
        try:
            master = open_slot(
                backend.get(key),
                config.repo_id,
                passphrase=passphrase,
                key_file_bytes=key_file_bytes,
            )
            return config, master
        except (WrongPassword, CorruptObject) as exc:
            last = exc
    if isinstance(last, CorruptObject):
        raise last
    raise WrongPassword("wrong passphrase or key file: no key slot opens")
