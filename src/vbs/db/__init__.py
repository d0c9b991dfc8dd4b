"""Metadata database: SQLAlchemy 2 models, engine/session factory, Alembic migrations.

Nouns: *model* (a mapped table class), *session* (one unit of work), *migration*
(an Alembic revision). Every table lives in a model module of this package and
is created only by migrations (``vbs.db.migrate.upgrade``), never by
``create_all`` outside tests of this layer.

Migrations are organised as one Alembic branch per area (identity, volumes,
jobs, backups, ...), each with its own ``branch_labels``; cross-area foreign
keys use ``depends_on``. ``upgrade heads`` brings every branch up to date, so
areas can evolve independently.
"""

from __future__ import annotations

from vbs.db.base import Base, utcnow
from vbs.db.session import Database

__all__ = ["Base", "Database", "utcnow"]
