"""Request rules of the backup family (vbs-api §4, §5, §10; openstack-compat §5)."""

from __future__ import annotations

from typing import Any

import pytest

from vbs.errors import ServiceError
from vbs.service import backup_rules as rules
from vbs.service import codes
from vbs.service.backup_rules import (
    BackupFilters,
    ForceDelete,
    ResetStatus,
    Tag,
    parse_backup_action,
    parse_native_backup_id,
    parse_native_create,
    parse_native_list_query,
    parse_native_restore,
    parse_vbs_create,
    parse_vbs_delete,
    parse_vbs_restore,
)

VOL = "3e0d6a2b-8f61-4c7e-9a54-1b2c3d4e5f60"
SNAP = "61f2d8a0-7c3b-4e59-8d14-0f9e8d7c6b5a"
BK = "9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13"


def expect(code: codes.ApiCode, fn: Any, *args: Any, **kwargs: Any) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        fn(*args, **kwargs)
    assert (info.value.api_code, info.value.status) == (code.code, code.status), info.value
    return info.value


def vbs_body(**fields: Any) -> dict[str, Any]:
    backup: dict[str, Any] = {"volume_id": VOL, "name": "nightly-db01"}
    backup.update(fields)
    return {"backup": {k: v for k, v in backup.items() if v is not _DROP}}


_DROP = object()


# --- VBS create (vbs-api §4.1, §10.2) ----------------------------------------


def test_vbs_create_spec_example() -> None:
    body = {"backup": {"volume_id": VOL, "name": "nightly-db01", "description": "before upgrade",
                       "tags": [{"key": "env", "value": "prod"}],
                       "extend_param": {"FullBackup": "false"}, "stray": 1}}
    req = parse_vbs_create(body)
    assert req == rules.VbsCreateRequest(VOL, None, "nightly-db01", "before upgrade",
                                         (Tag("env", "prod"),), False)


@pytest.mark.parametrize(
    "body",
    [None, [], "backup", 3, {}, {"backup": None}, {"backup": []}, {"backup": "x"}],
)
def test_vbs_create_body_shape(body: object) -> None:
    expect(codes.VB_MALFORMED_BODY, parse_vbs_create, body)


@pytest.mark.parametrize(
    ("volume_id", "code"),
    [
        (_DROP, codes.VB_VOLUME_ID_MISSING),
        (None, codes.VB_VOLUME_ID_MISSING),
        ("", codes.VB_VOLUME_ID_MISSING),
        ("not-a-uuid", codes.VB_VOLUME_ID_MALFORMED),
        (VOL[:-1], codes.VB_VOLUME_ID_MALFORMED),
        (VOL + "0", codes.VB_VOLUME_ID_MALFORMED),
        (VOL.replace("-", ""), codes.VB_VOLUME_ID_MALFORMED),
        (42, codes.VB_VOLUME_ID_MALFORMED),
        (VOL + "\n", codes.VB_VOLUME_ID_MALFORMED),
    ],
)
def test_vbs_create_volume_id_invalid(volume_id: object, code: codes.ApiCode) -> None:
    expect(code, parse_vbs_create, vbs_body(volume_id=volume_id))


def test_vbs_create_volume_id_lowercased() -> None:
    assert parse_vbs_create(vbs_body(volume_id=VOL.upper())).volume_id == VOL


@pytest.mark.parametrize(("raw", "expected"), [(_DROP, None), (None, None), ("", None),
                                               (SNAP, SNAP), (SNAP.upper(), SNAP)])
def test_vbs_create_snapshot_id_valid(raw: object, expected: str | None) -> None:
    assert parse_vbs_create(vbs_body(snapshot_id=raw)).snapshot_id == expected


@pytest.mark.parametrize("raw", ["snap", 7, [SNAP]])
def test_vbs_create_snapshot_id_invalid(raw: object) -> None:
    expect(codes.VB_MALFORMED_BODY, parse_vbs_create, vbs_body(snapshot_id=raw))


