"""One writer per store: an advisory lock held while a store is being prepared.

Two ``prepare`` runs on one store would race (one removes the other's half-written night as a
leftover); the second now stops at once with a message naming the first. The lock is an
``flock`` on ``STORE/.lock``, released by the kernel when its holder exits, even by ``kill -9``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from .._validation import StoreError

__all__ = ["store_lock"]


@contextlib.contextmanager
def store_lock(store: Path) -> Iterator[None]:
    """Hold the store's writer lock for the duration of the block.

    Raises
    ------
    StoreError
        If another process holds it (its pid is named).
    """
    store.mkdir(parents=True, exist_ok=True)
    fd = os.open(store / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StoreError(f"{store} is being written by another prepare (pid {holder}); wait for it to "
                             "finish, or prepare into another store") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock
