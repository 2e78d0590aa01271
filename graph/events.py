"""The typed event stream of a run, shared by the CLI and the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class Event:
    kind: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        # one level of copying, not dataclasses.asdict's deep copy: every field is a
        # JSON value, and asdict cost more than the rest of a cached job's events
        data = {k: _copied(v) for k, v in self.__dict__.items()}
        data["type"] = self.kind
        return data


def _copied(value: Any) -> Any:
    return value.copy() if type(value) in (list, dict) else value


@dataclass
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run_id: str
    to_run: list[str]
    cached: list[str]


@dataclass
class NodeStarted(Event):
    kind: ClassVar[str] = "node_started"
    run_id: str
    node_id: str
    node_type: str


@dataclass
class Progress(Event):
    """Step progress of a running node; ``preview`` is an image object (PIL) or None."""

    kind: ClassVar[str] = "progress"
    run_id: str
    node_id: str
    fraction: float
    step: int | None = None
    total: int | None = None
    preview: Any = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()  # the preview image is sent apart (service/messages.py)
        del data["preview"]
        return data


@dataclass
class NodeFinished(Event):
    kind: ClassVar[str] = "node_finished"
    run_id: str
    node_id: str
    node_type: str
    seconds: float
    files: list[dict[str, str]]
    warnings: list[str] = field(default_factory=list)  # ctx.warn(): ran, but look here


@dataclass
class NodeCached(Event):
    kind: ClassVar[str] = "node_cached"
    run_id: str
    node_id: str
    node_type: str
    files: list[dict[str, str]]


@dataclass
class RunError(Event):
    kind: ClassVar[str] = "error"
    run_id: str
    node_id: str | None
    node_type: str | None
    message: str
    error_type: str
    traceback: str
    inputs: dict[str, Any]
    code: str | None = None  # a kind of failure clients handle, e.g. "out_of_memory"
    hint: str | None = None  # what the user can do about it

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        return {k: v for k, v in data.items() if v is not None or k not in ("code", "hint")}


@dataclass
class RunFinished(Event):
    """The last event of every run; status is ok, error or interrupted."""

    kind: ClassVar[str] = "run_finished"
    run_id: str
    status: str
    seconds: float
