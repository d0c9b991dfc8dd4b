"""Cinder-style microversion negotiation for the ``/v3`` API (openstack-compat §4.2).

Request header ``OpenStack-API-Version: volume 3.N`` (name case-insensitive;
the legacy ``X-OpenStack-Volume-API-Version: 3.N`` is read only when the
standard header is absent).  Parsing mirrors Cinder's
``wsgi.Request.set_api_version_request``:

=============================================  ===========================================
header                                         outcome
=============================================  ===========================================
absent                                         the minimum, 3.0
``volume latest``                              the maximum
``volume 3.N`` within [min, max]               3.N
``volume 3`` / ``volume x.y`` (malformed)      400 ``badRequest`` "API Version String …"
present without a ``volume`` item              404 ``itemNotFound``
out of range (``volume 3.99``, ``volume 2.0``) 406 ``computeFault`` "Version … is not
                                               supported by the API. Minimum is … and
                                               maximum is …."
=============================================  ===========================================

Every ``/v3`` response, faults included, echoes the effective version
(:func:`response_headers`); ``/v2`` has no microversions and behaves as 3.0.

Maximum: **3.71** (:data:`MAX_VERSION`), not the 3.45 of vbs-api [D17].
openstacksdk posts backup actions at a hard-coded 3.64 and the ``cinder`` CLI
negotiates up to 3.71 (openstack-compat §2.1, §7.2, §9.3); a 3.45 ceiling
would answer them 406.  Features keep the versions the contract documents
(``with_count`` 3.45, ``~`` filters 3.31).  Both bounds are parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from vbs.service.codes import (
    NATIVE_BAD_REQUEST,
    NATIVE_NOT_FOUND,
    NATIVE_VERSION_NOT_ACCEPTABLE,
    fail,
)

__all__ = [
    "HEADER",
    "LEGACY_HEADER",
    "MAX_VERSION",
    "MIN_VERSION",
    "ApiVersion",
    "is_at_least",
    "negotiate",
    "negotiate_headers",
    "response_headers",
]

HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Volume-API-Version"
_SERVICE = "volume"
_VERSION = re.compile(r"([1-9][0-9]*)\.([1-9][0-9]*|0)")


class ApiVersion(NamedTuple):
    """A ``major.minor`` microversion; compares as the tuple ``(major, minor)``
    so it can be handed to :mod:`vbs.service.backup_rules` gates as is."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @classmethod
    def parse(cls, text: str) -> ApiVersion:
        """``"3.45"`` → ``ApiVersion(3, 45)``; anything else is Cinder's 400."""
        match = _VERSION.fullmatch(text)
        if match is None:
            fail(NATIVE_BAD_REQUEST, f"API Version String {text} is of invalid format. "
                                     "Must be of format MajorNum.MinorNum.")
        return cls(int(match.group(1)), int(match.group(2)))


MIN_VERSION = ApiVersion(3, 0)
MAX_VERSION = ApiVersion(3, 71)


def is_at_least(version: tuple[int, int], minimum: str) -> bool:
    """``is_at_least(v, "3.45")``: does ``version`` enable a feature of ``minimum``?"""
    return version >= ApiVersion.parse(minimum)


def negotiate(
    header: str | None,
    legacy_header: str | None = None,
    *,
    min_version: ApiVersion = MIN_VERSION,
    max_version: ApiVersion = MAX_VERSION,
) -> ApiVersion:
    """The effective version for the raw header values (see the module table).

    Like Cinder, the first comma-separated item that mentions ``volume`` is
    used and ``latest`` is matched case-sensitively; unlike Cinder the service
    word may be in any case (as microversion-parse allows).
    """
    if header is not None:
        requested: str | None = None
        for item in header.split(","):
            if _SERVICE in item.lower():
                parts = item.split()
                if len(parts) == 2 and parts[0].lower() == _SERVICE:
                    requested = parts[1]
                    break
                fail(NATIVE_BAD_REQUEST, f"Invalid {HEADER} header item {item.strip()!r}; "
                                         "expected 'volume <version>'.")
        if requested is None:
            fail(NATIVE_NOT_FOUND, f"API version None is not supported on this method "
                                   f"({HEADER} names no 'volume' version).")
    elif legacy_header is not None:
        requested = legacy_header.strip()
    else:
        return min_version
    if requested == "latest":
        return max_version
    version = ApiVersion.parse(requested)
    if not min_version <= version <= max_version:
        fail(NATIVE_VERSION_NOT_ACCEPTABLE,
             f"Version {version} is not supported by the API. "
             f"Minimum is {min_version} and maximum is {max_version}.")
    return version


def negotiate_headers(
    headers: Mapping[str, str],
    *,
    min_version: ApiVersion = MIN_VERSION,
    max_version: ApiVersion = MAX_VERSION,
) -> ApiVersion:
    """:func:`negotiate` over a header mapping whose names may be in any case."""
    folded = {name.lower(): value for name, value in headers.items()}
    return negotiate(folded.get(HEADER.lower()), folded.get(LEGACY_HEADER.lower()),
                     min_version=min_version, max_version=max_version)


def response_headers(version: ApiVersion) -> dict[str, str]:
    """Headers every ``/v3`` response carries (openstack-compat §4.2)."""
    return {HEADER: f"{_SERVICE} {version}", "Vary": HEADER}
