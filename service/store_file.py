"""The job database file itself: refused, never replaced, when it is not a usable
SQLite database of ours (the queue and the history live in it)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

SQLITE_HEADER = b"SQLite format 3\x00"


class StoreUnusable(Exception):
    """The job database exists but cannot be used; it is never replaced silently,
    since the queue and the history live in it."""

    def __init__(self, path: Path, reason: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        super().__init__(
            f"the job database {path} cannot be used: {reason}. It holds the queue and "
            "the history, so it is not replaced. Restore it from a backup, or move it "
            f"aside to start with an empty queue: mv {path} {path}.broken-{stamp} "
            "(with its -wal and -shm files, if any)"
        )
        self.path = path
        self.reason = reason


def check_database_file(path: Path) -> None:
    """Refuse, before SQLite touches it, a file that is not a SQLite database (SQLite
    would silently turn an empty file into a new database)."""
    if not path.is_file():
        raise StoreUnusable(path, "it is not a regular file")
    with path.open("rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if not header:
        raise StoreUnusable(path, "the file is empty (0 bytes)")
    if header != SQLITE_HEADER:
        raise StoreUnusable(path, "the file is not a SQLite database")


def check_contents(db: sqlite3.Connection) -> None:
    """A database that is damaged, or is not ours, is refused rather than reused."""
    problems = [row[0] for row in db.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError("the integrity check failed: " + "; ".join(problems[:3]))
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "jobs" not in tables:
        raise sqlite3.DatabaseError("it holds no jobs table (is it another program's database?)")
