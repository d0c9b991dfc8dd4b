"""Migrations on SQLite and PostgreSQL: fresh upgrade, idempotence, concurrency, model parity."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

import vbs.db.models_identity  # noqa: F401 - registers the identity tables
from tests.support.server import fresh_database_url  # noqa: F401 - fixture
from vbs.db.base import Base
from vbs.db.migrate import current_heads, is_current, upgrade
from vbs.db.session import Database

IDENTITY_TABLES = {"domains", "projects", "users", "role_assignments", "tokens"}
SRC = Path(__file__).resolve().parents[2] / "src"


def test_identity_branch_is_labelled() -> None:
    from alembic.script import ScriptDirectory

    from vbs.db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    root = script.get_revision("identity_0001")
    assert root is not None and "identity" in root.branch_labels
    assert root.down_revision is None


def test_upgrade_creates_schema_and_is_idempotent(fresh_database_url: str) -> None:  # noqa: F811
    assert current_heads(fresh_database_url) == set()
    upgrade(fresh_database_url)
    assert is_current(fresh_database_url)
    db = Database(fresh_database_url)
    try:
        assert set(inspect(db.engine).get_table_names()) >= IDENTITY_TABLES
        with db.engine.connect() as conn:
            versions_before = sorted(conn.execute(text("SELECT version_num FROM alembic_version")))
        upgrade(fresh_database_url)  # second run: no-op, no error
        with db.engine.connect() as conn:
            versions_after = sorted(conn.execute(text("SELECT version_num FROM alembic_version")))
        assert versions_after == versions_before
    finally:
        db.dispose()


def test_models_match_migrations(fresh_database_url: str) -> None:  # noqa: F811
    upgrade(fresh_database_url)
    db = Database(fresh_database_url)
    try:
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(ctx, Base.metadata)
    finally:
        db.dispose()

    def touches_identity(diff: object) -> bool:
        text_ = repr(diff)
        return any(f"'{t}'" in text_ or f"table_name='{t}'" in text_ for t in IDENTITY_TABLES)

    mine = [d for d in diffs if touches_identity(d)]
    assert mine == []


def test_concurrent_upgrades_from_two_processes(fresh_database_url: str) -> None:  # noqa: F811
    code = "import sys; from vbs.db.migrate import upgrade; upgrade(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, fresh_database_url],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    assert is_current(fresh_database_url)
