"""The imported-volume registry: ``root/imported.json``.

Imported volumes live outside the driver root (an operator's image file or
block device), so the mapping volume id -> external path has to be stored.
File format, version 1::

    {"version": 1, "volumes": {"<volume id>": "<absolute resolved path>"},
     "identity": {"<volume id>": {"dev": 2049, "ino": 1234, "root": "/srv/images"}}}

``identity`` (issue 8) is what was imported: the device and inode of the
file or device and the import root it was admitted under; every open
re-checks them (:mod:`vbs.volumes.verified_open`). It is optional, so files
written before it existed still load (their volumes are checked for
symlinks and roots only) and older readers ignore it.

Writes go through :func:`vbs.volumes.durable.write_atomic` and happen only
under the driver's namespace lock; readers take no lock because a rename
shows them the old or the new file, never a mix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vbs.volumes.durable import write_atomic
from vbs.volumes.errors import InvalidVolumeId, RegistryCorrupt
from vbs.volumes.layout import validate_id

__all__ = ["REGISTRY_VERSION", "ImportIdentity", "load_identities", "load_registry",
           "save_registry"]

REGISTRY_VERSION = 1


def load_registry(path: Path) -> dict[str, Path]:
    """Return the registered mapping (a fresh dict); empty if the file does not exist.

    A file that exists but cannot be understood raises :class:`RegistryCorrupt`
    rather than reading as empty: an empty answer would make imported volumes
    silently disappear and let their ids be reused.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if doc.get("version") != REGISTRY_VERSION:
            raise ValueError(f"unknown registry version {doc.get('version')!r}")
        volumes = doc["volumes"]
        if not isinstance(volumes, dict):
            raise ValueError("'volumes' is not an object")
        result: dict[str, Path] = {}
        for volume_id, target in volumes.items():
            validate_id(volume_id)
            if not isinstance(target, str) or not target.startswith("/"):
                raise ValueError(f"path of {volume_id!r} is not absolute: {target!r}")
            result[volume_id] = Path(target)
        return result
    except (ValueError, KeyError, InvalidVolumeId) as exc:
        raise RegistryCorrupt(f"cannot read volume registry {path}: {exc}") from exc


@dataclass(frozen=True)
class ImportIdentity:
    """What was imported: ``st_dev``/``st_ino`` and the admitting import root."""

    dev: int
    ino: int
    root: str


def load_identities(path: Path) -> dict[str, ImportIdentity]:
    """The recorded identities (volumes imported before they existed have none)."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise RegistryCorrupt(f"cannot read volume registry {path}: {exc}") from exc
    raw = doc.get("identity", {}) if isinstance(doc, dict) else {}
    try:
        return {vid: ImportIdentity(int(v["dev"]), int(v["ino"]), str(v["root"]))
                for vid, v in raw.items()}
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise RegistryCorrupt(f"cannot read volume registry {path}: identity: {exc}") from exc


def save_registry(path: Path, volumes: dict[str, Path],
                  identities: dict[str, ImportIdentity] | None = None) -> None:
    """Atomically and durably replace the registry with ``volumes``.

    ``identities`` None keeps the recorded identities of the volumes that stay.
    """
    if identities is None:
        identities = load_identities(path)
    doc = {
        "version": REGISTRY_VERSION,
        "volumes": {vid: str(target) for vid, target in sorted(volumes.items())},
        "identity": {vid: {"dev": ident.dev, "ino": ident.ino, "root": ident.root}
                     for vid, ident in sorted(identities.items()) if vid in volumes},
    }
    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode())
