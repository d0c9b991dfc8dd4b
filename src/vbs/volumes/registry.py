"""The imported-volume registry: ``root/imported.json``.

Imported volumes live outside the driver root (an operator's image file or
block device), so the mapping volume id -> external path has to be stored.
File format, version 1::

    {"version": 1, "volumes": {"<volume id>": "<absolute resolved path>"}}

Writes go through :func:`vbs.volumes.durable.write_atomic` and happen only
under the driver's namespace lock; readers take no lock because a rename
shows them the old or the new file, never a mix.
"""

from __future__ import annotations

import json
from pathlib import Path

from vbs.volumes.durable import write_atomic
from vbs.volumes.errors import InvalidVolumeId, RegistryCorrupt
from vbs.volumes.layout import validate_id

__all__ = ["REGISTRY_VERSION", "load_registry", "save_registry"]

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


def save_registry(path: Path, volumes: dict[str, Path]) -> None:
    """Atomically and durably replace the registry with ``volumes``."""
    doc = {
        "version": REGISTRY_VERSION,
        "volumes": {vid: str(target) for vid, target in sorted(volumes.items())},
    }
    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode())
