"""What a node gets while it runs: progress, interruption, files, shared resources.

No run state lives in globals: each node call receives a `RunContext`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from graph.events import Event, Progress
from graph.models import ModelStore
from graph.workspace import Workspace

T = TypeVar("T")


class Interrupted(Exception):
    """The run was asked to stop."""


class CancelToken:
    """Set from any thread; checked by the executor between nodes and by nodes per step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Interrupted("interrupted")


class Resources:
    """Engine-lifetime objects shared by all nodes and runs: the bounded model store
    (``models``, which owns every loaded model component) and small shared values."""

    def __init__(self, models: ModelStore | None = None) -> None:
        self.models = models if models is not None else ModelStore()
        self._items: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def get_or_create(self, key: Any, factory: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                return self._items[key]  # type: ignore[no-any-return]
        value = factory()
        with self._lock:
            return self._items.setdefault(key, value)  # type: ignore[no-any-return]

    def keys(self) -> list[Any]:
        with self._lock:
            return list(self._items)

    def drop(self, predicate: Callable[[Any], bool]) -> None:
        with self._lock:
            for key in [k for k in self._items if predicate(k)]:
                del self._items[key]


class WorkflowDoc:
    """The workflow being run, turned into a plain dict only if a node asks for it."""

    def __init__(self, workflow: Any) -> None:
        self._source = workflow
        self._doc: dict[str, Any] | None = None

    def get(self) -> dict[str, Any]:
        if self._doc is None:
            src = self._source
            self._doc = src if isinstance(src, dict) else src.model_dump(exclude_none=True)
        return self._doc


@dataclass
class RunContext:
    """Handed to ``Node.run``: the node's identity and its channels to the run."""

    run_id: str
    node_id: str
    node_type: str
    workspace: Workspace
    resources: Resources
    workflow_doc: WorkflowDoc
    cancel: CancelToken
    emit: Callable[[Event], None]
    files: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    previews: bool = False  # someone watches: attach preview images to progress

    @property
    def workflow(self) -> dict[str, Any]:
        """The workflow being run (after command-line overrides), as a JSON-ready dict."""
        return self.workflow_doc.get()

    def progress(
        self,
        fraction: float,
        step: int | None = None,
        total: int | None = None,
        preview: Any = None,
    ) -> None:
        """Report progress (0..1), optionally with a preview image; also checks interruption."""
        self.emit(Progress(self.run_id, self.node_id, fraction, step, total, preview))
        self.cancel.raise_if_cancelled()

    def warn(self, message: str) -> None:
        """Something the user should know about although the node succeeded (reported
        on the node's ``node_finished`` event)."""
        self.warnings.append(message)

    def check_interrupted(self) -> None:
        self.cancel.raise_if_cancelled()

    def record_file(self, kind: str, path: Path) -> None:
        """Note a file this node wrote into the workspace folder ``kind``."""
        folder = self.workspace.folder(kind).resolve()
        self.files.append({"kind": kind, "name": str(Path(path).resolve().relative_to(folder))})
