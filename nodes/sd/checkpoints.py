"""Finding and loading checkpoints: built-ins, single files, diffusers folders.

Names are what workflows store: ``builtin/<name>`` or a path relative to
``<models>/checkpoints/``. Each loaded component (U-Net, text encoder, VAE) lives in the
engine's model store under its file identity (resolved path, size, mtime), part, dtype and
device, so every node and run shares it, the store's budget bounds it, and a replaced
file is loaded afresh.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from graph.context import Resources
from graph.listing import LISTINGS
from graph.models import ComponentRef, ModelStore
from graph.registry import choice_source
from graph.workspace import NotARegularFile, PathOutsideFolder, confined_path, is_regular_file
from nodes.sd.checkpoint_arch import detect
from nodes.sd.checkpoint_build import build_from_diffusers_folder, build_from_ldm
from nodes.sd.checkpoint_files import (
    CheckpointError,
    FileIdentity,
    parse_json_meta,
    read_state_dict,
)
from nodes.sd.handles import ClipHandle, ModelHandle, VaeHandle
from nodes.sd.ldm_export import HINTS_KEY
from nodes.sd.model_store import place
from nodes.sd.preview import make_previewer
from nodes.sd.runtime import cpu_has_native_bf16
from nodes.sd.sdxl_arch import detect_sdxl, is_sdxl_folder, is_sgm
from nodes.sd.sdxl_build import build_sdxl_from_diffusers_folder, build_sdxl_from_sgm
from nodes.sd.vae_latents import vae_dtype

__all__ = [
    "BUILTIN_TINY",
    "CheckpointError",
    "checkpoint_fingerprint",
    "list_checkpoints",
    "load_checkpoint",
    "resolve_checkpoint",
    "resolve_device",
    "resolve_dtype",
]

BUILTIN_PREFIX = "builtin/"
BUILTIN_TINY = "builtin/tiny-random"
BUILTIN_TINY_VERSION = 1  # bump when build_tiny_components changes its weights
BUILTIN_MODELS_DIR = Path(__file__).parent / "builtin_models"
EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".bin", ".pth")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
CACHE_TAG = "sd.checkpoint"
# what a checkpoint puts in the model store (text_encoder_2: SDXL base's bigG)
COMPONENTS = ("unet", "text_encoder", "text_encoder_2", "vae")

Kind = Literal["tiny", "file", "folder"]


@dataclass(frozen=True)
class Resolved:
    """Where a checkpoint name points and what kind of thing it is."""

    name: str
    kind: Kind
    path: Path | None  # None for the generated tiny model
    trusted: bool = False  # shipped with the project

    def identity(self) -> FileIdentity:
        if self.path is None:
            return FileIdentity(self.name, 0, BUILTIN_TINY_VERSION)
        try:
            return FileIdentity.of(self.path)
        except (OSError, NotARegularFile) as e:
            raise CheckpointError(f"{self.name}: cannot read the checkpoint ({e})") from e


def checkpoints_folder(workspace: Any) -> Path:
    return Path(workspace.models_dir) / "checkpoints"


def builtin_files(folder: Path | None = None) -> dict[str, Path]:
    """{"builtin/<stem>": path} of the shipped files in ``folder`` (default: the shipped
    checkpoints, BUILTIN_MODELS_DIR read at call time; the shipped LoRAs are in its
    ``loras/``, nodes.sd.builtin_loras); listed once per change of the folder."""
    where = BUILTIN_MODELS_DIR if folder is None else folder
    names = tuple(LISTINGS.get(("builtin", str(where)), where, lambda: _list_builtin(where)))
    key = (str(where), names)
    files = _BUILTIN_PATHS.get(key)
    if files is None:  # the same few paths were built again on every validation
        files = {BUILTIN_PREFIX + Path(n).stem: where / n for n in names}
        if len(_BUILTIN_PATHS) >= 8:  # folders of old listings
            _BUILTIN_PATHS.clear()
        _BUILTIN_PATHS[key] = files
    return dict(files)


_BUILTIN_PATHS: dict[tuple[str, tuple[str, ...]], dict[str, Path]] = {}  # by folder + listing


def _list_builtin(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return [p.name for p in sorted(folder.glob("*.safetensors")) if p.is_file()]
    if not folder.is_dir():
        return []
    return [p.name for p in sorted(folder.glob("*.safetensors")) if p.is_file()]


def scan_folder(
    folder: Path, extensions: tuple[str, ...] = EXTENSIONS, marker: str = "model_index.json"
) -> list[str]:
    """Model files and diffusers folders (holding ``marker``) under ``folder`` (relative
    posix paths); remembered while the folder's tree is unchanged (every job lists it)."""
    key = ("scan_folder", str(folder), extensions, marker)
    return LISTINGS.get(key, folder, lambda: _scan_folder(folder, extensions, marker))


