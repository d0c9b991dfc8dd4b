"""Fixtures shared by unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import vbs.identity as idn
from vbs.db.migrate import upgrade
from vbs.db.session import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database with the default identity domain."""
    url = f"sqlite:///{tmp_path / 'vbs.db'}"
    upgrade(url)
    database = Database(url)
    with database.session() as s:
        idn.ensure_default_domain(s)
    yield database
    database.dispose()
