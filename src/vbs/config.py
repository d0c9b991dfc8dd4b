"""One settings object for the whole service.

Sources, lowest to highest precedence:

1. built-in defaults (paths derived from ``data_dir``);
2. an optional TOML file (``--config FILE``), sections as below;
3. ``VBS_*`` environment variables: ``VBS_DATA_DIR``, ``VBS_PUBLIC_URL`` for
   top-level keys and ``VBS_<SECTION>__<KEY>`` for nested ones
   (``VBS_SERVER__PORT=9000``, ``VBS_REPOSITORY__LOCATION=s3://bucket/prefix``);
4. ``overrides`` passed by the caller (command-line flags);
5. the ``data_dir`` argument (``--data-dir``).

Settings are read once, by the composition root, and passed down explicitly;
nothing reads them at import time. Every problem raises
:class:`vbs.errors.ConfigError` whose message names the offending key, because
an operator must be able to fix a bad start without reading a traceback.

Environment variables starting with ``VBS_`` whose first part is not a known
key (``VBS_ADMIN_PASSWORD``, ``VBS_URL``, ...) belong to other consumers and
are ignored; an unknown key *inside* a known section is an error (a typo such
as ``VBS_SERVER__PROT`` would otherwise be silently lost).

``repository.chunk_size`` is only used by ``repo init``; the repository records
its own format parameters and restores never read them from settings.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vbs.errors import ConfigError

__all__ = [
    "AuthSettings",
    "ChangeTrackingSettings",
    "DatabaseSettings",
    "ExportsSettings",
    "JobsSettings",
    "LoggingSettings",
    "QuotaSettings",
    "RepositorySettings",
    "SchedulerConfig",
    "ServerSettings",
    "Settings",
    "VolumesSettings",
    "load_settings",
]

ENV_PREFIX = "VBS_"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8799, ge=0, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Request bodies larger than this are 413 before parsing (vbs.api.body)."""


class DatabaseSettings(_Section):
    url: str
    """SQLAlchemy URL; ``postgresql://`` is normalised to the psycopg 3 driver."""
    migrate_on_start: bool = True
    """Run migrations at every start; scale-out sets false and runs ``vbs db upgrade``."""

    @field_validator("url")
    @classmethod
    def _driver(cls, v: str) -> str:
        for prefix in ("postgresql://", "postgres://"):
            if v.startswith(prefix):
                return "postgresql+psycopg://" + v[len(prefix):]
        if not (v.startswith("sqlite") or v.startswith("postgresql+")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return v


class RepositorySettings(_Section):
    location: str
    """A directory path or ``s3://bucket[/prefix]``."""
    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str | None = None
    master_key_file: Path
    chunk_size: int = Field(default=65536, ge=16 * 1024, le=4 * 1024 * 1024)

    @field_validator("chunk_size")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError("must be a power of two")
        return v


class VolumesSettings(_Section):
    root: Path
    import_roots: tuple[Path, ...] = ()


def _default_restore_processes() -> int:
    return min(4, os.cpu_count() or 1)


class JobsSettings(_Section):
    workers: int = Field(default=2, ge=0)
    restore_processes: int = Field(default_factory=_default_restore_processes, ge=1)
    """Worker processes one restore decodes on (local repositories; 1: threads only)."""
    lease_seconds: int = Field(default=60, ge=5)
    retry_backoff_seconds: float = Field(default=5.0, gt=0)
    """First delay before a job that failed transiently runs again (doubles, max 300 s)."""


class SchedulerConfig(_Section):
    """The ``[scheduler]`` section: tick period and the leadership lease."""

    tick_seconds: float = Field(default=30.0, ge=0.2)
    lease_seconds: float = Field(default=30.0, ge=1.0)


class ChangeTrackingSettings(_Section):
    """Changed-block tracking of incremental backups (docs/operations.md)."""

    enabled: bool = True
    """Diff reflink snapshots with FIEMAP and read only what changed."""
    verify_fraction: float = Field(default=0.005, ge=0.0, le=1.0)
    """Share of the unchanged chunks read anyway and compared with the parent."""
    verify_minimum: int = Field(default=16, ge=0)
    verify_unchanged: bool = False
    """Read and compare every unchanged chunk (the guard at its most careful)."""


class AuthSettings(_Section):
    token_ttl_seconds: int = Field(default=86400, ge=60)
    token_cache_seconds: float = Field(default=2.0, ge=0, le=300)
    """How long an API process trusts a token it validated (vbs.api.token_cache):
    the bound on seeing a revocation made on another host or a disabled user;
    0 validates every request against the database."""
    login_max_failures_per_user: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_window_seconds: int = Field(default=60, ge=1)
    """Failed password logins over these limits in the window are 429 (vbs.api.login_limit)."""


class QuotaSettings(_Section):
    """Per-project defaults; ``-1`` means unlimited (vbs-api.md §2.15)."""

    default_backups: int = Field(default=-1, ge=-1)
    default_gigabytes: int = Field(default=-1, ge=-1)


class ExportsSettings(_Section):
    """NBD exports of backups (docs/operations.md "Exports"): the ``vbs serve``
    process that runs job workers also serves exports on ``host:port``."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=10809, ge=0, le=65535)
    advertise_host: str | None = None
    """Host put in export URIs (default: ``host``)."""
    ttl_seconds: int = Field(default=3600, ge=1, le=7 * 86400)
    max_per_project: int = Field(default=4, ge=0)
    overlay_dir: Path
    cache_mib: int = Field(default=64, ge=1, le=65536)
class LoggingSettings(_Section):
    """How ``vbs serve`` logs (``vbs.logging_setup``); ``--log-level`` overrides ``level``."""

    level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    format: Literal["text", "json"] = "text"
    file: Path | None = None
    """Append to this file instead of stderr."""


class Settings(_Section):
    """Everything the service needs to start; immutable once loaded."""

    data_dir: Path
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings
    repository: RepositorySettings
    volumes: VolumesSettings
    jobs: JobsSettings = JobsSettings()
    scheduler: SchedulerConfig = SchedulerConfig()
    auth: AuthSettings = AuthSettings()
    quotas: QuotaSettings = QuotaSettings()
    exports: ExportsSettings
    change_tracking: ChangeTrackingSettings = ChangeTrackingSettings()
    logging: LoggingSettings = LoggingSettings()
    public_url: str | None = None
    """Base URL advertised in the catalog and version documents; when unset
    the request's own base URL is used (see :meth:`advertised_url`)."""

    @field_validator("public_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not (v.startswith("http://") or v.startswith("https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    def advertised_url(self) -> str:
        """``public_url`` or ``http://{host}:{port}`` (used outside a request)."""
        return self.public_url or f"http://{self.server.host}:{self.server.port}"


_SECTIONS: dict[str, type[_Section]] = {
    "server": ServerSettings,
    "database": DatabaseSettings,
    "repository": RepositorySettings,
    "volumes": VolumesSettings,
    "jobs": JobsSettings,
    "scheduler": SchedulerConfig,
    "auth": AuthSettings,
    "quotas": QuotaSettings,
    "exports": ExportsSettings,
    "logging": LoggingSettings,
}
_TOP_LEVEL = {"data_dir", "public_url"}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None


def _env_value(key: str, raw: str) -> Any:
    """Environment values are strings; lists are JSON or ``os.pathsep``-separated."""
    if key == "volumes.import_roots":
        if raw.strip().startswith("["):
            try:
                return json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"VBS_VOLUMES__IMPORT_ROOTS is not a JSON list: {exc}") from None
        return [p for p in raw.split(os.pathsep) if p]
    return raw


def _read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        if len(parts) == 1 and parts[0] in _TOP_LEVEL:
            out[parts[0]] = raw
        elif len(parts) == 2 and parts[0] in _SECTIONS:
            out.setdefault(parts[0], {})[parts[1]] = _env_value(".".join(parts), raw)
        elif len(parts) > 2 and parts[0] in _SECTIONS:
            raise ConfigError(f"{name}: settings are at most two levels deep")
    return out


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _fill_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    data_dir = Path(raw.get("data_dir") or "./vbs-data").expanduser().absolute()
    raw["data_dir"] = data_dir
    for section in _SECTIONS:
        value = raw.setdefault(section, {})
        if not isinstance(value, Mapping):
            raise ConfigError(f"{section}: must be a table of settings")
        raw[section] = dict(value)
    raw["database"].setdefault("url", f"sqlite:///{data_dir / 'vbs.db'}")
    raw["repository"].setdefault("location", str(data_dir / "repo"))
    raw["repository"].setdefault("master_key_file", data_dir / "master.key")
    raw["volumes"].setdefault("root", data_dir / "volumes")
    raw["exports"].setdefault("overlay_dir", data_dir / "exports")
    return raw


def load_settings(
    config_file: Path | None,
    data_dir: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Load and validate settings (precedence in the module docstring).

    ``overrides`` is a nested mapping shaped like the TOML file, e.g.
    ``{"server": {"port": 9000}}``. ``environ`` defaults to ``os.environ``
    and exists so callers can pass an explicit environment.
    """
    raw: dict[str, Any] = {}
    if config_file is not None:
        raw = _read_toml(Path(config_file))
    raw = _merge(raw, _read_env(os.environ if environ is None else environ))
    if overrides:
        raw = _merge(raw, overrides)
    if data_dir is not None:
        raw["data_dir"] = data_dir
    raw = _fill_defaults(raw)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(settings)"
            msg = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{key}: {msg}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