@pytest.mark.parametrize("name", ["a", "A" * 64, "db_01-x", "Auto-weekly", "xauto", "aut"])
def test_vbs_create_name_valid(name: str) -> None:
    assert parse_vbs_create(vbs_body(name=name)).name == name


@pytest.mark.parametrize(
    ("name", "code"),
    [
        (_DROP, codes.VB_NAME_MISSING),
        (None, codes.VB_NAME_MISSING),
        ("", codes.VB_NAME_EMPTY),
        ("a" * 65, codes.VB_NAME_TOO_LONG),
        ("has space", codes.VB_NAME_BAD_CHARACTER),
        ("dot.name", codes.VB_NAME_BAD_CHARACTER),
        ("ünï", codes.VB_NAME_BAD_CHARACTER),
        ("tab\t", codes.VB_NAME_BAD_CHARACTER),
        ("line\n", codes.VB_NAME_BAD_CHARACTER),
        (12, codes.VB_NAME_BAD_CHARACTER),
        ("auto", codes.VB_NAME_RESERVED_PREFIX),
        ("autobk_3fa9", codes.VB_NAME_RESERVED_PREFIX),
        ("auto-weekly", codes.VB_NAME_RESERVED_PREFIX),
    ],
)
def test_vbs_create_name_invalid(name: object, code: codes.ApiCode) -> None:
    expect(code, parse_vbs_create, vbs_body(name=name))


@pytest.mark.parametrize(("raw", "expected"), [(_DROP, None), (None, None), ("", None),
                                               ("d" * 64, "d" * 64), ("ok & fine", "ok & fine")])
def test_vbs_create_description_valid(raw: object, expected: str | None) -> None:
    assert parse_vbs_create(vbs_body(description=raw)).description == expected


@pytest.mark.parametrize("raw", ["d" * 65, "a<b", "a>b", 5, ["x"]])
def test_vbs_create_description_invalid(raw: object) -> None:
    expect(codes.VB_DESCRIPTION_INVALID, parse_vbs_create, vbs_body(description=raw))


def _tags(n: int) -> list[dict[str, str]]:
    return [{"key": f"k{i}", "value": "v"} for i in range(n)]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_DROP, ()),
        (None, ()),
        ([], ()),
        (_tags(10), tuple(Tag(f"k{i}", "v") for i in range(10))),
        ([{"key": "k" * 36, "value": "v" * 43}], (Tag("k" * 36, "v" * 43),)),
        ([{"key": "k", "value": ""}], (Tag("k", ""),)),
        ([{"key": "Env", "value": "a"}, {"key": "env", "value": "a"}],
         (Tag("Env", "a"), Tag("env", "a"))),
        ([{"key": "日本", "value": "é-_.:; @#"}], (Tag("日本", "é-_.:; @#"),)),
    ],
)
def test_vbs_create_tags_valid(raw: object, expected: tuple[Tag, ...]) -> None:
    assert parse_vbs_create(vbs_body(tags=raw)).tags == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (_tags(11), codes.VB_TAG_LIMIT),
        ({"key": "k", "value": "v"}, codes.VB_TAG_INVALID),
        ("env=prod", codes.VB_TAG_INVALID),
        (["env"], codes.VB_TAG_INVALID),
        ([{"value": "v"}], codes.VB_TAG_INVALID),
        ([{"key": "", "value": "v"}], codes.VB_TAG_INVALID),
        ([{"key": "k" * 37, "value": "v"}], codes.VB_TAG_INVALID),
        ([{"key": 1, "value": "v"}], codes.VB_TAG_INVALID),
        ([{"key": "k"}], codes.VB_TAG_INVALID),
        ([{"key": "k", "value": None}], codes.VB_TAG_INVALID),
        ([{"key": "k", "value": "v" * 44}], codes.VB_TAG_INVALID),
        ([{"key": "k", "value": "v"}, {"key": "k", "value": "w"}], codes.VB_TAG_INVALID),
    ]
    + [([{"key": f"a{ch}b", "value": "v"}], codes.VB_TAG_INVALID) for ch in "=*<>\\,|/\x00\x1f\t"]
    + [([{"key": "k", "value": f"a{ch}b"}], codes.VB_TAG_INVALID) for ch in "=*<>\\,|/\x00\n"],
)
def test_vbs_create_tags_invalid(raw: object, code: codes.ApiCode) -> None:
    expect(code, parse_vbs_create, vbs_body(tags=raw))


