"""Id validation, naming and the imported-volume registry file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vbs.volumes.errors import InvalidVolumeId, RegistryCorrupt
from vbs.volumes.layout import snapshot_file, validate_id, volume_file
from vbs.volumes.registry import load_registry, save_registry

BAD_IDS = [
    "",
    "a" * 65,
    "..",
    ".",
    "../etc",
    "a/b",
    "/abs",
    "a.img",
    "a\n",
    "a\x00b",
    "a b",
    "é",
    "a_b",
    None,
    7,
    b"abc",
]


@pytest.mark.parametrize(
    "good", ["a", "A-9", "0b6f6b5e-1a2b-4c3d-8e9f-001122334455", "x" * 64, "-"]
)
def test_valid_ids(good: str, tmp_path: Path) -> None:
    assert validate_id(good) == good
    assert volume_file(tmp_path, good) == tmp_path / f"{good}.img"
    assert snapshot_file(tmp_path, good) == tmp_path / "snapshots" / f"{good}.img"


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_invalid_ids(bad: object, tmp_path: Path) -> None:
    with pytest.raises(InvalidVolumeId, match="invalid volume id"):
        validate_id(bad)
    with pytest.raises(InvalidVolumeId):
        volume_file(tmp_path, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidVolumeId, match="invalid snapshot id"):
        snapshot_file(tmp_path, bad)  # type: ignore[arg-type]


def test_registry_missing_file_is_empty(tmp_path: Path) -> None:
    assert load_registry(tmp_path / "imported.json") == {}


def test_registry_round_trip_leaves_no_temporaries(tmp_path: Path) -> None:
    path = tmp_path / "imported.json"
    volumes = {"vol-1": Path("/srv/images/a.img"), "vol-2": Path("/dev/sdz")}
    save_registry(path, volumes)
    assert load_registry(path) == volumes
    save_registry(path, {"vol-2": Path("/dev/sdz")})
    assert load_registry(path) == {"vol-2": Path("/dev/sdz")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imported.json"]
    assert json.loads(path.read_text())["version"] == 1


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"[]",
        b'{"version": 2, "volumes": {}}',
        b'{"version": 1}',
        b'{"version": 1, "volumes": []}',
        b'{"version": 1, "volumes": {"../x": "/a"}}',
        b'{"version": 1, "volumes": {"v": "relative/path"}}',
        b'{"version": 1, "volumes": {"v": 5}}',
        b"\xff\xfe",
    ],
)
def test_registry_corrupt_is_an_error_not_empty(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "imported.json"
    path.write_bytes(content)
    with pytest.raises(RegistryCorrupt, match="imported.json"):
        load_registry(path)
