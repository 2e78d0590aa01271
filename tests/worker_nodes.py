"""Extra test nodes for remote workers (``--nodes tests.worker_nodes``): a node that
reads an input-folder file, to prove input files reach a worker by content."""

from __future__ import annotations

from typing import Any

from graph import Choice, Node, choice_source


@choice_source("input_images")
def list_inputs(workspace: Any) -> list[str]:
    return sorted(p.name for p in workspace.input_dir.iterdir() if p.is_file())


class TEchoInput(Node):
    """Copies an input-folder file into the output folder."""

    CATEGORY = "test"
    OUTPUT_NODE = True
    OUTPUTS = {}  # noqa: RUF012
    file: str = Choice("input_images")

    def run(self, ctx: Any, file: str) -> dict[str, Any]:
        path = ctx.workspace.output_dir / f"echo_{ctx.run_id[:12]}_{file}"
        path.write_bytes((ctx.workspace.input_dir / file).read_bytes())
        ctx.record_file("output", path)
        return {}


def echo(file: str) -> dict[str, Any]:
    return {"version": 1, "nodes": {"echo": {"type": "TEchoInput", "inputs": {"file": file}}}}
