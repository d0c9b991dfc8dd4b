"""Named leases: "who holds role X until when", for roles only one process may play.

Created by the ``scaleout`` migration branch (root ``scaleout_0001``). One
row per lease name (``scheduler`` today). A process holds a lease while
``owner`` is its id and ``expires_at`` lies in the future; it renews well
before expiry. Only :mod:`vbs.scheduler.leadership` writes this table.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from vbs.db.base import Base, utcnow
from vbs.db.models_identity import UtcDateTime

__all__ = ["Lease"]


class Lease(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    acquired_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    renewed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
