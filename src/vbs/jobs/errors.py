"""Errors of the job layer, part of the tree in :mod:`vbs.errors`.

The ``code`` values double as job ``error_code`` values for failures the
queue itself detects (a worker lost too often, a handler crashing), where no
use-case specific API code is known.
"""

from __future__ import annotations

from vbs.errors import VbsError

__all__ = ["InvalidJob", "JobError", "UnknownJobType", "WORKER_LOST", "INTERNAL_ERROR"]

WORKER_LOST = "vbs.jobs.worker_lost"
"""error_code of a job whose workers lost it ``max_attempts`` times (crash loop)."""

INTERNAL_ERROR = "vbs.jobs.internal"
"""error_code of a job whose handler raised something that is not a VbsError."""


class JobError(VbsError):
    """Base of the job layer's errors."""

    code = "vbs.jobs"


class InvalidJob(JobError):
    """Bad arguments to the queue: entities not str->str, bad id, bad limits."""

    code = "vbs.jobs.invalid"


class UnknownJobType(JobError):
    """A worker claimed a job it has no handler for (should not happen: claims filter by type)."""

    code = "vbs.jobs.unknown_type"
