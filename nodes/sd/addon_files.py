"""Add-on model files: LoRAs (``models/loras/``), VAEs (``models/vae/``) and textual-
inversion embeddings (``models/embeddings/``), listed for `Choice` inputs and resolved
inside their folder (never outside it; FIFOs and devices refused).

Files are read with safetensors; ``.pt``/``.ckpt``/``.bin`` only with ``--allow-pickle``
(then ``weights_only=True``), as checkpoints are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from graph.registry import choice_source
from graph.workspace import PathOutsideFolder, confined_path, is_regular_file
from nodes.sd.builtin_loras import builtin_loras
from nodes.sd.checkpoint_files import CheckpointError, FileIdentity, read_state_dict
from nodes.sd.checkpoints import BUILTIN_PREFIX, EXTENSIONS, scan_folder

FOLDERS = {"loras": "LoRA", "vae": "VAE", "embeddings": "embedding"}


class AddonError(CheckpointError):
    """An add-on file that is missing, outside its folder or unreadable (names the file)."""


@dataclass(frozen=True)
class AddonFile:
    kind: str  # "loras" | "vae" | "embeddings"
    name: str  # as the workflow stores it: relative to the kind's folder
    path: Path

    @property
    def identity(self) -> FileIdentity:
        try:
            return FileIdentity.of(self.path)
        except (OSError, ValueError) as e:
            raise AddonError(f"{self.label}: cannot read the file ({e})") from e

    @property
    def label(self) -> str:
        return f"{FOLDERS[self.kind]} {self.name!r}"


def addon_folder(workspace: Any, kind: str) -> Path:
    return Path(workspace.models_dir) / kind


def list_addons(workspace: Any, kind: str) -> list[str]:
    """Files (and, for VAEs, diffusers folders holding ``config.json``) of one kind."""
    return scan_folder(addon_folder(workspace, kind), EXTENSIONS, marker="config.json")


@choice_source("loras")
def list_loras(workspace: Any) -> list[str]:
    """The shipped LoRAs (``builtin/<stem>``) first, then ``models/loras/``."""
    return [*builtin_loras(), *list_addons(workspace, "loras")]


@choice_source("vae")
def list_vaes(workspace: Any) -> list[str]:
    return list_addons(workspace, "vae")


@choice_source("embeddings")
def list_embeddings(workspace: Any) -> list[str]:
    return list_addons(workspace, "embeddings")


def resolve_addon(workspace: Any, kind: str, name: str, folders_ok: bool = False) -> AddonFile:
    """The file behind ``name`` inside ``<models>/<kind>/``; AddonError naming it if absent,
    outside the folder, or not a regular file."""
    folder = addon_folder(workspace, kind)
    label = f"{FOLDERS[kind]} {name!r}"
    if kind == "loras" and name.startswith(BUILTIN_PREFIX):
        path = builtin_loras().get(name)
        if path is None:
            raise AddonError(f"{label}: no such built-in LoRA")
        return AddonFile(kind, name, path)
    try:
        path = confined_path(folder, name)
    except PathOutsideFolder as e:
        raise AddonError(f"{label}: not a name inside {kind}/ ({e})") from e
    if folders_ok and path.is_dir() and (path / "config.json").is_file():
        return AddonFile(kind, name, path)
    if not path.exists():
        raise AddonError(f"{label}: no such file in {folder}")
    if not is_regular_file(path):
        raise AddonError(f"{label}: not a regular file (folder, FIFO, device or socket); refused")
    return AddonFile(kind, name, path)


def addon_fingerprint(workspace: Any, kind: str, name: str) -> str:
    """Size and mtime of the file for cache keys; a marker when it does not resolve
    (running the node then reports why)."""
    try:
        return resolve_addon(workspace, kind, name, folders_ok=True).identity.token()
    except CheckpointError:
        return "unresolved"


def read_addon(file: AddonFile, workspace: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a single-file add-on; pickles only with --allow-pickle."""
    allow = bool(getattr(workspace, "allow_pickle", False))
    try:
        tensors, meta, _fmt = read_state_dict(file.path, allow_pickle=allow)
    except CheckpointError as e:
        raise AddonError(f"{file.label}: {e}") from e
    return tensors, meta
