"""Storage backends of the chunk repository: where the repository's objects live.

Nouns:

- **backend**: a flat key -> bytes store (:class:`Backend`): a local
  directory (:class:`LocalBackend`) or an S3 bucket under a prefix
  (:class:`S3Backend`). It stores whatever the repository gives it.
- **key**: a relative "/"-separated object name, checked by
  :func:`validate_key`; what keys mean is decided by the repository layout,
  not here.
- **object**: the bytes stored under a key; :class:`ObjectInfo` describes
  one in a listing.
- **wrapper**: a Backend that adds behaviour around another one
  (:class:`RetryingBackend`); retries, limits and metrics are wrappers, never
  code inside a backend.

:func:`open_backend` turns a location string into a ready backend.

Concurrency (every backend, any number of threads and processes):

================  =================  ==================================================
operation         may overlap with   why it is safe
================  =================  ==================================================
put               put (other key)    independent objects
put               put (same key)     each put is atomic; the last one wins, whole
                                     (local: unique temp file + rename; S3: one PUT)
put               get / exists       readers see the old object, or the new one, whole
put               list               a listing shows the object or not; never a temp file
get / exists      anything           read-only; local reads hold one inode open
delete            get (same key)     get either succeeds or raises ObjectNotFound
delete            list               the key may or may not be listed
delete            delete             idempotent; a missing key is not an error
================  =================  ==================================================

What the backends do not provide, and the repository must (by content
addressing, write ordering and locks): no compare-and-swap, no
multi-object transactions, no read-your-listing consistency on every S3
implementation.
"""

from __future__ import annotations

from vbs.repository.backends.base import Backend, ObjectInfo, validate_key, validate_prefix
from vbs.repository.backends.local import LocalBackend
from vbs.repository.backends.retry import RetryingBackend
from vbs.repository.backends.url import open_backend


def __getattr__(name: str) -> object:
    """``S3Backend`` is imported on first use: boto3 takes ~0.15 s to import,
    which every local-only command would otherwise pay."""
    if name == "S3Backend":
        from vbs.repository.backends.s3 import S3Backend

        return S3Backend
    raise AttributeError(name)


__all__ = [
    "Backend",
    "LocalBackend",
    "ObjectInfo",
    "RetryingBackend",
    "S3Backend",
    "open_backend",
    "validate_key",
    "validate_prefix",
]
