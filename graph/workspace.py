"""Where a run reads and writes files; every name is confined to its folder."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)

MAX_PART_BYTES = 255  # NAME_MAX of Linux, macOS and Windows file systems
MAX_NAME_BYTES = 1024  # a relative name, well under PATH_MAX with its folder


class PathOutsideFolder(ValueError):
    """A file name that would resolve outside the folder it belongs to."""


class NotARegularFile(ValueError):
    """A FIFO, device, socket or folder where a file was expected: reading it could block
    forever (a FIFO without a writer) or never end (/dev/zero)."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def is_regular_file(path: Path | str) -> bool:
    """True for a regular file (after following symlinks); False for anything else,
    missing or unreadable paths included. Never opens the path."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def require_regular_file(path: Path | str) -> Path:
    """``path`` if it is a regular file; NotARegularFile (or FileNotFoundError) otherwise."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotARegularFile(f"{Path(path).name} is {_kind(mode)}, not a regular file; refused")
    return Path(path)


def open_regular(path: Path | str) -> BinaryIO:
    """Open a file for binary reading, refusing anything but a regular file *before*
    a read could block: the open itself never waits (O_NONBLOCK), and the type is
    checked on the opened descriptor, so a swap after a check cannot slip through.
    Every place that reads a user-supplied file (images, checkpoints, uploads) uses it."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(
                f"{Path(path).name} is {_kind(mode)}, not a regular file; refused"
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def confined_path(folder: Path, name: str) -> Path:
    """Resolve ``name`` inside ``folder``; refuse absolute paths, ``..``, NUL bytes
    and symlinks that lead out of the folder."""
    if not name or "\x00" in name or name.startswith(("/", "\\")) or ":" in name[:3]:
        raise PathOutsideFolder(f"{name!r} is not a plain file name inside {folder.name}/")
    parts = name.replace("\\", "/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise PathOutsideFolder(f"{name!r} is not a plain file name inside {folder.name}/")
    try:
        encoded = [os.fsencode(p) for p in parts]
    except UnicodeError:
        raise PathOutsideFolder(f"{name!r} cannot be a file name here") from None
    if sum(len(p) + 1 for p in encoded) > MAX_NAME_BYTES or any(
        len(p) > MAX_PART_BYTES for p in encoded
    ):  # the OS would refuse it (ENAMETOOLONG) at the first stat
        raise PathOutsideFolder(f"{name[:40]!r}... is too long for a file name")
    base = folder.resolve()
    try:
        target = (base / name).resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops, unreadable folders
        raise PathOutsideFolder(f"{name!r} cannot be resolved: {exc}") from None
    if target != base and base not in target.parents:
        raise PathOutsideFolder(f"{name!r} resolves outside {folder.name}/")
    return target


@dataclass(frozen=True)
class Workspace:
    """The folders of one engine: models to load, inputs, outputs, temporary files."""

    models_dir: Path
    input_dir: Path
    output_dir: Path
    temp_dir: Path
    allow_pickle: bool = False  # opt-in to pickle checkpoints (loaded with weights_only=True)

    @classmethod
    def at(cls, data_dir: Path, models_dir: Path, allow_pickle: bool = False) -> Workspace:
        """Inputs, outputs and temporary files under ``data_dir``; models under
        ``models_dir`` (checkpoints in its ``checkpoints/`` folder)."""
        data_dir = Path(data_dir)
        return cls(
            models_dir=Path(models_dir),
            input_dir=data_dir / "input",
            output_dir=data_dir / "output",
            temp_dir=data_dir / "temp",
            allow_pickle=allow_pickle,
        )

    def with_output(self, output_dir: Path) -> Workspace:
        return replace(self, output_dir=Path(output_dir))

    def ensure(self) -> Workspace:
        """Create the input, output and temporary folders if missing."""
        for d in (self.input_dir, self.output_dir, self.temp_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self

    def clear_temp(self) -> int:
        """Empty the temporary folder (PreviewImage's files of an earlier process);
        the number of entries removed. Links are removed, never followed."""
        removed = 0
        if not self.temp_dir.is_dir():
            return removed
        for entry in os.scandir(self.temp_dir):
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
        return removed

    def folder(self, kind: str) -> Path:
        folders = {"output": self.output_dir, "input": self.input_dir, "temp": self.temp_dir}
        if kind not in folders:
            raise PathOutsideFolder(f"unknown file kind {kind!r}")
        return folders[kind]

    def file(self, kind: str, name: str) -> Path:
        return confined_path(self.folder(kind), name)
