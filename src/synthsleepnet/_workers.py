"""Pools of worker processes that never outlive the process that started them."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

__all__ = ["worker_pool"]


def _watch_parent(parent: int) -> None:
    """Worker initializer: exit when the parent dies (``kill -9`` leaves no orphan working on)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` fresh processes (``spawn``: safe beside torch's threads, and on every OS) that
    exit when this process dies. From a script, start it under ``if __name__ == "__main__":``."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_watch_parent, initargs=(os.getpid(),))
