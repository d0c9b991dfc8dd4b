"""Settings: defaults, precedence (file < env < overrides < data_dir), errors naming keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vbs.config import Settings, load_settings
from vbs.errors import ConfigError


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vbs.toml"
    path.write_text(text)
    return path


def test_defaults_derive_from_data_dir(tmp_path: Path) -> None:
    s = load_settings(None, tmp_path / "d", environ={})
    d = (tmp_path / "d").absolute()
    assert s.data_dir == d
    assert s.server.host == "127.0.0.1" and s.server.port == 8799
    assert s.database.url == f"sqlite:///{d / 'vbs.db'}"
    assert s.repository.location == str(d / "repo")
    assert s.repository.master_key_file == d / "master.key"
    assert s.repository.chunk_size == 65536
    assert s.volumes.root == d / "volumes" and s.volumes.import_roots == ()
    assert s.jobs.workers == 2 and s.jobs.lease_seconds == 60
    assert s.jobs.restore_processes == min(4, os.cpu_count() or 1)
    assert s.auth.token_ttl_seconds == 86400
    assert s.quotas.default_backups == -1 and s.quotas.default_gigabytes == -1
    assert s.public_url is None
    assert s.advertised_url() == "http://127.0.0.1:8799"


def test_default_data_dir_is_relative_vbs_data(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(None, environ={}).data_dir == tmp_path / "vbs-data"


def test_precedence_file_env_overrides_data_dir(tmp_path: Path) -> None:
    cfg = _toml(tmp_path, """
data_dir = "/from/file"
public_url = "https://vbs.example.test/"
[server]
host = "0.0.0.0"
port = 1000
[jobs]
workers = 7
""")
    env = {"VBS_SERVER__PORT": "2000", "VBS_DATA_DIR": "/from/env",
           "VBS_JOBS__RESTORE_PROCESSES": "3"}
    s = load_settings(cfg, environ=env)
    assert s.jobs.restore_processes == 3
    assert s.server.host == "0.0.0.0"  # file only
    assert s.server.port == 2000  # env beats file
    assert s.jobs.workers == 7
    assert s.data_dir == Path("/from/env")
    assert s.public_url == "https://vbs.example.test"  # trailing slash dropped
    s = load_settings(cfg, tmp_path / "cli", {"server": {"port": 3000}}, environ=env)
    assert s.server.port == 3000  # overrides beat env
    assert s.data_dir == (tmp_path / "cli").absolute()  # data_dir argument beats all
    assert s.database.url.endswith(str(tmp_path / "cli" / "vbs.db"))


def test_env_nested_values_and_lists(tmp_path: Path) -> None:
    env = {
        "VBS_REPOSITORY__LOCATION": "s3://bucket/prefix",
        "VBS_REPOSITORY__ENDPOINT_URL": "http://127.0.0.1:8333",
        "VBS_VOLUMES__IMPORT_ROOTS": "/srv/a:/srv/b",
        "VBS_DATABASE__URL": "postgresql://postgres@127.0.0.1/vbs",
        "VBS_ADMIN_PASSWORD": "not a setting",  # other consumers' variables are ignored
    }
    s = load_settings(None, tmp_path, environ=env)
    assert s.repository.location == "s3://bucket/prefix"
    assert s.repository.endpoint_url == "http://127.0.0.1:8333"
    assert s.volumes.import_roots == (Path("/srv/a"), Path("/srv/b"))
    assert s.database.url == "postgresql+psycopg://postgres@127.0.0.1/vbs"
    s = load_settings(None, tmp_path, environ={"VBS_VOLUMES__IMPORT_ROOTS": '["/x", "/y"]'})
    assert s.volumes.import_roots == (Path("/x"), Path("/y"))


@pytest.mark.parametrize(
    ("toml", "env", "key"),
    [
        ("[server]\nport = 70000\n", {}, "server.port"),
        ("[server]\nprot = 1\n", {}, "server.prot"),
        ("", {"VBS_SERVER__PROT": "1"}, "server.prot"),
        ("", {"VBS_JOBS__WORKERS": "many"}, "jobs.workers"),
        ("[jobs]\nrestore_processes = 0\n", {}, "jobs.restore_processes"),
        ("[repository]\nchunk_size = 100000\n", {}, "repository.chunk_size"),
        ("[database]\nurl = \"mysql://x\"\n", {}, "database.url"),
        ("public_url = \"ftp://x\"\n", {}, "public_url"),
        ("server = 3\n", {}, "server"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, toml: str, env: dict[str, str],
                                   key: str) -> None:
    cfg = _toml(tmp_path, toml)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, tmp_path, environ=env)
    assert key in err.value.message


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(_toml(tmp_path, "[server\n"), environ={})


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = load_settings(None, tmp_path, environ={})
    assert isinstance(s, Settings)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError
        s.server.port = 1  # type: ignore[misc]
