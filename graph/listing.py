"""Folder listings remembered while the folder tree is unchanged.

Every validation lists the models and input folders (Choice inputs); walking a tree and
checking each file costs far more than a cached job itself. A listing is kept with the
(inode, mtime, ctime) of every directory it walked: adding, removing or renaming an
entry changes its directory's mtime, so comparing those stamps (one ``stat`` per
directory) says whether the listing still holds. A directory changed within the last
``RACY_NS`` is not trusted (timestamps are coarse: a change in the same tick as the
listing would leave the stamp unchanged), as git does with its index.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path

RACY_NS = 2_000_000_000  # coarser than any local filesystem's timestamps (FAT: 2 s)

Stamp = tuple[tuple[str, int, int, int], ...]


def _stamp_of(path: str) -> tuple[str, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def tree_dirs(folder: Path) -> list[str]:
    """The folder and every directory below it that a walk visits (not through links)."""
    found = []
    for root, dirs, _files in os.walk(folder):
        found.append(root)
        dirs[:] = sorted(dirs)
    return found


class Listings:
    """Listings by key, each valid while the directories it depends on keep their stamps."""

    def __init__(self) -> None:
        self._memo: dict[Hashable, tuple[Stamp, list[str]]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, folder: Path, compute: Callable[[], list[str]]) -> list[str]:
        """``compute()``'s listing of ``folder`` (a copy), from the memo while no
        directory of the tree has changed since it was computed."""
        with self._lock:
            held = self._memo.get(key)
        if held is not None and self._still(held[0]):
            return list(held[1])
        before = self._stamp(folder)
        listing = compute()
        after = self._stamp(folder)
        # changed while listing, or too recently to tell a later change apart: not kept
        if after is not None and before == after and not _recent(after):
            with self._lock:
                self._memo[key] = (after, list(listing))
        return listing

    @staticmethod
    def _stamp(folder: Path) -> Stamp | None:
        """The stamps of the tree's directories; None when one vanished meanwhile."""
        root = str(folder)
        if not os.path.isdir(root):
            return ((root, -1, -1, -1),)  # absent: valid while it stays absent
        stamps = [_stamp_of(d) for d in tree_dirs(folder)]
        return None if None in stamps else tuple(stamps)  # type: ignore[arg-type]

    @staticmethod
    def _still(stamp: Stamp) -> bool:
        for entry in stamp:
            now = _stamp_of(entry[0])
            if entry[1] == -1:  # was absent
                if now is not None:
                    return False
            elif now != entry:
                return False
        return True


def _recent(stamp: Stamp) -> bool:
    now = time.time_ns()
    return any(ino != -1 and now - ctime < RACY_NS for _p, ino, _m, ctime in stamp)


LISTINGS = Listings()  # one per process: a memo of file-system facts, like the model index
