"""One error tree for the whole of VBS.

Every error VBS raises on purpose derives from :class:`VbsError`. Each class
carries a stable ``code`` (used in logs, CLI exit codes and, where the API maps
it, wire error codes) and says whether retrying the same operation may succeed
(``transient``)::

    VbsError
    ├── ConfigError                      bad settings / command-line input (permanent)
    ├── RepositoryError                  anything below the repository API
    │   ├── BackendError                 storage backend failed
    │   │   ├── TransientBackendError    timeouts, 5xx, throttling, EIO on a network fs (transient)
    │   │   └── ObjectNotFound           key absent (permanent)
    │   ├── RepositoryNotFound           no repository at the location (permanent)
    │   ├── RepositoryExists             init over an existing repository (permanent)
    │   ├── WrongPassword                passphrase / key file does not open any key slot
    │   ├── CorruptObject                bad magic, version, length or authentication tag
    │   ├── ChunkMissing                 a manifest references a chunk no index knows
    │   ├── BackupNotFound               no manifest root with that id
    │   └── LockConflict                 another exclusive operation holds the repository
    ├── EngineError                      backup / restore pipeline
    │   ├── Cancelled                    the caller's cancellation token was set
    │   └── SourceError / TargetError    reading the volume or writing the target failed
    ├── VolumeError                      volume drivers (not found, busy, bad path)
    └── ServiceError                     use-case rule violations, carry an API code
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackupNotFound",
    "Cancelled",
    "ChunkMissing",
    "ConfigError",
    "CorruptObject",
    "EngineError",
    "LockConflict",
    "ObjectNotFound",
    "RepositoryError",
    "RepositoryExists",
    "RepositoryNotFound",
    "ServiceError",
    "SourceError",
    "TargetError",
    "TransientBackendError",
    "VbsError",
    "VolumeError",
    "WrongPassword",
]


class VbsError(Exception):
    """Base of every deliberate VBS error.

    ``code`` is stable across releases; ``transient`` tells a retry loop
    whether the same call may succeed later.
    """

    code: str = "vbs.error"
    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(VbsError):
    code = "vbs.config"


class RepositoryError(VbsError):
    code = "vbs.repository"


class BackendError(RepositoryError):
    code = "vbs.backend"


class TransientBackendError(BackendError):
    code = "vbs.backend.transient"
    transient = True


class ObjectNotFound(BackendError):
    code = "vbs.backend.not_found"


class RepositoryNotFound(RepositoryError):
    code = "vbs.repository.not_found"


class RepositoryExists(RepositoryError):
    code = "vbs.repository.exists"


class WrongPassword(RepositoryError):
    code = "vbs.repository.wrong_password"


class CorruptObject(RepositoryError):
    code = "vbs.repository.corrupt"


class ChunkMissing(RepositoryError):
    code = "vbs.repository.chunk_missing"


class BackupNotFound(RepositoryError):
    code = "vbs.repository.backup_not_found"


class LockConflict(RepositoryError):
    code = "vbs.repository.locked"
    transient = True


class EngineError(VbsError):
    code = "vbs.engine"


class Cancelled(EngineError):
    code = "vbs.engine.cancelled"


class SourceError(EngineError):
    code = "vbs.engine.source"


class TargetError(EngineError):
    code = "vbs.engine.target"


class VolumeError(VbsError):
    code = "vbs.volume"


class ServiceError(VbsError):
    """A use-case rule was violated; ``api_code`` is the wire code to answer with."""

    code = "vbs.service"

    def __init__(self, message: str, api_code: str = "", status: int = 400,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.api_code = api_code
        self.status = status
        self.headers = dict(headers or {})
        """Extra response headers (e.g. ``Retry-After`` on a 429)."""
