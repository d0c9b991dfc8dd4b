"""Opening and initialising a repository; the per-project store.

``Repository`` owns the backend, the config and the master key.
``ProjectStore`` is everything one project's backups need: its keys, codec,
packs, index files, manifests and locks. Dedup and encryption are per project.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterable

import numpy as np

from vbs.direct_io import AlignedBuffer
from vbs.errors import (
    BackupNotFound,
    ChunkMissing,
    ConfigError,
    CorruptObject,
    ObjectNotFound,
    RepositoryExists,
)
from vbs.repository import format as fmt
from vbs.repository import layout
from vbs.repository.backends.base import Backend, ObjectWriter, RangeViewBackend, StreamingBackend
from vbs.repository.crypto import BlobCodec, Sealer
from vbs.repository.index import ChunkIndex, Location, parse_index_file, serialize_index_file
from vbs.repository.keys import (
    KdfParams,
    derive_project_keys,
    make_slot,
    open_project_keys,
    project_keys_plaintext,
)
from vbs.repository.manifest import ManifestRoot
from vbs.repository.unlock import RepoConfig, unlock

__all__ = ["PackRanges", "ProjectStore", "RepoConfig", "Repository"]


class Repository:
    """An opened repository: backend + config + master key."""

    def __init__(self, backend: Backend, config: RepoConfig, master_key: bytes) -> None:
        self.backend = backend
        self.config = config
        self._master = master_key
        self._master_sealer = Sealer(master_key)
        self._projects: dict[str, ProjectStore] = {}

    @classmethod
    def init(
        cls,
        backend: Backend,
        *,
        passphrase: str | None = None,
        key_file_bytes: bytes | None = None,
        chunk_size: int = fmt.CHUNK_SIZE_DEFAULT,
        pack_target: int = fmt.PACK_TARGET_DEFAULT,
        kdf: KdfParams | None = None,
    ) -> Repository:
        """Create a new repository. The key slot is written before the config,
        so a config never exists without a way to open it."""
        if not (fmt.CHUNK_SIZE_MIN <= chunk_size <= fmt.CHUNK_SIZE_MAX) or (
            chunk_size & (chunk_size - 1)
        ):
            raise ConfigError(
                f"chunk size {chunk_size} must be a power of two in "
                f"[{fmt.CHUNK_SIZE_MIN}, {fmt.CHUNK_SIZE_MAX}]"
            )
        if not (1 << 20 <= pack_target <= 1 << 30):
            raise ConfigError("pack target must be between 1 MiB and 1 GiB")
        if backend.exists(layout.CONFIG):
            raise RepositoryExists(f"a repository already exists at {backend.location}")
        master = os.urandom(fmt.KEY_SIZE)
        config = RepoConfig(
            repo_id=uuid.uuid4().hex,
            chunk_size=chunk_size,
            pack_target=pack_target,
            created=dt.datetime.now(dt.UTC).isoformat(),
        )
        slot_id, slot = make_slot(
            master, config.repo_id, passphrase=passphrase, key_file_bytes=key_file_bytes, kdf=kdf
        )
        backend.put(layout.key_slot(slot_id), slot)
        backend.put(layout.CONFIG, config.encode())
        return cls(backend, config, master)

    @classmethod
    def open(
        cls,
        backend: Backend,
        *,
        passphrase: str | None = None,
        key_file_bytes: bytes | None = None,
    ) -> Repository:
        config, master = unlock(backend, passphrase=passphrase, key_file_bytes=key_file_bytes)
        return cls(backend, config, master)

    def add_key(
        self,
        *,
        passphrase: str | None = None,
        key_file_bytes: bytes | None = None,
        kdf: KdfParams | None = None,
    ) -> str:
        slot_id, slot = make_slot(
            self._master,
            self.config.repo_id,
            passphrase=passphrase,
            key_file_bytes=key_file_bytes,
            kdf=kdf,
        )
        self.backend.put(layout.key_slot(slot_id), slot)
        return slot_id

    def project(self, name: str) -> ProjectStore:
        layout.validate_project(name)
        store = self._projects.get(name)
        if store is None:
            store = self._projects[name] = ProjectStore(self, name)
        return store

    def projects(self) -> list[str]:
        names = set()
        for o in self.backend.list(layout.PROJECTS):
            rest = o.key[len(layout.PROJECTS) :]
            if rest.endswith("/key") and rest.count("/") == 1:
                names.add(rest.split("/")[0])
        return sorted(names)

    def seal_master(self, kind: int, name: str, plaintext: bytes) -> bytes:
        return self._master_sealer.seal(kind, name, plaintext)

    def open_master(self, kind: int, name: str, data: bytes) -> bytes:
        return self._master_sealer.open(kind, name, data)

    def derive_project(self, project: str) -> bytes:
        keys = derive_project_keys(self._master, project)
        return project_keys_plaintext(keys, project)


class PackRanges:
    """Reads ranges of one project's packs.

    Split from :class:`ProjectStore` so that a restore worker process can get
    just this (it pickles when the backend does: a local directory) and not
    the repository's master key.
    """

    def __init__(self, backend: Backend, project: str) -> None:
        self.backend = backend
        self.project = project

    @property
    def shareable(self) -> bool:
        """Whether another process can read through a copy of this reader:
        only a local directory is opened afresh per read (a network client's
        connections and credentials stay with its process)."""
        return isinstance(self.backend, RangeViewBackend)

    def read_pack_range(self, pack_hex: str, start: int, length: int) -> bytes:
        data = self.backend.get(layout.pack_key(self.project, pack_hex), start, length)
        if len(data) != length:
            raise CorruptObject(
                f"pack {pack_hex}: short read at {start} ({len(data)} of {length} bytes)"
            )
        return data

    def read_pack_range_view(self, pack_hex: str, start: int, length: int,
                             buf: AlignedBuffer) -> memoryview:
        """See :meth:`ProjectStore.read_pack_range_view`."""
        if not isinstance(self.backend, RangeViewBackend):
            return memoryview(self.read_pack_range(pack_hex, start, length))
        data = self.backend.read_range_view(layout.pack_key(self.project, pack_hex), start,
                                            length, buf)
        if len(data) != length:
            raise CorruptObject(
                f"pack {pack_hex}: short read at {start} ({len(data)} of {length} bytes)"
            )
        return data


class ProjectStore:
    """One project's objects. Thread-safe; cheap to share."""

    def __init__(self, repo: Repository, project: str) -> None:
        self.repo = repo
        self.backend = repo.backend
        self.project = project
        key_name = layout.project_key(project)
        try:
            plaintext = repo.open_master(
                fmt.SEALED_KIND_PROJECT_KEY, key_name, self.backend.get(key_name)
            )
        except ObjectNotFound:
            plaintext = repo.derive_project(project)
            self.backend.put(
                key_name, repo.seal_master(fmt.SEALED_KIND_PROJECT_KEY, key_name, plaintext)
            )
        keys = open_project_keys(plaintext, project)
        self.sealer = Sealer(keys.data_key)
        self.codec = BlobCodec(keys.data_key, keys.id_key)
        self.packs = PackRanges(self.backend, project)
        self.chunk_size = repo.config.chunk_size
        self.pack_target = repo.config.pack_target

    # -- packs ------------------------------------------------------------------
    def put_pack(self, pack_hex: str, data: bytes) -> None:
        self.backend.put(layout.pack_key(self.project, pack_hex), data)

    def open_pack_writer(self) -> ObjectWriter | None:
        """A streaming writer for a new pack when the backend has one (local
        directories), else None (packs are buffered and put whole)."""
        if isinstance(self.backend, StreamingBackend):
            return self.backend.open_writer()
        return None

    def commit_pack(self, writer: ObjectWriter, pack_hex: str) -> None:
        writer.commit(layout.pack_key(self.project, pack_hex))

    def read_pack_range(self, pack_hex: str, start: int, length: int) -> bytes:
        return self.packs.read_pack_range(pack_hex, start, length)

    def read_pack_range_view(self, pack_hex: str, start: int, length: int,
                             buf: AlignedBuffer) -> memoryview:
        """Like :meth:`read_pack_range`, into the caller's reusable buffer when
        the backend can (local: around the page cache); the view is valid until
        ``buf`` is used again."""
        return self.packs.read_pack_range_view(pack_hex, start, length, buf)

    def read_blob(self, chunk_id: bytes, loc: Location, *, where: str = "") -> bytes:
        try:
            blob = self.read_pack_range(loc.pack_id, loc.offset, loc.length)
        except ObjectNotFound:
            raise CorruptObject(
                f"chunk {chunk_id.hex()} ({where}): pack {loc.pack_id} is missing"
            ) from None
        return self.codec.decode(chunk_id, blob, where=where).plaintext

    # -- index ------------------------------------------------------------------
    def index_names(self) -> list[str]:
        return sorted(o.key for o in self.backend.list(layout.index_prefix(self.project)))

    def load_index(self) -> ChunkIndex:
        """Load every index file, leaving out quarantined blob locations."""
        for _attempt in range(10):
            index = self._try_load_index()
            if index is not None:
                return index
        raise CorruptObject("index files keep disappearing while loading (GC running?)")

    def _try_load_index(self) -> ChunkIndex | None:
        bad = self.quarantined()
        index = ChunkIndex()
        for key in self.index_names():
            try:
                data = self.backend.get(key)
            except ObjectNotFound:
                return None  # replaced by a concurrent GC: list again
            plaintext = self.sealer.open(fmt.SEALED_KIND_INDEX, key, data)
            for pack_hex, entries in parse_index_file(plaintext, key):
                offsets = bad.get(pack_hex)
                if offsets:
                    entries = entries[~np.isin(entries["offset"], list(offsets))]
                index.add_entries(pack_hex, entries)
        index.merge()
        return index

    def quarantined(self) -> dict[str, set[int]]:
        """pack id -> blob offsets that verify found corrupt."""
        out: dict[str, set[int]] = {}
        for o in self.backend.list(layout.quarantine_prefix(self.project)):
            doc = json.loads(
                self.sealer.open(fmt.SEALED_KIND_QUARANTINE, o.key, self.backend.get(o.key))
            )
            for loc in doc["locations"]:
                out.setdefault(str(loc["pack"]), set()).add(int(loc["offset"]))
        return out

    def write_index(self, packs: Iterable[tuple[str, bytes]]) -> str:
        """Store an index file for packs that are already durable; returns its key."""
        index_id = uuid.uuid4().hex
        key = layout.index_key(self.project, index_id)
        plaintext = serialize_index_file(packs)
        self.backend.put(key, self.sealer.seal(fmt.SEALED_KIND_INDEX, key, plaintext))
        return key

    # -- manifests ----------------------------------------------------------------
    def store_manifest(self, root: ManifestRoot) -> None:
        key = layout.backup_key(self.project, root.backup_id)
        self.backend.put(key, self.sealer.seal(fmt.SEALED_KIND_MANIFEST, key, root.encode()))

    def load_manifest(self, backup_id: str) -> ManifestRoot:
        try:
            key = layout.backup_key(self.project, backup_id)
        except ValueError:
            raise BackupNotFound(f"no backup {backup_id!r} in project {self.project}") from None
        try:
            data = self.backend.get(key)
        except ObjectNotFound:
            raise BackupNotFound(f"no backup {backup_id!r} in project {self.project}") from None
        root = ManifestRoot.decode(self.sealer.open(fmt.SEALED_KIND_MANIFEST, key, data), key)
        if root.backup_id != backup_id or root.project != self.project:
            raise CorruptObject(f"{key}: manifest names another backup")
        return root

    def backup_ids(self) -> list[str]:
        prefix = layout.backups_prefix(self.project)
        return sorted(o.key[len(prefix) :] for o in self.backend.list(prefix))

    def delete_manifest(self, backup_id: str) -> None:
        self.load_manifest(backup_id)  # raises BackupNotFound
        self.backend.delete(layout.backup_key(self.project, backup_id))

    def load_page(self, page_id: bytes, index: ChunkIndex, *, where: str = "") -> bytes:
        loc = index.lookup(page_id)
        if loc is None:
            raise ChunkMissing(f"manifest page {page_id.hex()} ({where}) is in no index")
        return self.read_blob(page_id, loc, where=where or "manifest page")
