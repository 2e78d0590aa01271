"""Identical resubmissions skip the pure part of accepting a job.

A client that runs the same workflow again (a fully cached job: changed nothing, or
changed it back) sends the same bytes. Decoding them, converting and migrating the
workflow, validating it and rendering its stored form gave the same results last time
and would again, unless something outside the body changed. So the last few accepted
bodies are remembered by their exact bytes, with those results, and reused only while
what they depend on outside the body is unchanged:

- the model files the workflow names: their lookup (`routes_import.with_models`) runs
  for every job; the remembered validation is reused only when it recorded the same
  models (same names, sizes, hashes);
- the folder listings validation read (`Engine.still_valid`).

Budgets (they read input images) and everything the store and queue do run every time.
Only bodies accepted without error are remembered, and only small ones (the loop's own
path: `routes_jobs.INLINE_BODY_BYTES`). Everything remembered is shared by the jobs
that reuse it and never modified.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # routes_import reaches service.state, which holds a memo
    from graph.validate import Checked
    from service.routes_import import Converted, Imported


@dataclass(frozen=True)
class Accepted:
    """What accepting one body produced (read only)."""

    body: dict[str, Any]  # the decoded request
    converted: Converted
    imported: Imported  # `converted` with the model files looked up
    checked: Checked  # the engine's check of imported.workflow (no problems)
    stored: dict[str, Any]  # imported.workflow as the store keeps it
    stored_json: str  # ... and as its database column holds it

    def still_holds(self, imported: Imported, engine: Any) -> bool:
        """Whether the validation and stored form remembered here are the ones
        ``imported`` (this job's model lookup of the same body) would give now."""
        return imported.workflow.models == self.imported.workflow.models and engine.still_valid(
            self.checked
        )


class SubmissionMemo:
    """The last ``size`` accepted bodies of at most ``max_bytes``, by their bytes."""

    def __init__(self, size: int = 32, max_bytes: int = 64 * 1024) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, Accepted] = OrderedDict()
        self._lock = threading.Lock()  # bodies are accepted on the loop and in threads

    def get(self, raw: bytes) -> Accepted | None:
        if len(raw) > self.max_bytes:
            return None
        with self._lock:
            entry = self._entries.get(raw)
            if entry is not None:
                self._entries.move_to_end(raw)
            return entry

    def put(self, raw: bytes, accepted: Accepted) -> None:
        if len(raw) > self.max_bytes or self.size <= 0:
            return
        with self._lock:
            self._entries[raw] = accepted
            self._entries.move_to_end(raw)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
