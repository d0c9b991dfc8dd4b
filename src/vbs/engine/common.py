"""Types shared by the engine's operations: cancellation, progress, locks."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from vbs.errors import Cancelled
from vbs.repository.locks import RepositoryLock

__all__ = ["CancelToken", "ProgressFn", "RepositoryLock", "open_block_or_file"]


ProgressFn = Callable[[int, int], None]
"""progress(bytes_done, bytes_total); called from the engine's own thread."""


class CancelToken:
    """Set from any thread; the engine checks it between segments."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("operation cancelled")


def open_block_or_file(path: str, flags: int) -> tuple[int, int]:
    """Open a regular file or block device; returns (fd, size in bytes)."""
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd, size
