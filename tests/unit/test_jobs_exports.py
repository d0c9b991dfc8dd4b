"""Job layer: honest ``__all__``, id canonicalisation, entity checks, backoff."""

from __future__ import annotations

import importlib
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vbs.jobs
from vbs.db.session import Database
from vbs.jobs import InvalidJob, Worker, canonical_job_id
from vbs.jobs.records import check_entities

MODULES = ["vbs.jobs", "vbs.jobs.queue", "vbs.jobs.reads", "vbs.jobs.records",
           "vbs.jobs.context", "vbs.jobs.worker", "vbs.jobs.errors", "vbs.jobs._tx",
           "vbs.db.models_jobs"]


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_existing_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert all(hasattr(module, n) for n in exported)
    assert len(exported) == len(module.__all__)


def test_package_exports_every_public_name_of_its_modules() -> None:
    for name in ("vbs.jobs.queue", "vbs.jobs.worker", "vbs.jobs.context"):
        assert set(importlib.import_module(name).__all__) <= set(vbs.jobs.__all__)


@given(st.uuids())
def test_canonical_job_id_accepts_any_uuid_spelling(value: uuid.UUID) -> None:
    assert canonical_job_id(str(value).upper()) == str(value)
    assert canonical_job_id(value.hex) == str(value)


@given(st.text())
def test_canonical_job_id_never_raises(value: str) -> None:
    result = canonical_job_id(value)
    assert result is None or result == str(uuid.UUID(result))


@pytest.mark.parametrize("bad", [{"a": 1}, {1: "a"}, ["a"], {"a": None}])
def test_entities_must_be_str_to_str(bad: object) -> None:
    with pytest.raises(InvalidJob):
        check_entities(bad)
    assert check_entities({"backup_id": "b"}) == {"backup_id": "b"}


def test_retry_backoff_doubles_and_is_capped() -> None:
    db = Database("sqlite://")  # never connected: Worker does nothing at construction
    try:
        worker = Worker(db, {}, retry_backoff=(5.0, 30.0))
        assert [worker._backoff(n) for n in range(1, 6)] == [5.0, 10.0, 20.0, 30.0, 30.0]
    finally:
        db.dispose()
