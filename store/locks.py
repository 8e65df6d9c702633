"""Exclusive locks between processes: a file beside the store, held with ``flock``.

One process writes a store at a time (``<store>.lock``, `store.duckdb_store.Store`), and one
`cdp refresh` runs per store (``<store>.refresh.lock``). The lock goes with its holder, even
when the holder is killed; the file only names the process that held it last.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class LockHeld(Exception):
    """Another process holds the lock; ``holder`` is its process id when the file says it."""

    def __init__(self, path: Path, holder: int | None):
        super().__init__(f"{path} is held" + (f" by process {holder}" if holder else ""))
        self.path, self.holder = path, holder


class FileLock:
    """An exclusive, non-blocking lock on ``path``, taken with `take` and let go with `release`."""

    def __init__(self, handle, path: Path):
        self.handle = handle
        self.path = path

    @classmethod
    def take(cls, path: Path) -> FileLock:
        """The lock, with this process's id written in the file; `LockHeld` if another has it."""
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            text = handle.read().strip()
            handle.close()
            raise LockHeld(path, int(text) if text.isdigit() else None) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        return cls(handle, path)

    def release(self) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