def _scan_folder(folder: Path, extensions: tuple[str, ...], marker: str) -> list[str]:
    if not folder.is_dir():
        return []
    base = folder.resolve()
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if here != folder and (here / marker).is_file():
            found.append(here.relative_to(folder).as_posix())
            dirs[:] = []  # a diffusers folder's weight files are not checkpoints of their own
            continue
        for f in files:
            p = here / f
            if f.startswith(".") or not f.lower().endswith(extensions) or not is_regular_file(p):
                continue
            if base not in p.resolve().parents:
                continue  # a symlink out of the folder
            found.append(p.relative_to(folder).as_posix())
    return sorted(found)


@choice_source("checkpoints")
def list_checkpoints(workspace: Any) -> list[str]:
    """Built-ins first, then what ``<models>/checkpoints/`` holds, sorted."""
    return [BUILTIN_TINY, *builtin_files(), *scan_folder(checkpoints_folder(workspace))]


def resolve_checkpoint(workspace: Any, name: str) -> Resolved:
    """The file or folder behind a name; CheckpointError when it does not exist or
    would lie outside the checkpoints folder."""
    if name == BUILTIN_TINY:
        return Resolved(name, "tiny", None, trusted=True)
    if name.startswith(BUILTIN_PREFIX):
        path = builtin_files().get(name)
        if path is None:
            raise CheckpointError(f"{name}: no such built-in checkpoint")
        return Resolved(name, "file", path, trusted=True)
    folder = checkpoints_folder(workspace)
    try:
        path = confined_path(folder, name)
    except PathOutsideFolder as e:
        raise CheckpointError(f"{name}: not a checkpoint name inside checkpoints/ ({e})") from e
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise CheckpointError(f"{name}: a folder without model_index.json (not diffusers)")
        return Resolved(name, "folder", path)
    if not path.exists():
        raise CheckpointError(f"{name}: no such checkpoint in {folder}")
    if not is_regular_file(path):
        raise CheckpointError(f"{name}: not a regular file (FIFO, device or socket); refused")
    return Resolved(name, "file", path)


def checkpoint_fingerprint(workspace: Any, name: str) -> str:
    """Size and mtime of the checkpoint (for the output cache key); a name that does not
    resolve gives a marker, and loading then reports the error."""
    try:
        return resolve_checkpoint(workspace, name).identity().token()
    except CheckpointError:
        return "unresolved"


