"""NBD export of backups: any block of any backup, on demand, without a restore.

Nouns:

* *export*: one backup served under one unguessable *export name*
  (``secrets.token_hex(24)``: 192 random bits) until it ends or *expires*;
* *block source* (:class:`~vbs.export.source.BackupSource`): the backup as a
  read-only device, chunks fetched, authenticated and decompressed on demand
  through the repository's read API, with a bounded LRU cache; zero chunks are
  served without any read;
* *overlay* (:class:`~vbs.export.overlay.CowDevice`): a local sparse file plus
  a block bitmap taking the writes of a writable export; the repository is
  never written;
* *catalog*: who may be served (the service's table, or a static one);
* the *protocol* layer (:mod:`vbs.export.protocol`, spec table in its
  docstring) and the *server* (:mod:`vbs.export.server`).

Layer: below ``vbs.service`` (which records exports and runs the server),
above ``vbs.engine`` and ``vbs.repository`` (whose read API it uses); it
knows no HTTP and no database.

Concurrency:

=================================  ===========================================
overlapping operations             why it is safe
=================================  ===========================================
reads on many connections          one device per name; the LRU and page cache
                                   take a lock only around dict updates; a
                                   chunk fetched twice at once is harmless
writes and reads (writable)        one lock per overlay: a read sees a block
                                   either before or after a write, never torn
export vs backup delete            the service refuses to delete a backup with
                                   a live export, so its chunks stay put
export vs garbage collection       GC only frees chunks no manifest references;
                                   an exported backup's manifest exists
export ended while clients read    ``end`` shuts the sockets; in-flight reads
                                   fail on the closed socket and stop
=================================  ===========================================
"""

from __future__ import annotations

from .overlay import CowDevice
from .server import ExportTarget, NbdServer, StaticCatalog
from .source import BackupSource

__all__ = ["BackupSource", "CowDevice", "ExportTarget", "NbdServer", "StaticCatalog"]