@pytest.mark.parametrize(
    ("extend", "full"),
    [(_DROP, False), (None, False), ({}, False), ({"FullBackup": "true"}, True),
     ({"FullBackup": "TRUE"}, True), ({"FullBackup": True}, True),
     ({"FullBackup": "false"}, False), ({"FullBackup": False}, False),
     ({"FullBackup": "yes"}, False), ({"FullBackup": 1}, False), ({"Other": "true"}, False)],
)
def test_vbs_create_extend_param(extend: object, full: bool) -> None:
    assert parse_vbs_create(vbs_body(extend_param=extend)).full_backup is full


def test_vbs_create_extend_param_not_object() -> None:
    expect(codes.VB_MALFORMED_BODY, parse_vbs_create, vbs_body(extend_param="true"))


# --- VBS delete / restore (vbs-api §4.2, §4.3, §10.3, §10.4) --------------------


@pytest.mark.parametrize("backup_id", ["", "x", BK[:-1], "name-of-backup"])
def test_vbs_delete_bad_id_is_not_found(backup_id: str) -> None:
    expect(codes.VB_BACKUP_NOT_FOUND, parse_vbs_delete, backup_id)


def test_vbs_delete_valid() -> None:
    assert parse_vbs_delete(BK.upper()) == rules.VbsDeleteRequest(BK)


def test_vbs_restore_valid() -> None:
    req = parse_vbs_restore(BK, {"restore": {"volume_id": VOL, "extra": 1}})
    assert req == rules.VbsRestoreRequest(BK, VOL)


@pytest.mark.parametrize(
    ("backup_id", "body", "code"),
    [
        ("", {"restore": {"volume_id": VOL}}, codes.VB_RESTORE_BACKUP_ID_MISSING),
        ("abc", {"restore": {"volume_id": VOL}}, codes.VB_RESTORE_BACKUP_ID_MALFORMED),
        (BK, None, codes.VB_RESTORE_MALFORMED),
        (BK, [], codes.VB_RESTORE_MALFORMED),
        (BK, {}, codes.VB_RESTORE_MALFORMED),
        (BK, {"restore": None}, codes.VB_RESTORE_MALFORMED),
        (BK, {"restore": VOL}, codes.VB_RESTORE_MALFORMED),
        (BK, {"restore": {}}, codes.VB_RESTORE_VOLUME_ID_INVALID),
        (BK, {"restore": {"volume_id": ""}}, codes.VB_RESTORE_VOLUME_ID_INVALID),
        (BK, {"restore": {"volume_id": "disk-1"}}, codes.VB_RESTORE_VOLUME_ID_INVALID),
        (BK, {"restore": {"volume_id": 5}}, codes.VB_RESTORE_VOLUME_ID_INVALID),
    ],
)
def test_vbs_restore_invalid(backup_id: str, body: object, code: codes.ApiCode) -> None:
    expect(code, parse_vbs_restore, backup_id, body)


# --- native create (vbs-api §5.1, openstack-compat §5.3) ------------------------


def native(**fields: Any) -> dict[str, Any]:
    backup: dict[str, Any] = {"volume_id": VOL}
    backup.update(fields)
    return {"backup": {k: v for k, v in backup.items() if v is not _DROP}}


def test_native_create_cinderclient_body() -> None:
    body = {"backup": {"volume_id": VOL, "container": None, "name": None, "description": None,
                       "incremental": False, "force": False, "snapshot_id": None}}
    req = parse_native_create(body)
    assert req == rules.NativeCreateRequest(VOL, None, None, None, None, False, False, (), None)


