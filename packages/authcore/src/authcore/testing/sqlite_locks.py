"""A lock SQLite does not wait out by itself, for the tests of code that opens a database file.

While another connection holds a write lock on a database still in rollback-journal mode,
``PRAGMA journal_mode=WAL`` answers "database is locked" at once, whatever the busy timeout:
what several processes meet when they open one new database together. :func:`write_locked`
makes that moment last, so a test can show its code waits it out (authcore's SQLite session
store and auth-local's engines retry with :func:`authcore.sessions.sqlite.switch_to_wal`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["write_locked"]


@contextmanager
def write_locked(path: Path, *, seconds: float = 0.3) -> Iterator[None]:
    """Within the block, *path* is a new SQLite database (rollback journal) whose write lock
    another connection holds for *seconds* from the block's start, then commits; the block's
    end waits for that and closes the connection."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE unrelated (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO unrelated VALUES (1)")
    released = threading.Timer(seconds, other.execute, args=("COMMIT",))
    released.start()
    try:
        yield
    finally:
        released.join()
        other.close()
