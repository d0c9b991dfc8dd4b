"""Backup records are built positionally from rows: the orders must agree."""

from __future__ import annotations

import datetime as dt
from dataclasses import FrozenInstanceError, fields

import pytest

from vbs.db.models_backups import Backup
from vbs.service.backup_records import RECORD_COLUMNS, BackupRecord, record_from_values
from vbs.service.backup_rules import Tag


def test_record_columns_are_every_backup_attribute_once() -> None:
    mapped = [attr.key for attr in Backup.__mapper__.column_attrs]
    assert sorted(RECORD_COLUMNS) == sorted(mapped)
    assert len(set(RECORD_COLUMNS)) == len(RECORD_COLUMNS)


def test_record_fields_follow_the_column_order() -> None:
    names = [f.name for f in fields(BackupRecord)]
    wire = ["metadata" if c == "meta" else c for c in RECORD_COLUMNS]
    assert names == [*wire, "has_dependent_backups"]


def test_values_land_in_their_fields() -> None:
    at = dt.datetime(2024, 3, 5, 10, 15, 42, 123456, tzinfo=dt.UTC)
    row = {key: f"<{key}>" for key in RECORD_COLUMNS}
    row.update(meta={"b": 2, "a": "x"}, tags=[{"key": "env", "value": "prod"}, {"key": "k"}],
               created_at=at, updated_at=None, data_timestamp=at, bytes_read=None,
               bytes_new=7, chunks_sampled=0)
    record = record_from_values([row[key] for key in RECORD_COLUMNS], True)
    for name in RECORD_COLUMNS[:22]:
        assert getattr(record, name) == f"<{name}>"
    assert record.metadata == (("a", "x"), ("b", "2"))
    assert record.tags == (Tag("env", "prod"), Tag("k", ""))
    assert (record.created_at, record.updated_at, record.data_timestamp) == (at, None, at)
    assert record.change_tracking == "<change_tracking>"
    assert (record.bytes_read, record.bytes_new, record.chunks_sampled) == (0, 7, 0)
    assert record.has_dependent_backups is True
    empty = record_from_values([*(row[k] for k in RECORD_COLUMNS[:22]), None, None,
                                at, at, at, None, 0, 0, 0], False)
    assert empty.metadata == () and empty.tags == ()


def test_records_built_from_values_equal_constructed_ones_and_stay_frozen() -> None:
    at = dt.datetime(2024, 3, 5, 10, 15, 42, 123456, tzinfo=dt.UTC)
    row = {key: f"<{key}>" for key in RECORD_COLUMNS}
    row.update(meta={"a": 1}, tags=[], created_at=at, updated_at=at, data_timestamp=at,
               bytes_read=1, bytes_new=2, chunks_sampled=3, is_incremental=True)
    record = record_from_values([row[key] for key in RECORD_COLUMNS], False)
    values = {f.name: getattr(record, f.name) for f in fields(BackupRecord)}
    constructed = BackupRecord(**values)
    assert record == constructed
    assert hash(record) == hash(constructed)
    assert repr(record) == repr(constructed)
    with pytest.raises(FrozenInstanceError):
        record.status = "deleted"  # type: ignore[misc]