def resolve_device(device: str = "auto") -> torch.device:
    """auto: cuda if available, else mps if available, else cpu."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' is not available on this machine")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' is not available on this machine")
    if device not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {device!r}")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """auto: fp16 on cuda; on the CPU bf16 where the processor computes it natively
    (AVX512-BF16 or AMX, 2.5-3x faster than fp32 at the same adherence, see the README),
    else fp32 (emulated bf16 is slower than fp32); fp32 on mps."""
    if dtype == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}")
    return DTYPES[dtype]


def _read_components(res: Resolved, allow_pickle: bool, dtype: torch.dtype) -> dict[str, Any]:
    """Components on the CPU (single files already cast to ``dtype``)."""
    if res.kind == "tiny":
        from nodes.sd.builtin import build_tiny_components
        from nodes.sd.checkpoint_build import scheduler_config

        c = build_tiny_components(0)
        sched = {"_class_name": type(c["scheduler"]).__name__, **dict(c["scheduler"].config)}
        c["scheduler_config"] = scheduler_config(sched)
        return c
    assert res.path is not None
    if res.kind == "folder":
        if is_sdxl_folder(res.path):
            return build_sdxl_from_diffusers_folder(res.path, allow_pickle, res.name)
        return build_from_diffusers_folder(res.path, allow_pickle, res.name)
    sd, meta, _fmt = read_state_dict(
        res.path, allow_pickle=allow_pickle and not res.trusted, dtype=dtype
    )
    meta["hints"] = parse_json_meta(meta, HINTS_KEY)
    if is_sgm(sd):
        return build_sdxl_from_sgm(sd, detect_sdxl(sd, meta, res.name), res.name, dtype)
    arch = detect(sd, meta, res.name)
    return build_from_ldm(sd, arch, res.name, dtype)


def _checkpoint_key(
    ident: FileIdentity, part: str, dtype: torch.dtype, device: torch.device
) -> tuple:
    return (CACHE_TAG, ident.path, ident.size, ident.mtime_ns, part, str(dtype), str(device))


def _is_older_version(key: tuple) -> Callable[[Any], bool]:
    """Matches the keys of another version (size, mtime) of the same file."""
    return lambda k: (
        isinstance(k, tuple) and len(k) == len(key) and k[:2] == key[:2] and k[2:4] != key[2:4]
    )


def _is_unloaded_handles(key: Any, store: ModelStore) -> bool:
    if not (isinstance(key, tuple) and len(key) == 7 and key[0] == CACHE_TAG):
        return False
    return key[4] == "handles" and not any(key[:4] + (c,) + key[5:] in store for c in COMPONENTS)


@dataclass(frozen=True)
class _Loadable:
    """One checkpoint file at one dtype and device: reads it and places its components
    (the U-Net, text encoder and VAE) in the model store, again after an eviction."""

    res: Resolved
    ident: FileIdentity
    dtype: torch.dtype
    device: torch.device
    allow_pickle: bool

    def key(self, component: str) -> tuple:
        return _checkpoint_key(self.ident, component, self.dtype, self.device)

    def ref(self, store: ModelStore, component: str) -> ComponentRef:
        return ComponentRef(store, self.key(component), lambda: self.load(store, [component]))

    def load(self, store: ModelStore, wanted: Iterable[str]) -> dict[str, Any]:
        """Read the file; put the ``wanted`` components the store lacks; the components
        and configs read (on the CPU, unplaced where the store already had them)."""
        if self.res.identity() != self.ident:
            raise CheckpointError(
                f"{self.res.name}: the file changed since it was loaded; run the workflow "
                "again to load the new version"
            )
        c = _read_components(self.res, self.allow_pickle, self.dtype)
        dtype_name = str(self.dtype).removeprefix("torch.")
        vae_dt = vae_dtype(str(c.get("family", "sd")), self.dtype, c["vae"].config)
        for component in wanted:
            key = self.key(component)
            if key not in store and c.get(component) is not None:
                label = f"{self.res.name}:{component}:{dtype_name}"
                c[component] = place(
                    store,
                    key,
                    c[component],
                    self.device,
                    vae_dt if component == "vae" else self.dtype,
                    label,
                    checkpoint=self.res.name,
                    component=component,
                )
        return c


def _handles(c: dict[str, Any], src: _Loadable, store: ModelStore, identity: str) -> tuple:
    vae_config = c["vae"].config
    sched = c["scheduler_config"]
    dev, dt = src.device, src.dtype
    vae_ref = src.ref(store, "vae")
    model = ModelHandle(
        src.ref(store, "unet"),
        scheduler_config=sched,
        prediction_type=str(sched.get("prediction_type", "epsilon")),
        device=dev,
        dtype=dt,
        identity=identity,
        vae_scale_factor=2 ** (len(vae_config.block_out_channels) - 1),
        latent_channels=int(c["unet"].config.in_channels),
        zeros_for_missing_negative=bool(c.get("zeros_for_missing_negative", False)),
        # the previewer reaches the VAE through its ref, so a cached handle holds no module
        preview=make_previewer(vae_ref.get(), float(vae_config.scaling_factor), source=vae_ref),
    )
    family = str(c.get("family", "sd"))
    clip = ClipHandle(
        c["tokenizer"],
        src.ref(store, "text_encoder"),
        dev,
        dt,
        identity,
        tokenizer_2=c.get("tokenizer_2"),
        text_encoder_2_ref=(
            src.ref(store, "text_encoder_2") if c.get("text_encoder_2") is not None else None
        ),
        family=family,
    )
    vae_dt = vae_dtype(family, dt, vae_config)
    scale = float(vae_config.scaling_factor)
    vae_h = VaeHandle(vae_ref, dev, vae_dt, identity, scaling_factor=scale)
    return model, clip, vae_h


def load_checkpoint(
    workspace: Any,
    resources: Any,
    name: str,
    dtype: str = "auto",
    device: str = "auto",
) -> tuple[ModelHandle, ClipHandle, VaeHandle]:
    """The model, CLIP and VAE handles of a checkpoint; its modules live in the model
    store (``resources.models``, or ``resources`` itself when it is a `ModelStore`),
    shared by every node and run, and are loaded again when evicted.

    Raises CheckpointError (a ValueError) naming the file for anything wrong with it;
    nothing is kept then."""
    if isinstance(resources, ModelStore):
        resources = Resources(resources)
    store: ModelStore = resources.models
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    res = resolve_checkpoint(workspace, name)
    ident = res.identity()
    src = _Loadable(res, ident, dt, dev, bool(getattr(workspace, "allow_pickle", False)))
    key = src.key("handles")
    identity = f"{name}|{ident.token()}|{str(dt).removeprefix('torch.')}|{dev}"

    def factory() -> tuple[ModelHandle, ClipHandle, VaeHandle]:
        return _handles(src.load(store, COMPONENTS), src, store, identity)  # type: ignore[return-value]

    with store.job():  # what this load places stays until the running job ends
        handles = resources.get_or_create(key, factory)
    # an older version of the same file is not needed by new runs any more
    resources.drop(_is_older_version(key))
    store.drop(_is_older_version(key))
    # handles (tokenizer, configs) of checkpoints whose components were all evicted
    resources.drop(lambda k: _is_unloaded_handles(k, store))
    return handles  # type: ignore[no-any-return]