def test_native_create_spec_example() -> None:
    body = {"backup": {"volume_id": VOL, "snapshot_id": SNAP, "name": "pre-patch",
                       "project_id": "ignored"}}
    req = parse_native_create(body)
    assert (req.snapshot_id, req.name) == (SNAP, "pre-patch")


@pytest.mark.parametrize(
    ("fields", "version"),
    [
        ({"volume_id": _DROP}, (3, 0)),
        ({"volume_id": None}, (3, 0)),
        ({"volume_id": "vol"}, (3, 0)),
        ({"snapshot_id": "snap"}, (3, 0)),
        ({"name": ""}, (3, 0)),
        ({"name": "n" * 65}, (3, 0)),
        ({"name": "bad name"}, (3, 0)),
        ({"name": "autox"}, (3, 0)),
        ({"name": 3}, (3, 0)),
        ({"description": "d" * 256}, (3, 0)),
        ({"description": "<b>"}, (3, 0)),
        ({"description": 1}, (3, 0)),
        ({"container": "c" * 256}, (3, 0)),
        ({"container": ["c"]}, (3, 0)),
        ({"incremental": "maybe"}, (3, 0)),
        ({"force": 2}, (3, 0)),
        ({"metadata": {"k": "v"}}, (3, 42)),
        ({"metadata": None}, (3, 0)),
        ({"metadata": ["k"]}, (3, 43)),
        ({"metadata": {"k": 1}}, (3, 43)),
        ({"metadata": {"": "v"}}, (3, 43)),
        ({"metadata": {"k": "v" * 256}}, (3, 43)),
        ({"availability_zone": "az1"}, (3, 50)),
        ({"availability_zone": 5}, (3, 51)),
    ],
)
def test_native_create_invalid(fields: dict[str, Any], version: tuple[int, int]) -> None:
    expect(codes.NATIVE_BAD_REQUEST, parse_native_create, native(**fields), version=version)


@pytest.mark.parametrize("body", [None, [], {}, {"backup": None}, {"backup": "x"}])
def test_native_create_body_shape(body: object) -> None:
    expect(codes.NATIVE_BAD_REQUEST, parse_native_create, body)


@pytest.mark.parametrize(
    ("fields", "version", "attr", "expected"),
    [
        ({"name": "n" * 64}, (3, 0), "name", "n" * 64),
        ({"description": "d" * 255}, (3, 0), "description", "d" * 255),
        ({"description": ""}, (3, 0), "description", ""),
        ({"container": "c" * 255}, (3, 0), "container", "c" * 255),
        ({"incremental": "yes"}, (3, 0), "incremental", True),
        ({"incremental": True}, (3, 0), "incremental", True),
        ({"force": "False"}, (3, 0), "force", False),
        ({"force": "1"}, (3, 0), "force", True),
        ({"metadata": {"k": "v"}}, (3, 43), "metadata", (("k", "v"),)),
        ({"metadata": None}, (3, 43), "metadata", ()),
        ({"availability_zone": "az1"}, (3, 51), "availability_zone", "az1"),
        ({"snapshot_id": SNAP.upper()}, (3, 0), "snapshot_id", SNAP),
    ],
)
def test_native_create_valid(fields: dict[str, Any], version: tuple[int, int], attr: str,
                             expected: object) -> None:
    assert getattr(parse_native_create(native(**fields), version=version), attr) == expected


def test_native_create_snapshot_required_switch() -> None:
    expect(codes.NATIVE_BAD_REQUEST, parse_native_create, native(), require_snapshot_id=True)
    assert parse_native_create(native(snapshot_id=SNAP), require_snapshot_id=True).snapshot_id


