"""Wire representations of the HTTP API: microversions, views and renderers.

Nouns: a *view* is a frozen dataclass the service fills (``BackupView``,
``JobView``); *rendering* turns a view into the exact wire dictionary of one
API family (native v2, native v3 at a microversion, share embedding, VBS
job).  Request validation lives below, in :mod:`vbs.service.backup_rules`,
so handlers read: parse → rules → service → render.
"""

from __future__ import annotations

__all__: list[str] = []
