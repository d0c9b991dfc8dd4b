"""Microversion negotiation (openstack-compat §4.2, vbs-api §5.2)."""

from __future__ import annotations

import pytest

from vbs.api.schemas import microversions as mv
from vbs.api.schemas.microversions import (
    MAX_VERSION,
    MIN_VERSION,
    ApiVersion,
    is_at_least,
    negotiate,
    negotiate_headers,
    response_headers,
)
from vbs.errors import ServiceError
from vbs.service import codes


@pytest.mark.parametrize(
    ("header", "legacy", "expected"),
    [
        (None, None, ApiVersion(3, 0)),
        ("volume 3.0", None, ApiVersion(3, 0)),
        ("volume 3.45", None, ApiVersion(3, 45)),
        ("volume 3.64", None, ApiVersion(3, 64)),
        ("volume 3.71", None, ApiVersion(3, 71)),
        ("volume latest", None, MAX_VERSION),
        ("Volume 3.5", None, ApiVersion(3, 5)),
        ("volume   3.10  ", None, ApiVersion(3, 10)),
        ("compute 2.1, volume 3.7", None, ApiVersion(3, 7)),
        ("volume 3.7, volume 3.9", None, ApiVersion(3, 7)),
        (None, "3.12", ApiVersion(3, 12)),
        (None, "latest", MAX_VERSION),
        ("volume 3.20", "3.12", ApiVersion(3, 20)),
    ],
)
def test_negotiate_valid(header: str | None, legacy: str | None, expected: ApiVersion) -> None:
    assert negotiate(header, legacy) == expected


@pytest.mark.parametrize(
    ("header", "legacy", "code", "message"),
    [
        ("volume 3", None, codes.NATIVE_BAD_REQUEST,
         "API Version String 3 is of invalid format. Must be of format MajorNum.MinorNum."),
        ("volume 3.x", None, codes.NATIVE_BAD_REQUEST, None),
        ("volume 03.1", None, codes.NATIVE_BAD_REQUEST, None),
        ("volume 3.01", None, codes.NATIVE_BAD_REQUEST, None),
        ("volume Latest", None, codes.NATIVE_BAD_REQUEST, None),
        ("volume", None, codes.NATIVE_BAD_REQUEST, None),
        ("volume 3.1 extra", None, codes.NATIVE_BAD_REQUEST, None),
        (None, "3", codes.NATIVE_BAD_REQUEST, None),
        ("compute 2.1", None, codes.NATIVE_NOT_FOUND, None),
        ("", None, codes.NATIVE_NOT_FOUND, None),
        ("volume 3.72", None, codes.NATIVE_VERSION_NOT_ACCEPTABLE,
         "Version 3.72 is not supported by the API. Minimum is 3.0 and maximum is 3.71."),
        ("volume 3.99", None, codes.NATIVE_VERSION_NOT_ACCEPTABLE,
         "Version 3.99 is not supported by the API. Minimum is 3.0 and maximum is 3.71."),
        ("volume 2.0", None, codes.NATIVE_VERSION_NOT_ACCEPTABLE, None),
        ("volume 4.0", None, codes.NATIVE_VERSION_NOT_ACCEPTABLE, None),
        (None, "3.99", codes.NATIVE_VERSION_NOT_ACCEPTABLE, None),
    ],
)
def test_negotiate_invalid(header: str | None, legacy: str | None, code: codes.ApiCode,
                           message: str | None) -> None:
    with pytest.raises(ServiceError) as info:
        negotiate(header, legacy)
    assert (info.value.api_code, info.value.status) == (code.code, code.status)
    if message is not None:
        assert info.value.message == message


def test_406_is_a_compute_fault() -> None:
    # openstack-compat §4.2: 406 has no friendly fault name in Cinder.
    assert codes.NATIVE_VERSION_NOT_ACCEPTABLE.code == "computeFault"


@pytest.mark.parametrize(
    ("maximum", "header", "expected"),
    [(ApiVersion(3, 45), "volume latest", ApiVersion(3, 45)),
     (ApiVersion(3, 45), "volume 3.45", ApiVersion(3, 45))],
)
def test_negotiate_with_contract_ceiling(maximum: ApiVersion, header: str,
                                         expected: ApiVersion) -> None:
    assert negotiate(header, max_version=maximum) == expected


def test_negotiate_with_contract_ceiling_rejects_above() -> None:
    with pytest.raises(ServiceError) as info:
        negotiate("volume 3.46", max_version=ApiVersion(3, 45))
    assert info.value.status == 406
    assert info.value.message.endswith("Minimum is 3.0 and maximum is 3.45.")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, ApiVersion(3, 0)),
        ({"openstack-api-version": "volume 3.45"}, ApiVersion(3, 45)),
        ({"OPENSTACK-API-VERSION": "volume 3.9"}, ApiVersion(3, 9)),
        ({"x-openstack-volume-api-version": "3.31"}, ApiVersion(3, 31)),
        ({"Content-Type": "application/json"}, ApiVersion(3, 0)),
    ],
)
def test_negotiate_headers_case_insensitive(headers: dict[str, str],
                                            expected: ApiVersion) -> None:
    assert negotiate_headers(headers) == expected


@pytest.mark.parametrize(
    ("version", "minimum", "expected"),
    [
        (ApiVersion(3, 45), "3.45", True),
        (ApiVersion(3, 44), "3.45", False),
        (ApiVersion(3, 100), "3.45", True),
        (ApiVersion(3, 5), "3.45", False),
        ((3, 31), "3.31", True),
        (MIN_VERSION, "3.0", True),
    ],
)
def test_is_at_least(version: tuple[int, int], minimum: str, expected: bool) -> None:
    assert is_at_least(version, minimum) is expected


def test_version_orders_numerically_not_lexically() -> None:
    assert ApiVersion.parse("3.10") > ApiVersion.parse("3.9")
    assert str(ApiVersion(3, 45)) == "3.45"


def test_response_headers() -> None:
    assert response_headers(ApiVersion(3, 45)) == {
        "OpenStack-API-Version": "volume 3.45",
        "Vary": "OpenStack-API-Version",
    }


def test_bounds() -> None:
    # openstacksdk posts backup actions at 3.64 (openstack-compat §7.2).
    assert ApiVersion(3, 0) == MIN_VERSION
    assert ApiVersion(3, 64) <= MAX_VERSION


def test_all_is_honest() -> None:
    for name in mv.__all__:
        assert hasattr(mv, name), name
