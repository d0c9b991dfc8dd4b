"""Pagination, sorting and next links (vbs-api §2.6, §2.7; openstack-compat §5.4)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from vbs.errors import ServiceError
from vbs.service import codes, listing
from vbs.service.listing import (
    NATIVE_BACKUP_LIST,
    POLICY_TASK_LIST,
    SHARE_LIST,
    ListRules,
    PageRequest,
    collection_links,
    has_next_page,
    next_page_href,
    parse_int,
    parse_page_request,
    parse_query_bool,
)

BK = "9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13"


@pytest.mark.parametrize(
    ("query", "rules_", "expected"),
    [
        ({}, NATIVE_BACKUP_LIST, PageRequest(1000, 0, None, "created_at", "desc")),
        ({"limit": "1"}, NATIVE_BACKUP_LIST, PageRequest(1, 0, None, "created_at", "desc")),
        ({"limit": "1000"}, NATIVE_BACKUP_LIST, PageRequest(1000)),
        ({"limit": "1001"}, NATIVE_BACKUP_LIST, PageRequest(1000)),
        ({"limit": "999999999999"}, NATIVE_BACKUP_LIST, PageRequest(1000)),
        ({"offset": "0"}, NATIVE_BACKUP_LIST, PageRequest(1000, 0)),
        ({"offset": "7", "marker": BK}, NATIVE_BACKUP_LIST, PageRequest(1000, 7, BK)),
        ({"marker": ""}, NATIVE_BACKUP_LIST, PageRequest(1000, 0, None)),
        ({"sort_key": "name", "sort_dir": "asc"}, NATIVE_BACKUP_LIST,
         PageRequest(1000, sort_key="name", sort_dir="asc")),
        ({"sort_dir": "ASC"}, NATIVE_BACKUP_LIST, PageRequest(1000, sort_dir="asc")),
        ({"sort_key": "display_name"}, NATIVE_BACKUP_LIST, PageRequest(1000, sort_key="name")),
        ({"sort_key": "container_format"}, NATIVE_BACKUP_LIST, PageRequest(1000)),
        ({"sort_key": "disk_format"}, NATIVE_BACKUP_LIST, PageRequest(1000)),
        ({"sort_key": "size"}, NATIVE_BACKUP_LIST, PageRequest(1000, sort_key="size")),
        ({"sort_key": "updated_at"}, NATIVE_BACKUP_LIST, PageRequest(1000, sort_key="updated_at")),
        ({"sort_key": "id"}, NATIVE_BACKUP_LIST, PageRequest(1000, sort_key="id")),
        ({"sort_key": "status"}, NATIVE_BACKUP_LIST, PageRequest(1000, sort_key="status")),
        ({"sort": "display_name:asc"}, NATIVE_BACKUP_LIST,
         PageRequest(1000, sort_key="name", sort_dir="asc")),
        ({"sort": "size"}, NATIVE_BACKUP_LIST, PageRequest(1000, sort_key="size")),
        ({"limit": "5", "marker": BK}, SHARE_LIST, PageRequest(5, 0, None)),
        ({}, POLICY_TASK_LIST, PageRequest(20)),
        ({"limit": "1001", "marker": "job-1", "sort_key": "created_at", "sort_dir": "asc"},
         POLICY_TASK_LIST, PageRequest(1000, 0, "job-1", "created_at", "asc")),
        ({"sort": "name:asc"}, POLICY_TASK_LIST, PageRequest(20)),
    ],
)
def test_parse_page_request_valid(query: dict[str, str], rules_: ListRules,
                                  expected: PageRequest) -> None:
    assert parse_page_request(query, rules_) == expected


@pytest.mark.parametrize(
    ("query", "rules_", "code"),
    [
        ({"limit": "0"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"limit": "-1"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"limit": "ten"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"limit": "1.5"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"limit": ""}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"offset": "-1"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"offset": "x"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"sort_key": "volume_type"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"sort_key": "name,id"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"sort_dir": "up"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"sort": "name:sideways"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"sort": "name:asc,id:asc"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"sort": "bogus"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"sort": "name", "sort_key": "name"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"sort": "name", "sort_dir": "asc"}, NATIVE_BACKUP_LIST, codes.NATIVE_BAD_REQUEST),
        ({"limit": "0"}, SHARE_LIST, codes.NATIVE_BAD_REQUEST),
        ({"limit": "0"}, POLICY_TASK_LIST, codes.AB_MALFORMED_REQUEST),
        ({"offset": "-3"}, POLICY_TASK_LIST, codes.AB_MALFORMED_REQUEST),
        ({"sort_key": "name"}, POLICY_TASK_LIST, codes.AB_MALFORMED_REQUEST),
        ({"sort_dir": "random"}, POLICY_TASK_LIST, codes.AB_MALFORMED_REQUEST),
    ],
)
def test_parse_page_request_invalid(query: dict[str, str], rules_: ListRules,
                                    code: codes.ApiCode) -> None:
    with pytest.raises(ServiceError) as info:
        parse_page_request(query, rules_)
    assert (info.value.api_code, info.value.status) == (code.code, code.status)


@pytest.mark.parametrize(
    ("raw", "minimum", "expected"),
    [("0", 0, 0), ("10", 1, 10), (10, 1, 10), ("1000", 1, 1000), ("-0", 0, 0)],
)
def test_parse_int_valid(raw: object, minimum: int, expected: int) -> None:
    assert parse_int("limit", raw, minimum=minimum, invalid=codes.AB_TAG_INVALID) == expected


@pytest.mark.parametrize(("raw", "minimum"), [
    ("0", 1), (-1, 0), (True, 0), (1.0, 0), (None, 0), ("1e3", 0), (" 5", 0), ("٣", 0)])
def test_parse_int_invalid(raw: object, minimum: int) -> None:
    with pytest.raises(ServiceError) as info:
        parse_int("limit", raw, minimum=minimum, invalid=codes.AB_TAG_INVALID)
    assert info.value.api_code == "AutoBackup.0214"


@pytest.mark.parametrize(("raw", "expected"), [
    ("true", True), ("True", True), ("TRUE", True), ("1", True),
    ("false", False), ("False", False), ("0", False)])
def test_parse_query_bool(raw: str, expected: bool) -> None:
    assert parse_query_bool("x", raw, invalid=codes.NATIVE_BAD_REQUEST) is expected


@pytest.mark.parametrize("raw", ["yes", "", "2", "t"])
def test_parse_query_bool_invalid(raw: str) -> None:
    with pytest.raises(ServiceError):
        parse_query_bool("share_to_me", raw, invalid=codes.NATIVE_BAD_REQUEST)


ROOT = "https://vbs.example.internal/v3/4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091/backups"


def test_next_link_matches_spec_example() -> None:
    # vbs-api §5.2: GET /v3/4f1c…8091/backups?status=available&limit=1
    href = next_page_href(ROOT, {"status": "available", "limit": "1"}, limit=1, marker=BK)
    assert href == f"{ROOT}?status=available&limit=1&marker={BK}"


@pytest.mark.parametrize(
    ("query", "expected_pairs"),
    [
        ([], [("limit", "2"), ("marker", BK)]),
        ([("marker", "old"), ("offset", "4"), ("limit", "9")], [("limit", "2"), ("marker", BK)]),
        ([("name~", "db 01"), ("sort", "name:asc"), ("status", "available"),
          ("status", "error")],
         [("name~", "db 01"), ("sort", "name:asc"), ("status", "available"),
          ("status", "error"), ("limit", "2"), ("marker", BK)]),
    ],
)
def test_next_link_keeps_filters_and_drops_paging(
    query: list[tuple[str, str]], expected_pairs: list[tuple[str, str]]
) -> None:
    href = next_page_href(ROOT + "/detail", query, limit=2, marker=BK)
    parts = urlsplit(href)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == ROOT + "/detail"
    assert parse_qsl(parts.query) == expected_pairs


@pytest.mark.parametrize(
    ("last_id", "has_more", "expected_len"),
    [(BK, True, 1), (BK, False, 0), (None, True, 0)],
)
def test_collection_links(last_id: str | None, has_more: bool, expected_len: int) -> None:
    links = collection_links(ROOT, {}, limit=1, last_id=last_id, has_more=has_more)
    assert len(links) == expected_len
    for link in links:
        assert link["rel"] == "next"
        assert link["href"].endswith(f"limit=1&marker={last_id}")


@pytest.mark.parametrize(("returned", "limit", "expected"), [
    (0, 10, False), (9, 10, False), (10, 10, True), (1, 1, True)])
def test_has_next_page(returned: int, limit: int, expected: bool) -> None:
    assert has_next_page(returned, limit) is expected


def test_all_is_honest() -> None:
    for name in listing.__all__:
        assert hasattr(listing, name), name
