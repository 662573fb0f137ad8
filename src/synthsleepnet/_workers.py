"""Pools of worker processes that never outlive the process that started them."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

__all__ = ["fork_is_safe", "worker_pool"]


def _watch_parent(parent: int) -> None:
    """Worker initializer: exit when the parent dies (``kill -9`` leaves no orphan working on)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def fork_is_safe() -> bool:
    """A forked child starts at once from this process's imports; safe on Linux while torch (whose
    threads a fork would leave half-copied) has not been imported here."""
    return sys.platform.startswith("linux") and "torch" not in sys.modules


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` processes that exit when this process dies.

    Forked on Linux while this process has not imported torch (the command line, most scripts):
    a fork is safe then, starts at once and never runs the caller's script again. Otherwise
    spawned, which is safe beside torch's threads and works on every OS, but re-imports the
    caller's main module: a script must then start the work under ``if __name__ == "__main__":``
    (without it, each worker would run the script's work again before failing).
    """
    context = multiprocessing.get_context("fork" if fork_is_safe() else "spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context,
                               initializer=_watch_parent, initargs=(os.getpid(),))
