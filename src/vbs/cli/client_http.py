"""The client commands' connection to a running VBS: Keystone auth and API calls.

Credentials come from ``--os-*`` options or the usual ``OS_*`` variables
(``OS_AUTH_URL``, ``OS_USERNAME``, ``OS_PASSWORD``, ``OS_PROJECT_NAME`` or
``OS_PROJECT_ID``, ``OS_USER_DOMAIN_NAME`` / ``OS_PROJECT_DOMAIN_NAME``
defaulting to ``Default``), read when a command runs, never at import.
keystoneauth1 (``v3.Password`` + ``Session``) gets the token and finds the
endpoints in the catalog by service type:

==================  ===================  ======================================
service type        URL                  used for
==================  ===================  ======================================
``vbsv2``           ``/v2/{project}``    cloudbackups, jobs, quota, policies,
                                         sharing
``block-storage``   ``/v3/{project}``    volumes, native backup list/show
==================  ===================  ======================================

Every non-2xx answer becomes one :class:`ClientError` carrying the API's code
(``VolumeBackup.0110`` in ext-error bodies, the fault name such as
``itemNotFound`` in native bodies) and the exit code of the command.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any

from vbs.errors import ConfigError, VbsError

__all__ = [
    "EXIT_API",
    "EXIT_AUTH",
    "EXIT_JOB_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "ApiError",
    "AuthFailed",
    "Client",
    "ClientError",
    "Credentials",
    "JobFailed",
    "NotFound",
    "add_connection_options",
    "credentials_from",
]

EXIT_OK = 0
EXIT_API = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_JOB_FAILED = 5

VBS = "vbsv2"
BLOCK_STORAGE = "block-storage"


class ClientError(VbsError):
    """A client command failed; ``exit_code`` is what ``vbs`` returns."""

    code = "vbs.client"
    exit_code = EXIT_API

    def line(self) -> str:
        """The one line printed on stderr (after ``vbs: ``)."""
        return self.message


class ApiError(ClientError):
    """The service answered with an error body (``api_code``: its code)."""

    code = "vbs.client.api"

    def __init__(self, status: int, api_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.api_code = api_code

    def line(self) -> str:
        return f"{self.api_code}: {self.message}"


class NotFound(ApiError):
    """HTTP 404, or an object the client looked for in a list and did not find."""

    code = "vbs.client.not_found"
    exit_code = EXIT_NOT_FOUND


class AuthFailed(ClientError):
    """Keystone refused the credentials, or the service refused the token."""

    code = "vbs.client.auth"
    exit_code = EXIT_AUTH

    def line(self) -> str:
        return f"authentication failed: {self.message}"


class JobFailed(ClientError):
    """A waited-for job ended ``FAIL``; ``job`` is its final API object."""

    code = "vbs.client.job_failed"
    exit_code = EXIT_JOB_FAILED

    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(str(job.get("fail_reason") or "no reason given"))
        self.job = job

    def line(self) -> str:
        return (f"job {self.job.get('job_id')} failed: {self.job.get('error_code')}: "
                f"{self.message}")


@dataclass(frozen=True)
class Credentials:
    """What keystoneauth needs to get a project-scoped token."""

    auth_url: str
    username: str
    password: str
    project_name: str | None
    project_id: str | None
    user_domain_name: str
    project_domain_name: str
    region_name: str | None
    interface: str
    verify: bool | str


_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("auth_url", "OS_AUTH_URL", "Keystone URL, e.g. http://host:8776/identity/v3"),
    ("username", "OS_USERNAME", "user name"),
    ("password", "OS_PASSWORD", "password"),
    ("project_name", "OS_PROJECT_NAME", "project to scope the token to"),
    ("project_id", "OS_PROJECT_ID", "project id (instead of --os-project-name)"),
    ("user_domain_name", "OS_USER_DOMAIN_NAME", "user's domain (default: Default)"),
    ("project_domain_name", "OS_PROJECT_DOMAIN_NAME", "project's domain (default: Default)"),
    ("region_name", "OS_REGION_NAME", "catalog region"),
    ("interface", "OS_INTERFACE", "catalog interface (default: public)"),
    ("cacert", "OS_CACERT", "CA bundle to verify TLS with"),
)


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--os-*`` options (each defaulting to its ``OS_*`` variable), ``--insecure``."""
    group = parser.add_argument_group("connection (default: OS_* environment variables)")
    for dest, env, text in _OPTIONS:
        flag = "--os-" + dest.replace("_", "-")
        group.add_argument(flag, dest=f"os_{dest}", default=None, metavar=env,
                           help=f"{text} (env {env})")
    group.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")


def credentials_from(args: argparse.Namespace,
                     environ: dict[str, str] | None = None) -> Credentials:
    """Options first, then the environment; ConfigError names what is missing."""
    env = dict(os.environ if environ is None else environ)

    def get(dest: str, var: str) -> str | None:
        value: str | None = getattr(args, f"os_{dest}", None) or env.get(var) or None
        return value

    values = {dest: get(dest, var) for dest, var, _ in _OPTIONS}
    missing = [var for dest, var, _ in _OPTIONS[:3] if not values[dest]]
    if not values["project_name"] and not values["project_id"]:
        missing.append("OS_PROJECT_NAME")
    if missing:
        raise ConfigError(f"missing {', '.join(missing)} (set the variable or use the "
                          f"matching --os-* option)")
    verify: bool | str = values["cacert"] or True
    if getattr(args, "insecure", False):
        verify = False
    return Credentials(
        auth_url=str(values["auth_url"]), username=str(values["username"]),
        password=str(values["password"]), project_name=values["project_name"],
        project_id=values["project_id"],
        user_domain_name=values["user_domain_name"] or "Default",
        project_domain_name=values["project_domain_name"] or "Default",
        region_name=values["region_name"], interface=values["interface"] or "public",
        verify=verify,
    )


