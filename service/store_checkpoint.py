"""WAL checkpoints off the request and job paths.

SQLite copies the write-ahead log back into the database file (a checkpoint, with
an fsync) from whichever connection's commit pushes the log past
``wal_autocheckpoint`` pages. On a machine whose disk is busy that fsync took
0.7 s, and it ran inside a job's claim or finish, holding the store's lock: every
request and job waited. Here a thread of its own checkpoints on its own connection
every ``interval`` seconds (PASSIVE: writers carry on meanwhile); the store's own
connection checkpoints only if this one falls far behind."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

BACKSTOP_PAGES = 20000  # the store's connection checkpoints itself past this (~80 MB)


class Checkpointer:
    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def _loop(self) -> None:
        db = None
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
            while not self._stop.wait(self.interval):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    log.exception("WAL checkpoint of %s failed", self.path)
        except sqlite3.Error:
            log.exception("cannot checkpoint %s; its own commits will", self.path)
        finally:
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