# --- native restore (vbs-api §5.6, openstack-compat §5.9) ------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"restore": {"volume_id": VOL}}, rules.NativeRestoreRequest(VOL, None)),
        ({"restore": {"volume_id": VOL, "name": "x"}}, rules.NativeRestoreRequest(VOL, None)),
        ({"restore": {"volume_id": None, "name": "new"}}, rules.NativeRestoreRequest(None, "new")),
        ({"restore": {"name": "n" * 255}}, rules.NativeRestoreRequest(None, "n" * 255)),
        ({"restore": {"volume_id": None, "name": None}}, rules.NativeRestoreRequest(None, None)),
    ],
)
def test_native_restore_valid(body: object, expected: rules.NativeRestoreRequest) -> None:
    assert parse_native_restore(body) == expected


@pytest.mark.parametrize(
    "body",
    [None, {}, {"restore": None}, {"restore": "x"}, {"restore": {"volume_id": "v"}},
     {"restore": {"name": 5}}, {"restore": {"name": "n" * 256}}],
)
def test_native_restore_invalid(body: object) -> None:
    expect(codes.NATIVE_BAD_REQUEST, parse_native_restore, body)


@pytest.mark.parametrize("raw", ["", "pre-patch", BK + "x"])
def test_native_backup_id_not_uuid_is_404(raw: str) -> None:
    expect(codes.NATIVE_NOT_FOUND, parse_native_backup_id, raw)


def test_native_backup_id_valid() -> None:
    assert parse_native_backup_id(BK.upper()) == BK


# --- native list query (vbs-api §5.2) ---------------------------------------------


@pytest.mark.parametrize(
    ("query", "version", "filters", "with_count"),
    [
        ({}, (3, 0), BackupFilters(), False),
        ({"name": "a", "status": "available", "volume_id": VOL}, (3, 0),
         BackupFilters(name="a", status="available", volume_id=VOL), False),
        ({"status": "error_deleting"}, (3, 0), BackupFilters(status="error_deleting"), False),
        ({"name~": "a", "status~": "err", "volume_id~": "3e"}, (3, 30), BackupFilters(), False),
        ({"name~": "a", "status~": "err", "volume_id~": "3e"}, (3, 31),
         BackupFilters(name_like="a", status_like="err", volume_id_like="3e"), False),
        ({"with_count": "true"}, (3, 44), BackupFilters(), False),
        ({"with_count": "bogus"}, (3, 44), BackupFilters(), False),
        ({"with_count": "True"}, (3, 45), BackupFilters(), True),
        ({"with_count": "1"}, (3, 71), BackupFilters(), True),
        ({"with_count": "false"}, (3, 45), BackupFilters(), False),
        ({"all_tenants": "1", "project_id": "p"}, (3, 71), BackupFilters(), False),
    ],
)
def test_native_list_query_valid(query: dict[str, str], version: tuple[int, int],
                                 filters: BackupFilters, with_count: bool) -> None:
    parsed = parse_native_list_query(query, version=version)
    assert (parsed.filters, parsed.with_count) == (filters, with_count)


@pytest.mark.parametrize(
    ("query", "version"),
    [
        ({"status": "deleted"}, (3, 0)),
        ({"status": "AVAILABLE"}, (3, 0)),
        ({"status": ""}, (3, 0)),
        ({"with_count": "maybe"}, (3, 45)),
        ({"limit": "0"}, (3, 0)),
        ({"sort_key": "volume_type"}, (3, 0)),
    ],
)
def test_native_list_query_invalid(query: dict[str, str], version: tuple[int, int]) -> None:
    expect(codes.NATIVE_BAD_REQUEST, parse_native_list_query, query, version=version)


def test_native_list_query_page() -> None:
    page = parse_native_list_query({"limit": "5", "marker": BK, "sort": "name:asc"}).page
    assert (page.limit, page.marker, page.sort_key, page.sort_dir) == (5, BK, "name", "asc")


