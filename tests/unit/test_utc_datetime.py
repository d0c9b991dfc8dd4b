"""UtcDateTime on SQLite: the text fast path gives what the general path gives.

The column type reads SQLite's stored text with one ``fromisoformat`` call
(:meth:`vbs.db.models_identity.UtcDateTime.result_processor`); these tests
pin that every shape of stored value still comes back as the same aware UTC
datetime, including values written before the fast path or by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text
from sqlalchemy.engine import Engine

from vbs.db.models_identity import UtcDateTime

META = MetaData()
STAMPS = Table("stamps", META, Column("id", Integer, primary_key=True),
               Column("at", UtcDateTime, nullable=True))


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = create_engine("sqlite://")
    META.create_all(eng)
    yield eng
    eng.dispose()


def _read(eng: Engine, row_id: int) -> dt.datetime | None:
    with eng.connect() as conn:
        return conn.execute(select(STAMPS.c.at).where(STAMPS.c.id == row_id)).scalar_one()


@pytest.mark.parametrize("moment", [
    dt.datetime(2024, 3, 5, 10, 15, 42, 123456, tzinfo=dt.UTC),
    dt.datetime(2024, 3, 5, 10, 15, 42, tzinfo=dt.UTC),  # microsecond 0
    dt.datetime(2024, 3, 5, 12, 15, 42, 7, tzinfo=dt.timezone(dt.timedelta(hours=2))),
])
def test_round_trip_is_the_same_aware_utc_moment(engine: Engine, moment: dt.datetime) -> None:
    with engine.begin() as conn:
        conn.execute(insert(STAMPS), [{"id": 1, "at": moment}])
    got = _read(engine, 1)
    assert got == moment
    assert got is not None and got.tzinfo is dt.UTC
    assert got.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(("stored", "expected"), [
    ("2024-03-05 10:15:42.123456", dt.datetime(2024, 3, 5, 10, 15, 42, 123456, tzinfo=dt.UTC)),
    ("2024-03-05 10:15:42", dt.datetime(2024, 3, 5, 10, 15, 42, tzinfo=dt.UTC)),
    ("2024-03-05 10:15:42.5", dt.datetime(2024, 3, 5, 10, 15, 42, 500000, tzinfo=dt.UTC)),
    # text with an offset of its own: the fast path refuses it, the general one reads it
    ("2024-03-05 12:15:42.123456+02:00",
     dt.datetime(2024, 3, 5, 10, 15, 42, 123456, tzinfo=dt.UTC)),
])
def test_text_written_by_hand_reads_as_utc(engine: Engine, stored: str,
                                           expected: dt.datetime) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO stamps (id, at) VALUES (1, :at)"), {"at": stored})
    assert _read(engine, 1) == expected


def test_null_stays_null(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(STAMPS), [{"id": 1, "at": None}])
    assert _read(engine, 1) is None


def test_naive_value_is_refused_on_the_way_in(engine: Engine) -> None:
    with pytest.raises(Exception, match="naive datetime"), engine.begin() as conn:
        conn.execute(insert(STAMPS), [{"id": 1, "at": dt.datetime(2024, 3, 5)}])