def _error_from_body(status: int, body: Any, reason: str) -> ApiError:
    """Parse an ext-error, native-error or Keystone body into an :class:`ApiError`."""
    api_code, message = str(status), reason
    if isinstance(body, dict) and len(body) == 1:
        (key, inner), = body.items()
        if isinstance(inner, dict):
            message = str(inner.get("message") or reason)
            code = inner.get("code")
            # ext-error carries a string code; native/Keystone bodies the status
            api_code = code if isinstance(code, str) and code else str(key)
    elif isinstance(body, dict) and "detail" in body:
        message = str(body["detail"])
    cls = NotFound if status == 404 else ApiError
    return cls(status, api_code, message)


class Client:
    """A Keystone session plus request helpers that raise :class:`ClientError`.

    Nothing happens on construction; the first request authenticates.
    """

    def __init__(self, creds: Credentials, timeout: float = 60.0) -> None:
        from keystoneauth1 import session
        from keystoneauth1.identity import v3

        self.creds = creds
        auth = v3.Password(
            auth_url=creds.auth_url, username=creds.username, password=creds.password,
            user_domain_name=creds.user_domain_name, project_name=creds.project_name,
            project_id=creds.project_id,
            project_domain_name=creds.project_domain_name if creds.project_name else None,
        )
        self.session = session.Session(auth=auth, verify=creds.verify, timeout=timeout)

    def _filter(self, service_type: str) -> dict[str, Any]:
        f: dict[str, Any] = {"service_type": service_type, "interface": self.creds.interface}
        if self.creds.region_name:
            f["region_name"] = self.creds.region_name
        return f

    def endpoint(self, service_type: str) -> str:
        """The catalog URL of ``service_type`` (authenticates if needed)."""
        url = self._keystone(lambda: self.session.get_endpoint(**self._filter(service_type)))
        if not url:
            raise ClientError(f"the service catalog has no {service_type!r} endpoint")
        return str(url)

    def project_id(self) -> str:
        """The id of the project the token is scoped to."""
        pid = self._keystone(lambda: self.session.get_project_id())
        return str(pid)

    def _keystone(self, call: Any) -> Any:
        from keystoneauth1 import exceptions as ks

        try:
            return call()
        except ks.Unauthorized as exc:
            raise AuthFailed(_ks_message(exc)) from None
        except (ks.AuthorizationFailure, ks.MissingRequiredOptions) as exc:
            raise AuthFailed(_ks_message(exc)) from None
        except ks.EndpointNotFound as exc:
            raise ClientError(f"service catalog: {exc}") from None
        except ks.ConnectFailure as exc:
            raise ClientError(f"cannot connect: {exc}") from None
        except ks.HttpError as exc:
            raise ApiError(int(exc.http_status or 0), str(exc.http_status),
                           _ks_message(exc)) from None
        except ks.ClientException as exc:
            raise ClientError(str(exc)) from None

    def request(self, method: str, service_type: str, path: str, *,
                json: Any = None, params: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> Any:
        """Call ``path`` (relative to the service's endpoint, or absolute).

        Returns the decoded JSON body, or None for an empty body; raises
        :class:`ApiError` (:class:`NotFound` for 404, :class:`AuthFailed` for 401).
        """
        kwargs: dict[str, Any] = {"raise_exc": False, "params": params or None}
        if json is not None:
            kwargs["json"] = json
        if headers:
            kwargs["headers"] = headers
        if "://" not in path:
            kwargs["endpoint_filter"] = self._filter(service_type)
        resp = self._keystone(lambda: self.session.request(path, method, **kwargs))
        body: Any = None
        if resp.content:
            try:
                body = resp.json()
            except ValueError:
                body = None
        if resp.status_code >= 400:
            err = _error_from_body(resp.status_code, body, resp.reason or "error")
            if resp.status_code == 401:
                raise AuthFailed(err.line())
            raise err
        return body

    def vbs(self, method: str, path: str, **kw: Any) -> Any:
        """A call on the VBS extension endpoint (``/v2/{project}``)."""
        return self.request(method, VBS, path, **kw)

    def cinder(self, method: str, path: str, **kw: Any) -> Any:
        """A call on the block-storage endpoint (``/v3/{project}``)."""
        return self.request(method, BLOCK_STORAGE, path, **kw)

    def job_url(self, job_id: str) -> str:
        """``/v1/{project}/jobs/{id}`` (vbs-api §4.4), derived from the vbsv2 endpoint."""
        base = self.endpoint(VBS).rstrip("/")
        head, sep, tail = base.rpartition("/v2/")
        if sep and "/" not in tail:
            return f"{head}/v1/{tail}/jobs/{job_id}"
        return f"{base}/jobs/{job_id}"  # the /v2 alias [D2]

    def job(self, job_id: str) -> dict[str, Any]:
        """The job object of vbs-api §4.4."""
        body: dict[str, Any] = self.vbs("GET", self.job_url(job_id))
        return body


def _ks_message(exc: Exception) -> str:
    text = str(getattr(exc, "message", "") or exc)
    return text.split(" (HTTP ")[0] or exc.__class__.__name__
