"""VBS: a self-hosted Volume Backup Service.

Layers (one sub-package each, imports point down only; see docs/architecture.md):
api -> service -> scheduler/jobs/identity -> engine -> volumes/repository -> db.
"""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
