"""Open a backend from a location string: a path, a ``file://`` URL or ``s3://bucket/prefix``.

This is the one place that turns a user-supplied repository location (CLI
argument, settings value) into a Backend, so every entry point accepts the
same spellings:

=============================  =============================================
location                       backend
=============================  =============================================
``/srv/vbs/repo``, ``./repo``  LocalBackend on that directory (made absolute)
``file:///srv/vbs/repo``       the same (host must be empty or ``localhost``)
``s3://bucket``                RetryingBackend(S3Backend(bucket))
``s3://bucket/some/prefix``    RetryingBackend(S3Backend(bucket, "some/prefix"))
=============================  =============================================

The local backend is not wrapped in retries: local errors are permanent in
practice, and a wrapper would only delay their report.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from vbs.errors import BackendError, ConfigError
from vbs.fsutil import makedirs_durable
from vbs.repository.backends.base import Backend
from vbs.repository.backends.local import LocalBackend
from vbs.repository.backends.retry import RetryingBackend

__all__ = ["open_backend"]


def _local_path(location: str, scheme: str) -> Path:
    if scheme == "file":
        parts = urlsplit(location)
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"file URL {location!r}: only local paths are supported")
        if parts.query or parts.fragment:
            raise ConfigError(f"file URL {location!r}: query and fragment are not allowed")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ConfigError(f"file URL {location!r} must hold an absolute path")
        return Path(path)
    return Path(location).expanduser().absolute()


def open_backend(
    location: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    create: bool = False,
) -> Backend:
    """Return the backend for *location* (see the module table).

    ``create=True`` creates the directory (durably) or the bucket if it is
    missing; without it nothing is created and, for S3, nothing is contacted
    yet. The S3 keyword arguments are ignored for local locations and default
    to boto3's usual environment chain for S3. Raises ConfigError for a
    location that cannot be parsed or names an unsupported scheme, and
    BackendError if creating the directory or bucket fails.
    """
    if not location or not location.strip():
        raise ConfigError("repository location must not be empty")
    scheme = location.split("://", 1)[0].lower() if "://" in location else ""
    if scheme == "s3":
        parts = urlsplit(location)
        if not parts.netloc:
            raise ConfigError(f"S3 location {location!r} has no bucket (s3://bucket/prefix)")
        if parts.query or parts.fragment:
            raise ConfigError(f"S3 location {location!r}: query and fragment are not allowed")
        from vbs.repository.backends.s3 import S3Backend  # boto3 is slow to import

        s3 = S3Backend(
            parts.netloc,
            unquote(parts.path).strip("/"),
            endpoint_url=endpoint_url,
            region=region,
            access_key=access_key,
            secret_key=secret_key,
            create_bucket=create,
        )
        return RetryingBackend(s3)
    if scheme not in ("", "file"):
        raise ConfigError(
            f"unsupported repository location {location!r}: use a path, file:// or s3://"
        )
    root = _local_path(location, scheme)
    if create:
        try:
            makedirs_durable(root)
            os.chmod(root, 0o700)  # also when the operator created it: it holds all data
        except OSError as exc:
            raise BackendError(
                f"cannot create repository directory {root}: {exc.strerror or exc}"
            ) from exc
    return LocalBackend(root)
