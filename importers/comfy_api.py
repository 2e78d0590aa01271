"""ComfyUI's API format (``{id: {"class_type", "inputs"}}``) -> our workflow document."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from graph.validate import Problem
from importers.comfy_nodes import (
    CONVERTERS,
    META_KEY,
    NO_EQUIVALENT,
    ComfyNode,
    ComfyRef,
    Context,
    Output,
    is_link,
)
from importers.comfy_widgets import PRIMITIVES
from importers.errors import ImportRefused

# (x, y, width, height) per ComfyUI node id, from the UI format
Layout = dict[str, tuple[float, float, float, float]]
SPLIT_STRETCH, SPLIT_OFFSET = 1.6, 360  # room for each further node beside a split one


def looks_like_api(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(v, dict) and isinstance(v.get("class_type"), str) for v in data.values())
    )


def _order(node_id: str) -> tuple[int, str]:
    m = re.fullmatch(r"\d+", node_id)
    return (int(node_id), "") if m else (1 << 62, node_id)


def _inline_primitives(nodes: dict[str, dict[str, Any]]) -> None:
    """Links to primitive-value nodes become the value itself (we have no such node)."""
    for node in nodes.values():
        inputs = node.setdefault("inputs", {})
        for name, v in list(inputs.items()):
            if is_link(v) and nodes.get(str(v[0]), {}).get("class_type") in PRIMITIVES:
                inputs[name] = nodes[str(v[0])].get("inputs", {}).get("value")


def convert_api(
    prompt: dict[str, Any], known_types: set[str] | None = None, layout: Layout | None = None
) -> tuple[dict[str, Any], list[str]]:
    """(our workflow document, warnings); ImportRefused listing every unmappable node."""
    nodes = {
        str(k): {"class_type": v["class_type"], "inputs": dict(v.get("inputs") or {})}
        for k, v in prompt.items()
    }
    ours_extra = {
        str(k): v["_meta"][META_KEY]
        for k, v in prompt.items()
        if isinstance(v.get("_meta"), dict) and isinstance(v["_meta"].get(META_KEY), dict)
    }
    modes = {str(k): v["_mode"] for k, v in prompt.items() if v.get("_mode") in ("bypass", "mute")}
    _inline_primitives(nodes)
    ctx = Context(taken=set(nodes))
    problems: list[Problem] = []
    ours: dict[str, dict[str, Any]] = {}
    outputs: dict[str, list[Output]] = {}
    origin: dict[str, str] = {}
    for cid in sorted(nodes, key=_order):
        ctype = nodes[cid]["class_type"]
        if ctype in PRIMITIVES:
            continue
        convert = CONVERTERS.get(ctype)
        if convert is None:
            what = NO_EQUIVALENT.get(ctype, "no node of this type exists here")
            problems.append(Problem(cid, None, "no_equivalent", f"{ctype}: {what}"))
            continue
        n = ComfyNode(cid, ctype, nodes[cid]["inputs"])
        made, outs = convert(n, ctx)
        problems += [Problem(cid, f, "no_equivalent", f"{ctype}: {m}") for f, m in n.problems]
        for our_id in made:
            origin[our_id] = cid
            if cid in modes:  # a muted or bypassed ComfyUI node (comfy_ui.py)
                made[our_id]["mode"] = modes[cid]
        if cid in made and cid in ours_extra:  # written by our export: our own settings
            made[cid]["inputs"].update(ours_extra[cid])
        ours.update(made)
        outputs[cid] = outs

    def resolve(ref: ComfyRef) -> dict[str, str] | None:
        seen: set[ComfyRef] = set()
        current: Output = ref
        while isinstance(current, ComfyRef):
            if current in seen or current.node not in nodes:
                if current.node not in nodes:
                    problems.append(
                        Problem(None, None, "bad_link", f"a link points to missing node {ref.node}")
                    )
                return None
            seen.add(current)
            outs = outputs.get(current.node)
            if outs is None:
                return None  # a refused node, already reported
            if current.index >= len(outs):
                ctype = nodes[current.node]["class_type"]
                missing = f"{ctype} has no output {current.index}"
                problems.append(Problem(current.node, None, "bad_link", missing))
                return None
            here, current = current, outs[current.index]
            if isinstance(current, str):
                ctype = nodes[here.node]["class_type"]
                problems.append(
                    Problem(here.node, None, "no_equivalent", f"{ctype}: {current} (it is used)")
                )
                return None
        return {"node": current[0], "output": current[1]}

    for node in ours.values():
        for name, v in node["inputs"].items():
            if isinstance(v, ComfyRef):
                node["inputs"][name] = resolve(v)
    if known_types is not None:
        for our_id, node in ours.items():
            if node["type"] not in known_types:
                cid = origin[our_id]
                problems.append(
                    Problem(
                        cid,
                        None,
                        "no_equivalent",
                        f"{nodes[cid]['class_type']}: needs node type {node['type']}, "
                        "which this engine does not have",
                    )
                )
    if problems:
        raise ImportRefused("ComfyUI", _unique(problems))
    doc: dict[str, Any] = {"version": 1, "nodes": ours}
    if layout:
        doc["ui"] = {"positions": _positions(ours, origin, layout)}
    return doc, list(dict.fromkeys(ctx.warnings))


def _positions(
    ours: dict[str, Any], origin: dict[str, str], layout: Layout
) -> dict[str, dict[str, int]]:
    """Each node at its ComfyUI position. Where one ComfyUI node became several of ours (the
    Tokenize before EncodeText, and a SizeConditioning after it), each goes right of the
    previous and the whole layout is stretched sideways to make room (1.6x for two, 2.56x for
    three), so nothing overlaps and the arrangement stays."""
    out: dict[str, dict[str, int]] = {}
    count: dict[str, int] = {}
    most = max(Counter(origin.values()).values(), default=1)  # ours per ComfyUI node
    stretch = SPLIT_STRETCH ** (most - 1)
    for our_id in ours:
        cid = origin[our_id]
        if cid not in layout:
            continue
        x, y, _w, _h = layout[cid]
        k = count.get(cid, 0)
        count[cid] = k + 1
        out[our_id] = {"x": round(x * stretch + k * SPLIT_OFFSET), "y": round(y)}
    return out


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
