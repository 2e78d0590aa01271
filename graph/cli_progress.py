"""Progress bars for the headless runner, driven by the engine's events."""

from __future__ import annotations

from typing import Any

from graph.events import Event, NodeCached, NodeFinished, NodeStarted, Progress, RunStarted


class ProgressPrinter:
    """An event sink drawing a node bar and a step bar with tqdm on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.nodes: Any = None
        self.steps: Any = None

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if isinstance(event, RunStarted):
            self.nodes = tqdm(total=len(event.to_run), desc="nodes", unit="node", leave=False)
        elif isinstance(event, NodeStarted) and self.nodes is not None:
            self.nodes.set_postfix_str(f"{event.node_id} ({event.node_type})")
        elif isinstance(event, Progress) and event.total:
            if self.steps is None:
                self.steps = tqdm(total=event.total, desc=event.node_id, unit="step", leave=False)
            self.steps.n = event.step or 0
            self.steps.refresh()
        elif isinstance(event, (NodeFinished, NodeCached)):
            if self.steps is not None:
                self.steps.close()
                self.steps = None
            if isinstance(event, NodeFinished) and self.nodes is not None:
                self.nodes.update(1)

    def close(self) -> None:
        for bar in (self.steps, self.nodes):
            if bar is not None:
                bar.close()
        self.steps = self.nodes = None
