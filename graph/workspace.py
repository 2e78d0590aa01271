"""Where a run reads and writes files; every name is confined to its folder."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path


class PathOutsideFolder(ValueError):
    """A file name that would resolve outside the folder it belongs to."""


def confined_path(folder: Path, name: str) -> Path:
    """Resolve ``name`` inside ``folder``; refuse absolute paths, ``..``, NUL bytes
    and symlinks that lead out of the folder."""
    if not name or "\x00" in name or name.startswith(("/", "\\")) or ":" in name[:3]:
        raise PathOutsideFolder(f"{name!r} is not a plain file name inside {folder.name}/")
    parts = name.replace("\\", "/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise PathOutsideFolder(f"{name!r} is not a plain file name inside {folder.name}/")
    base = folder.resolve()
    target = (base / name).resolve()
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

    def folder(self, kind: str) -> Path:
        folders = {"output": self.output_dir, "input": self.input_dir, "temp": self.temp_dir}
        if kind not in folders:
            raise PathOutsideFolder(f"unknown file kind {kind!r}")
        return folders[kind]

    def file(self, kind: str, name: str) -> Path:
        return confined_path(self.folder(kind), name)