# --- backup actions (openstack-compat §5.8) ----------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"os-force_delete": None}, ForceDelete()),
        ({"os-force_delete": {}}, ForceDelete()),
        ({"os-reset_status": {"status": "available"}}, ResetStatus("available")),
        ({"os-reset_status": {"status": "ERROR"}}, ResetStatus("error")),
    ],
)
def test_backup_action_valid(body: object, expected: object) -> None:
    assert parse_backup_action(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        None, [], {}, "os-force_delete",
        {"os-force_delete": None, "os-reset_status": {"status": "error"}},
        {"os-reset_status": {}},
        {"os-reset_status": None},
        {"os-reset_status": {"status": "creating"}},
        {"os-reset_status": {"status": 1}},
        {"os-migrate": {}},
    ],
)
def test_backup_action_invalid(body: object) -> None:
    expect(codes.NATIVE_BAD_REQUEST, parse_backup_action, body)


def test_reset_status_message_matches_cinder() -> None:
    err = expect(codes.NATIVE_BAD_REQUEST, parse_backup_action,
                 {"os-reset_status": {"status": "creating"}})
    assert err.message == ("Backup status: creating is invalid, valid statuses are: "
                           "['available', 'error'].")


# --- tag text helpers (§2.13) --------------------------------------------------------


@pytest.mark.parametrize(("text", "deny_ok", "allow_ok"), [
    ("team_a-1", True, True), ("日本語", True, True), ("", True, True),
    ("a b", True, False), ("a.b", True, False), ("a=b", False, False), ("a\x7fb", True, False),
])
def test_tag_text_helpers(text: str, deny_ok: bool, allow_ok: bool) -> None:
    assert rules.is_deny_list_text(text) is deny_ok
    assert rules.is_allow_list_text(text) is allow_ok


def test_all_is_honest() -> None:
    for name in rules.__all__:
        assert hasattr(rules, name), name


# --- error catalogue (vbs-api §10) ---------------------------------------------------

# Copied from vbs-api §10 (code, HTTP); a code bound to "404 / 500" appears twice.
SPEC_CODES = """
common.0011 404|common.0011 500|VolumeBackup.0014 500|VolumeBackup.0041 401|
VolumeBackup.0042 403|VolumeBackup.0044 403|VolumeBackup.0002 400|VolumeBackup.0003 400|
VolumeBackup.0004 400|VolumeBackup.0005 400|VolumeBackup.0006 400|VolumeBackup.0007 400|
VolumeBackup.0008 403|VolumeBackup.0009 500|VolumeBackup.0010 400|VolumeBackup.0011 400|
VolumeBackup.0012 400|VolumeBackup.0013 400|VolumeBackup.0017 500|VolumeBackup.0018 500|
VolumeBackup.0019 500|VolumeBackup.0020 500|VolumeBackup.0021 404|VolumeBackup.0022 500|
VolumeBackup.0023 500|VolumeBackup.0024 500|VolumeBackup.0025 500|VolumeBackup.0026 400|
VolumeBackup.0027 500|VolumeBackup.0028 500|VolumeBackup.0029 500|VolumeBackup.0030 500|
VolumeBackup.0035 500|VolumeBackup.0036 500|VolumeBackup.0037 500|VolumeBackup.0038 500|
VolumeBackup.0039 500|VolumeBackup.0040 400|VolumeBackup.0043 500|VolumeBackup.0049 400|
VolumeBackup.0050 400|VolumeBackup.0053 400|VolumeBackup.0062 500|VolumeBackup.0063 500|
VolumeBackup.0064 500|VolumeBackup.0070 500|VolumeBackup.0071 400|VolumeBackup.0072 400|
VolumeBackup.0073 400|VolumeBackup.0074 400|VolumeBackup.0075 400|VolumeBackup.0076 400|
VolumeBackup.0077 400|VolumeBackup.0078 400|VolumeBackup.0079 400|VolumeBackup.0080 400|
VolumeBackup.0081 400|VolumeBackup.0082 400|VolumeBackup.0083 400|VolumeBackup.0084 400|
VolumeBackup.0100 500|VolumeBackup.0101 500|VolumeBackup.0102 500|VolumeBackup.0103 500|
VolumeBackup.0104 500|VolumeBackup.0105 400|VolumeBackup.0109 500|VolumeBackup.0110 404|
VolumeBackup.0110 500|VolumeBackup.0113 400|VolumeBackup.0123 500|VolumeBackup.0125 500|
VolumeBackup.0900 503|VolumeBackup.0111 404|VolumeBackup.0200 500|VolumeBackup.0201 500|
VolumeBackup.0202 400|VolumeBackup.0203 400|VolumeBackup.0204 400|VolumeBackup.0205 400|
VolumeBackup.0206 400|VolumeBackup.0207 404|VolumeBackup.0208 400|VolumeBackup.0209 400|
VolumeBackup.0210 400|VolumeBackup.0211 400|VolumeBackup.0089 400|AutoBackup.0000 400|
AutoBackup.0001 400|AutoBackup.0002 401|AutoBackup.0003 401|AutoBackup.0005 401|
AutoBackup.0006 400|AutoBackup.0008 400|AutoBackup.0009 500|AutoBackup.0100 400|
AutoBackup.0101 400|AutoBackup.0102 400|AutoBackup.0103 400|AutoBackup.0104 400|
AutoBackup.0105 400|AutoBackup.0106 400|AutoBackup.0107 400|AutoBackup.0203 400|
AutoBackup.0204 400|AutoBackup.0205 404|AutoBackup.1100 404|AutoBackup.1300 500|
AutoBackup.1400 400|AutoBackup.1700 500|AutoBackup.0206 400|AutoBackup.0207 400|
AutoBackup.0208 500|AutoBackup.0209 400|AutoBackup.0210 400|AutoBackup.0211 400|
AutoBackup.0213 403|AutoBackup.0214 400|AutoBackup.0215 400|AutoBackup.0216 404|
AutoBackup.0217 400|AutoBackup.0218 400|AutoBackup.0220 400|AutoBackup.0221 400|
AutoBackup.0222 400|AutoBackup.0225 400|AutoBackup.0226 400|AutoBackup.9002 500
"""


