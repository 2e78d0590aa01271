"""A readable "parameters" text for saved images, in the A1111 layout that image viewers
and other tools already parse:

    a red circle
    Negative prompt: blurry
    Steps: 20, Sampler: euler, Schedule type: normal, CFG scale: 7.5, Seed: 42, Size: 64x64, ...

It is read off the workflow being run (after overrides), walking up the links from the
image-saving node to the nearest Sample node, then from its inputs to the prompt text
and the checkpoint name.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from graph.workflow import as_link


def _nodes(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nodes = workflow.get("nodes") if isinstance(workflow, dict) else None
    return nodes if isinstance(nodes, dict) else {}


def _upstream(
    nodes: dict[str, dict[str, Any]], start: str, inputs: list[str] | None, node_type: str
) -> dict[str, Any] | None:
    """Nearest node of ``node_type`` above ``start`` (through the named inputs first)."""
    first = nodes.get(start, {}).get("inputs", {})
    queue: deque[str] = deque()
    for name, value in first.items():
        link = as_link(value)
        if link and (inputs is None or name in inputs):
            queue.append(link[0])
    seen: set[str] = set()
    while queue:
        nid = queue.popleft()
        if nid in seen or nid not in nodes:
            continue
        seen.add(nid)
        node = nodes[nid]
        if node.get("type") == node_type:
            return node
        for value in node.get("inputs", {}).values():
            link = as_link(value)
            if link:
                queue.append(link[0])
    return None


def _find_in(
    nodes: dict[str, dict[str, Any]], sample_id: str, name: str, node_type: str, field: str
) -> Any:
    node = _upstream(nodes, sample_id, [name], node_type)
    if node is None:
        return None
    value = node.get("inputs", {}).get(field)
    return value if isinstance(value, (str, int, float)) and as_link(value) is None else None


def describe(workflow: dict[str, Any], node_id: str, width: int, height: int) -> str:
    """The parameters text for an image saved by ``node_id``."""
    nodes = _nodes(workflow)
    size = f"Size: {width}x{height}"
    sample_id = None
    sample = _upstream(nodes, node_id, None, "Sample")
    if sample is not None:
        sample_id = next(k for k, v in nodes.items() if v is sample)
    if sample_id is None:
        return size
    from nodes.sample import Sample  # the defaults of inputs a workflow leaves out

    inputs = {n: i.default for n, i in Sample.spec.inputs.items() if i.socket is None}
    inputs.update(sample.get("inputs", {}))
    prompt = _find_in(nodes, sample_id, "positive", "Tokenize", "text") or ""
    negative = _find_in(nodes, sample_id, "negative", "Tokenize", "text") or ""
    model = _find_in(nodes, sample_id, "model", "LoadCheckpoint", "name")
    fields = [
        ("Steps", inputs["steps"]),
        ("Sampler", inputs["sampler"]),
        ("Schedule type", inputs["schedule"]),
        ("CFG scale", inputs["cfg"]),
        ("Seed", inputs["seed"]),
    ]
    parts = [f"{k}: {v}" for k, v in fields if as_link(v) is None]
    parts.append(size)
    if model is not None:
        parts.append(f"Model: {model}")
    denoise = inputs["denoise"]
    if isinstance(denoise, (int, float)) and denoise < 1.0:
        parts.append(f"Denoising strength: {denoise}")
    if _upstream(nodes, sample_id, ["latent"], "InvertLatent") is not None:
        parts.append("Start: DDIM-inverted latent")
    lines = [str(prompt)]
    if negative:
        lines.append(f"Negative prompt: {negative}")
    lines.append(", ".join(parts))
    return "\n".join(lines)
