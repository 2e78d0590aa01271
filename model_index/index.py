"""The model index: every file under the models folders with its sha256, size and family.

A sha256 is computed once per file version and memoized by (path, size, mtime, inode) in
``<data>/model-index.json``, so a copy that keeps its mtime is still told apart by content,
and an edited file is hashed again. Hashing runs on one background thread from the first
scan (the server starts one at start-up); ``sha256()`` computes at once when a caller needs
a hash that is not there yet, sharing the work with the background thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from graph.workspace import is_regular_file, open_regular
from model_index.family import detect_family
from model_index.native_size import native_size

KINDS = ("checkpoints", "loras", "vae", "embeddings", "controlnet", "upscale_models")
EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".bin", ".pth", ".gguf")
INDEX_FILE = "model-index.json"
BLOCK = 1 << 22


@dataclass(frozen=True)
class ModelFile:
    """One file under ``<models>/<kind>/``; ``sha256`` None while not hashed yet."""

    kind: str
    name: str
    size: int
    sha256: str | None
    family: str | None
    native_size: int | None = None  # checkpoints: pixels per side it was trained at

    @property
    def autov2(self) -> str | None:
        """A1111/Civitai's short hash: the first 10 hex digits of the sha256."""
        return self.sha256[:10] if self.sha256 else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "autov2": self.autov2, "hashing": self.sha256 is None}


def _key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open_regular(path) as f:  # a FIFO planted in models/ never blocks the hashing
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def addnet_sha256(path: Path) -> str:
    """kohya's (and A1111's "Lora hashes") hash of a .safetensors file: the sha256 of what
    follows the header, so editing the metadata keeps it."""
    digest = hashlib.sha256()
    with open_regular(path) as f:
        header = int.from_bytes(f.read(8), "little")
        f.seek(8 + header)
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