def _spec_codes() -> set[tuple[str, int]]:
    pairs = (item.split() for item in SPEC_CODES.replace("\n", "").split("|"))
    return {(code, int(status)) for code, status in pairs}


def test_catalogue_matches_spec_section_10() -> None:
    # Native fault names (badRequest …) carry no module prefix; every §10 code does.
    catalogued = {(c.code, c.status) for c in codes.ALL_CODES if "." in c.code}
    assert len(_spec_codes()) == 128
    assert catalogued == _spec_codes()


def test_catalogue_has_no_duplicate_bindings_and_all_is_honest() -> None:
    keys = [(c.code, c.status) for c in codes.ALL_CODES]
    assert len(keys) == len(set(keys))
    assert len({c.message for c in codes.ALL_CODES}) > 100
    exported = {name for name in codes.__all__ if isinstance(getattr(codes, name), codes.ApiCode)}
    assert {getattr(codes, n) for n in exported} == set(codes.ALL_CODES)


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (codes.VB_NAME_TOO_LONG, None, "The backup name exceeds 64 characters."),
        (codes.VB_NAME_TOO_LONG, "backup.name is 65 long", "backup.name is 65 long"),
        (codes.NATIVE_NOT_FOUND, None, "The resource could not be found."),
    ],
)
def test_fail_raises_service_error(code: codes.ApiCode, message: str | None,
                                   expected: str) -> None:
    err = expect(code, codes.fail, code, message)
    assert err.message == expected


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("common.0011", None, codes.COMMON_JOB_NOT_FOUND),
        ("common.0011", 500, codes.COMMON_JOB_LOOKUP_FAILED),
        ("VolumeBackup.0003", None, codes.VB_NAME_TOO_LONG),
        ("VolumeBackup.9999", None, None),
        ("VolumeBackup.0003", 500, None),
    ],
)
def test_lookup(code: str, status: int | None, expected: codes.ApiCode | None) -> None:
    assert codes.lookup(code, status) == expected
