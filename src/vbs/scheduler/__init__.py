"""Policy scheduling: when policies fire, what a run does, what retention keeps.

Nouns (vbs-api §2.14, §7):

* *schedule* — ``start_time`` hours + ``frequency`` or ``week_frequency`` +
  ``time_zone`` of a policy (:mod:`.schedule`, pure);
* *slot* — one UTC instant at which a schedule fires;
* *run* — one firing (a slot, or "run now"): one *task* per associated disk,
  each submitting a backup through the *backup port* (:mod:`.runs`,
  :mod:`.ports`);
* *claim* — moving a policy's ``next_run_at`` past a slot with a conditional
  UPDATE; whoever claims a slot runs it, exactly once (:mod:`.scheduler`);
* *retention plan* — which policy backups of a disk to delete after a
  successful policy backup (:mod:`.retention`, pure planning + execution).

This layer sits below ``vbs.service``: it defines :class:`~.ports.BackupPort`
and the backup service implements it. Concurrency is tabled in
:mod:`.scheduler`. Nothing starts at import; ``Scheduler.start()`` does.
"""

from __future__ import annotations

__all__: list[str] = []
