"""Why an import is refused: every node we cannot map, at once."""

from __future__ import annotations

from graph.validate import Problem
from graph.workflow import WorkflowFormatError


class ImportRefused(WorkflowFormatError):
    """The file is a workflow we recognise, but parts of it have no equivalent here.

    ``problems`` names each node (id, class type) and what is missing, so the user sees
    the whole list instead of a silently different graph."""

    def __init__(self, source: str, problems: list[Problem], action: str = "import") -> None:
        self.source = source
        self.problems = problems
        lines = "; ".join(str(p) for p in problems)
        super().__init__(f"cannot {action} this {source} workflow: {lines}")


class Missing(Exception):
    """Raised by a node converter: this node (or one of its settings) has no equivalent."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
