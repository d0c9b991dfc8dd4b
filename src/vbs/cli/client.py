"""The client commands of ``vbs``: work with a running service from a terminal.

``vbs volume|backup|job|policy|share|quota ACTION ...`` authenticate with
Keystone (``OS_*`` variables or ``--os-*`` options) and call the API; see
docs/cli.md for every command and :mod:`vbs.cli.client_base` for exit codes.

Modules::

    client_http    credentials, keystoneauth session, API errors
    client_base    shared options, error -> exit code
    client_output  --json, rich tables, tab-separated lines
    client_wait    --wait: job polling and the progress bar
    client_volume, client_backup, client_job, client_policy,
    client_share, client_quota: one command family each
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["FAMILIES", "register"]

FAMILIES = ("volume", "backup", "job", "policy", "share", "quota")


def register(sub: Any) -> None:
    """Add the top-level client commands to the ``vbs`` parser."""
    for name in FAMILIES:
        importlib.import_module(f"vbs.cli.client_{name}").register(sub)
