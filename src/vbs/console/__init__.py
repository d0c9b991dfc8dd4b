"""The web console: static HTML, CSS and plain-JavaScript modules.

``vbs serve`` mounts :data:`STATIC_DIR` at ``/console`` (see
:func:`vbs.api.app.create_app`). Nothing here runs on the server: the pages
log in through the public Keystone v3 subset (``/identity/v3/auth/tokens``)
and then call only the public API families (native v3 volumes and backups,
VBS ``cloudbackups`` and jobs, sharing, policies, quotas) with the token, so
the console can do nothing a script with the same token could not.

Why static files and no build: the console has to work on an air-gapped
host from a fresh clone, so there is no CDN, no framework and no bundler;
the browser loads ES modules straight from this package (package data in
``pyproject.toml``). This package imports nothing from ``vbs``: it sits
beside the API layer, never below it.

Nouns: a *view* is one page of the console (volumes, backups, jobs, ...);
a *tracked job* is a job id the console started (or was asked to watch) and
polls through ``GET /v1/{project_id}/jobs/{job_id}``, because the public API
has no job listing.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MOUNT_PATH", "STATIC_DIR"]

STATIC_DIR: Path = Path(__file__).resolve().parent / "static"
"""Directory served at :data:`MOUNT_PATH` (``index.html`` for the bare path)."""

MOUNT_PATH = "/console"
"""URL prefix of the console."""