class ModelIndex:
    """Facts about the files of one models folder, remembered in one data folder."""

    def __init__(self, models_dir: Path, data_dir: Path) -> None:
        self.models_dir = Path(models_dir)
        self.store = Path(data_dir) / INDEX_FILE
        self._lock = threading.Lock()
        self._busy: dict[str, threading.Event] = {}
        self._memo: dict[str, dict[str, Any]] = self._load()
        self._pending: list[Path] = []
        self._worker: threading.Thread | None = None

    # -- the memo ----------------------------------------------------------------------
    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.store.read_text(encoding="utf-8"))
            return {k: v for k, v in data.get("files", {}).items() if isinstance(v, dict)}
        except (OSError, ValueError, AttributeError):
            return {}

    def _save(self) -> None:
        with self._lock:
            doc = json.dumps({"version": 1, "files": self._memo}, indent=1, sort_keys=True)
        with contextlib.suppress(OSError):
            self.store.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.store.parent, prefix=".model-index-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(doc)
            os.replace(tmp, self.store)

    def _known(self, path: Path, st: os.stat_result) -> dict[str, Any] | None:
        with self._lock:
            entry = self._memo.get(str(path))
        return entry if entry is not None and entry.get("key") == _key(st) else None

    # -- hashing -----------------------------------------------------------------------
    def known_sha256(self, path: Path) -> str | None:
        """The memoized sha256 of the file as it is now, without hashing."""
        path = Path(path).resolve()
        entry = self._known(path, path.stat())
        return entry.get("sha256") if entry else None

    def sha256(self, path: Path) -> str:
        """The file's sha256, from the memo or computed now (once, even when the
        background thread is at the same file)."""
        path = Path(path).resolve()
        while True:
            st = path.stat()
            entry = self._known(path, st)
            if entry and entry.get("sha256"):
                return str(entry["sha256"])
            with self._lock:
                busy = self._busy.get(str(path))
                mine = busy is None
                if mine:
                    busy = self._busy[str(path)] = threading.Event()
            assert busy is not None
            if not mine:
                busy.wait()
                continue
            try:
                digest = self._digest(path)
                if _key(path.stat()) == _key(st):  # unchanged while it was read
                    with self._lock:
                        old = self._memo.get(str(path), {})
                        self._memo[str(path)] = {**old, "key": _key(st), "sha256": digest}
                    self._save()
                return digest
            finally:
                with self._lock:
                    self._busy.pop(str(path), None)
                busy.set()

    def addnet(self, path: Path) -> str:
        """A1111's LoRA hash of the file (`addnet_sha256`; the plain sha256 of a file that
        is not .safetensors), memoized like the sha256."""
        path = Path(path).resolve()
        if path.suffix.lower() != ".safetensors":
            return self.sha256(path)
        st = path.stat()
        entry = self._known(path, st)
        if entry and entry.get("addnet"):
            return str(entry["addnet"])
        digest = addnet_sha256(path)
        if _key(path.stat()) == _key(st):
            with self._lock:
                old = self._memo.get(str(path), {})
                if old.get("key") != _key(st):
                    old = {"key": _key(st)}
                self._memo[str(path)] = {**old, "addnet": digest}
            self._save()
        return digest

    def _digest(self, path: Path) -> str:
        return file_sha256(path)

    def family_of(self, kind: str, path: Path) -> str:
        """The family of a file under the ``kind`` folder (memoized with its hash)."""
        return self._family(kind, path, path.stat())

    def _family(self, kind: str, path: Path, st: os.stat_result) -> str:
        entry = self._known(path, st)
        if entry and entry.get("family"):
            return str(entry["family"])
        family = detect_family(kind, path)
        with self._lock:
            old = self._memo.get(str(path), {})
            if old.get("key") != _key(st):
                old = {"key": _key(st)}
            self._memo[str(path)] = {**old, "family": family}
        return family

    def _native_size(self, family: str, path: Path, st: os.stat_result) -> int | None:
        """Memoized like the family (0 in the memo: not known)."""
        entry = self._known(path, st)
        if entry and "native_size" in entry:
            return int(entry["native_size"]) or None
        size = native_size(family, path)
        with self._lock:
            old = self._memo.get(str(path), {})
            if old.get("key") == _key(st):
                self._memo[str(path)] = {**old, "native_size": size or 0}
        return size

    def hash_in_background(self, paths: Iterable[Path]) -> None:
        """Queue files for the background thread (started on first use)."""
        with self._lock:
            self._pending.extend(paths)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._drain, name="model-index", daemon=True)
                self._worker.start()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._worker = None
                    return
                path = self._pending.pop(0)
            with contextlib.suppress(OSError, ValueError):  # gone, or no longer a file
                self.sha256(path)

    def wait_idle(self, timeout: float | None = None) -> None:
        """For tests and scripts: until the background thread has nothing left."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)

    # -- listing and lookup ------------------------------------------------------------
    def _walk(self, kind: str) -> list[Path]:
        folder = self.models_dir / kind
        if not folder.is_dir():
            return []
        base = folder.resolve()
        found = []
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for f in sorted(files):
                p = Path(root) / f
                if f.startswith(".") or not f.lower().endswith(EXTENSIONS):
                    continue
                if not is_regular_file(p):  # FIFOs, devices: never listed, never read
                    continue
                if base in p.resolve().parents:  # no symlinks out of the folder
                    found.append(p)
        return found

    def scan(self, kinds: Iterable[str] = KINDS, background: bool = True) -> list[ModelFile]:
        """Every file with what is known of it now; unhashed ones go to the background."""
        out, todo = [], []
        for kind in kinds:
            folder = self.models_dir / kind
            for path in self._walk(kind):
                try:
                    st = path.stat()
                except OSError:
                    continue
                real = path.resolve()
                entry = self._known(real, st)
                sha = entry.get("sha256") if entry else None
                if sha is None:
                    todo.append(real)
                name = path.relative_to(folder).as_posix()
                family = self._family(kind, real, st)
                px = self._native_size(family, real, st) if kind == "checkpoints" else None
                out.append(ModelFile(kind, name, st.st_size, sha, family, px))
        if todo and background:
            self.hash_in_background(todo)
        return out

    def path_of(self, kind: str, name: str) -> Path | None:
        """The file behind a name, if it exists inside ``<models>/<kind>/``."""
        try:
            folder = (self.models_dir / kind).resolve()
            path = (folder / name).resolve()
            if folder not in path.parents or not path.is_file():
                return None
        except (OSError, ValueError):  # a name with a NUL byte, a loop of links
            return None
        return path

    def find(
        self,
        kind: str,
        sha256: str | None = None,
        size: int | None = None,
        autov2: str | None = None,
        addnet: str | None = None,
    ) -> ModelFile | None:
        """A local file with this content (any name, any sub-folder), hashing the
        candidates that are not hashed yet (only same-size ones when the size is known)."""
        for f in self.scan([kind], background=False):
            if size is not None and f.size != size:
                continue
            path = self.path_of(kind, f.name)
            if path is None:
                continue
            digest = f.sha256 or self.sha256(path)
            if self.matches(path, digest, sha256, autov2, addnet):
                return ModelFile(kind, f.name, f.size, digest, f.family, f.native_size)
        return None

    def find_by_stem(self, kind: str, name: str) -> ModelFile | None:
        """The one local file whose name without folders and extension is ``name``'s (as
        A1111 finds a LoRA from its tag), or None when there is none or several."""
        stem = Path(name).stem if Path(name).suffix.lower() in EXTENSIONS else Path(name).name
        found = [f for f in self.scan([kind], background=False) if Path(f.name).stem == stem]
        return found[0] if len(found) == 1 else None

    def matches(
        self,
        path: Path,
        digest: str,
        sha256: str | None,
        autov2: str | None = None,
        addnet: str | None = None,
    ) -> bool:
        """Whether the file (whose sha256 is ``digest``) is the one these hashes name; the
        most exact hash given decides."""
        if sha256:
            return digest == sha256
        if autov2:
            return digest.startswith(autov2)
        return bool(addnet) and self.addnet(path).startswith(addnet or "-")


_SHARED: dict[tuple[str, str], ModelIndex] = {}
_BY_GIVEN: dict[tuple[str, str], ModelIndex] = {}
_SHARED_LOCK = threading.Lock()


def index_for(workspace: Any) -> ModelIndex:
    """The process's one index for a workspace's models and data folders (a memo of file
    facts, shared so two callers never hash the same file twice)."""
    given = (str(workspace.models_dir), str(workspace.input_dir))
    found = _BY_GIVEN.get(given)  # the paths as given: no resolving on every job
    if found is not None:
        return found
    data_dir = Path(workspace.input_dir).parent
    key = (str(Path(workspace.models_dir).resolve()), str(data_dir.resolve()))
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = ModelIndex(Path(workspace.models_dir), data_dir)
        if all(Path(p).is_absolute() for p in given):  # a relative one follows the cwd
            _BY_GIVEN[given] = _SHARED[key]
        return _SHARED[key]
