"""S3 backend: key ``a/b`` is the object ``<prefix>/a/b`` in one bucket.

Works with any S3-compatible store (AWS S3, Ceph RGW, MinIO, SeaweedFS):
only PutObject, GetObject (with Range), HeadObject, ListObjectsV2,
DeleteObject and, on request, CreateBucket are used, always with path-style
addressing. A single PutObject is atomic on every S3 implementation, so no
temp objects exist; objects up to 5 GiB fit in one PUT (packs are ~32 MiB).

One boto3 client is created per backend and shared by all threads (clients
are thread-safe, sessions are not). Its HTTP pool is bounded by
``max_pool_connections``; callers that upload with more threads than that
just wait for a connection. botocore's own retries are switched off:
:class:`~vbs.repository.backends.retry.RetryingBackend` owns retrying, and
two retry layers would multiply attempts and delays.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import urllib3.exceptions
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    SSLError,
)

from vbs.errors import BackendError, ConfigError, ObjectNotFound, TransientBackendError
from vbs.repository.backends.base import ObjectInfo, validate_key, validate_prefix

__all__ = ["S3Backend"]

# Error codes meaning "try again later" whatever the HTTP status says.
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
    }
)
_TRANSIENT_STATUS = frozenset({408, 429})
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})


def _client_error(exc: ClientError, action: str, where: str) -> BackendError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    message = f"s3 backend: {action} {where} failed: {code or status} {error.get('Message', '')}"
    if code == "NoSuchBucket":
        return BackendError(f"{message.rstrip()} (the bucket does not exist)")
    if code in _NOT_FOUND_CODES or status == 404:
        return ObjectNotFound(message.rstrip())
    if code in _TRANSIENT_CODES or status >= 500 or status in _TRANSIENT_STATUS:
        return TransientBackendError(message.rstrip())
    return BackendError(message.rstrip())


def _map_error(exc: Exception, action: str, where: str) -> BackendError:
    """Translate a botocore/urllib3/socket error into the backend error tree."""
    if isinstance(exc, ClientError):
        return _client_error(exc, action, where)
    message = f"s3 backend: {action} {where} failed: {exc}"
    if isinstance(exc, SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return BackendError(message)
    if isinstance(
        exc,
        (
            ConnectionError,
            HTTPClientError,
            IncompleteReadError,
            urllib3.exceptions.HTTPError,
            OSError,
        ),
    ):
        return TransientBackendError(message)
    return BackendError(message)


_session_lock = threading.Lock()
_session: boto3.session.Session | None = None


def _new_client(**kwargs: Any) -> Any:
    """Create an S3 client from one shared boto3 session, created on first use.

    A fresh session reloads botocore's service models (~0.2 s); a shared one
    makes each further client ~4x cheaper. Sessions are not thread-safe, so
    client creation is serialised; the clients themselves are independent and
    thread-safe. Credentials passed explicitly never touch the shared
    session; when none are passed, the session's default chain (resolved
    once per process) supplies them.
    """
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client("s3", **kwargs)


# Everything a boto3 call or a body read may raise that is not our own error.
_RAW_ERRORS = (BotoCoreError, ClientError, urllib3.exceptions.HTTPError, OSError)


class S3Backend:
    """A :class:`~vbs.repository.backends.base.Backend` on an S3 bucket, under *prefix*.

    Credentials, region and endpoint default to boto3's usual chain
    (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
    ``AWS_ENDPOINT_URL``, ``~/.aws/*``). Construction performs no network
    I/O unless ``create_bucket`` is true, in which case the bucket is created
    if missing (an existing bucket we own is fine). *prefix* is a key prefix
    without leading or trailing "/", following the key rules. Safe for
    concurrent use from many threads.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        max_pool_connections: int = 16,
        connect_timeout: float = 5,
        read_timeout: float = 60,
        create_bucket: bool = False,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ConfigError(f"invalid S3 bucket name {bucket!r}")
        if (access_key is None) != (secret_key is None):
            raise ConfigError("S3 access key and secret key must be given together")
        prefix = prefix.strip("/")
        if prefix:
            try:
                validate_key(prefix)
            except ValueError as exc:
                raise ConfigError(f"invalid S3 prefix: {exc}") from exc
        self._bucket = bucket
        self._prefix = prefix
        config = Config(
            max_pool_connections=max_pool_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
            tcp_keepalive=True,
        )
        try:
            self._client: Any = _new_client(
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                config=config,
            )
        except (BotoCoreError, ValueError) as exc:  # bad profile, endpoint URL or region
            raise ConfigError(f"cannot set up S3 client for s3://{bucket}: {exc}") from exc
        if create_bucket:
            self._create_bucket()

    @property
    def location(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}" if self._prefix else f"s3://{self._bucket}"

    @property
    def endpoint_url(self) -> str:
        """The endpoint actually used (explicit, from the environment, or AWS's)."""
        return str(self._client.meta.endpoint_url)

    def _create_bucket(self) -> None:
        region = self._client.meta.region_name
        kwargs: dict[str, Any] = {"Bucket": self._bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "BucketAlreadyOwnedByYou":
                return
            raise _map_error(exc, "create bucket", self.location) from exc
        except _RAW_ERRORS as exc:
            raise _map_error(exc, "create bucket", self.location) from exc

    def _object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self._prefix}/{key}" if self._prefix else key

    def _where(self, key: str) -> str:
        return f"{key!r} in {self.location}"

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        object_key = self._object_key(key)
        # botocore accepts bytes, bytearray or files, not memoryview.
        body = bytes(data) if isinstance(data, memoryview) else data
        try:
            self._client.put_object(Bucket=self._bucket, Key=object_key, Body=body)
        except _RAW_ERRORS as exc:
            raise _map_error(exc, "put", self._where(key)) from exc

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        object_key = self._object_key(key)
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        if length is not None and length < 0:
            raise ValueError(f"length must be >= 0 or None, got {length}")
        if length == 0:
            if not self.exists(key):
                raise ObjectNotFound(f"s3 backend: no object {self._where(key)}")
            return b""
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Key": object_key}
        ranged = offset > 0 or length is not None
        if ranged:
            last = "" if length is None else str(offset + length - 1)
            kwargs["Range"] = f"bytes={offset}-{last}"
        try:
            response = self._client.get_object(**kwargs)
            data: bytes = response["Body"].read()
        except ClientError as exc:
            # 416: the object exists but the range starts at or past its end.
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""
            raise _map_error(exc, "get", self._where(key)) from exc
        except _RAW_ERRORS as exc:
            raise _map_error(exc, "get", self._where(key)) from exc
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if ranged and status == 200:
            # The server ignored the Range header and sent the whole object.
            data = data[offset:] if length is None else data[offset : offset + length]
        return data

    def exists(self, key: str) -> bool:
        object_key = self._object_key(key)
        try:
            self._client.head_object(Bucket=self._bucket, Key=object_key)
        except _RAW_ERRORS as exc:
            error = _map_error(exc, "exists", self._where(key))
            if isinstance(error, ObjectNotFound):
                return False
            raise error from exc
        return True

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        if self._prefix:
            return self._list(f"{self._prefix}/{prefix}", len(self._prefix) + 1)
        return self._list(prefix, 0)

    def _list(self, full_prefix: str, strip: int) -> Iterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self._bucket, Prefix=full_prefix):
                for item in page.get("Contents", ()):
                    key = item["Key"][strip:]
                    # Folder markers made by other tools ("dir/") are not objects.
                    if not key or key.endswith("/"):
                        continue
                    yield ObjectInfo(
                        key=key,
                        size=int(item["Size"]),
                        mtime=item["LastModified"].timestamp(),
                    )
        except _RAW_ERRORS as exc:
            raise _map_error(exc, "list", f"{full_prefix!r} in s3://{self._bucket}") from exc

    def delete(self, key: str) -> None:
        object_key = self._object_key(key)
        try:
            self._client.delete_object(Bucket=self._bucket, Key=object_key)
        except _RAW_ERRORS as exc:
            error = _map_error(exc, "delete", self._where(key))
            if isinstance(error, ObjectNotFound):
                return
            raise error from exc

    def close(self) -> None:
        """Close the client's connection pool."""
        self._client.close()

    def __repr__(self) -> str:
        return f"S3Backend({self.location!r}, endpoint_url={self.endpoint_url!r})"
