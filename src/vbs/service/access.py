"""Who may *write* a backup: the one rule every write path calls.

Reading and writing are different questions. :func:`vbs.service.shares.
visible_backups_clause` and :func:`vbs.service.shares.owner_for_reader`
answer "may this project see it" (owner or share recipient). This module
answers "may this project change it": only the owner. A recipient of a
share may read the backup and restore it into its own volumes, nothing
else: renaming it, changing its description or metadata, resetting its
status (even as an admin of the recipient project), deleting or
force-deleting it, re-sharing it or cancelling its shares are all refused.

Every use case that changes a backup row or its shares starts with
:func:`writable_backup` (issue 8: the native ``PUT`` and ``os-reset_status``
used the visibility lookup and so let recipients write). Answers:

==========  ================================================================
caller      result
==========  ================================================================
owner       the row (a ``deleted`` row counts as missing)
recipient   403 in the family's format (``VolumeBackup.0042`` / ``forbidden``)
stranger    404 with the caller's ``missing`` code (no existence disclosed)
==========  ================================================================
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from vbs.db.models_backups import Backup
from vbs.service import codes
from vbs.service.backup_records import Family, refuse
from vbs.service.shares import owner_for_reader, refuse_recipient

__all__ = ["writable_backup"]


def writable_backup(session: Session, family: Family, project_id: str, backup_id: str,
                    action: str, *, missing: codes.ApiCode = codes.VB_BACKUP_NOT_FOUND
                    ) -> Backup:
    """The backup row ``project_id`` owns, for an ``action`` that changes it.

    Raises 403 (:func:`refuse_recipient`) when the backup is only shared with
    ``project_id`` and 404 (``missing``) when it is not visible at all.
    """
    if owner_for_reader(session, backup_id, project_id) != project_id:
        refuse_recipient(family, backup_id, action)
    row = session.get(Backup, backup_id)
    if row is None or row.project_id != project_id or row.status == "deleted":
        refuse(family, missing, f"Backup {backup_id} could not be found.")
    return row
