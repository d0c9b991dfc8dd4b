"""Alembic environment for VBS (loaded by Alembic, never imported directly).

Imports every ``vbs.db.models_*`` module so ``target_metadata`` holds every
table, which makes ``alembic check`` / autogenerate comparisons complete.
Runs on the connection that :func:`vbs.db.migrate.upgrade` passes in
``config.attributes["connection"]``; when used from a shell it connects to
``sqlalchemy.url`` instead. SQLite gets batch mode so ALTERs work.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

__all__: list[str] = []

import importlib
import pkgutil

from alembic import context
from sqlalchemy import create_engine

import vbs.db
from vbs.db.base import Base

for _info in pkgutil.iter_modules(vbs.db.__path__):
    if _info.name.startswith("models_"):
        importlib.import_module(f"vbs.db.{_info.name}")

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    is_sqlite = getattr(getattr(connection, "dialect", None), "name", "") == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("VBS migrations run online only (vbs.db.migrate.upgrade)")
run_migrations_online()
