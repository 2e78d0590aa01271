"""ComfyUI's UI (canvas) format -> its API format plus the layout.

The UI format stores widget values by position (``widgets_values``), links as
``[id, from_node, from_slot, to_node, to_slot, type]`` (or objects in schema 1), and
virtual nodes the API format never sees: Reroute (a pass-through), PrimitiveNode (a value
pushed into the widgets it feeds), Note. Mode 2 (muted) and mode 4 (bypassed) nodes of a
type we convert keep their mode (``_mode`` in the prompt, our node's ``mode``), so they
can be switched back on; others are resolved as ComfyUI's own frontend does in
``graphToPrompt``: muted ones left out, links into them dropped, bypassed ones passing each
output through to their first input of the same type.
"""

from __future__ import annotations

from typing import Any

from graph.validate import Problem
from importers.comfy_api import Layout
from importers.comfy_nodes import CONVERTERS
from importers.comfy_widgets import CONTROL, WIDGETS
from importers.errors import ImportRefused

MUTED, BYPASSED = 2, 4
OUR_MODES = {MUTED: "mute", BYPASSED: "bypass"}
VIRTUAL = {"Note", "MarkdownNote", "PrimitiveNode", "Reroute"}


def looks_like_ui(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("nodes"), list)
        and isinstance(data.get("links", []), list)
    )


def _links(data: dict[str, Any]) -> dict[int, tuple[int, int, int, int, str]]:
    out = {}
    for link in data.get("links") or []:
        if isinstance(link, list) and len(link) >= 5:
            lid, a, a_slot, b, b_slot = link[:5]
            kind = link[5] if len(link) > 5 else ""
        elif isinstance(link, dict):
            lid, a, a_slot = link.get("id"), link.get("origin_id"), link.get("origin_slot")
            b, b_slot, kind = link.get("target_id"), link.get("target_slot"), link.get("type", "")
        else:
            continue
        out[int(lid)] = (int(a), int(a_slot), int(b), int(b_slot), str(kind))
    return out


def _xywh(node: dict[str, Any]) -> tuple[float, float, float, float]:
    def pair(v: Any, default: float) -> tuple[float, float]:
        if isinstance(v, dict):
            v = [v.get("0", default), v.get("1", default)]
        if isinstance(v, (list, tuple)) and len(v) >= 2:
            return float(v[0]), float(v[1])
        return default, default

    x, y = pair(node.get("pos"), 0.0)
    w, h = pair(node.get("size"), 0.0)
    return x, y, w, h


def _widget_inputs(node: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Widget values by name (from their position), or an error."""
    values = node.get("widgets_values") or []
    if isinstance(values, dict):
        return {k: v for k, v in values.items() if k != CONTROL}, None
    names = WIDGETS.get(node.get("type", ""))
    if names is None:
        return {}, None  # unknown type: the API converter refuses it by name
    if len(values) == len(names) - names.count(CONTROL):
        names = [n for n in names if n != CONTROL]  # saved without the control entry
    if len(values) < len([n for n in names if n not in (CONTROL, "upload")]):
        return {}, f"widgets_values has {len(values)} entries, expected {len(names)}"
    out = {n: v for n, v in zip(names, values, strict=False) if n not in (CONTROL, "upload")}
    return out, None


def _kept_mode(node: dict[str, Any]) -> str | None:
    """Our mode for a muted or bypassed node we can convert (None: normal, or resolved
    away as ComfyUI does)."""
    mode = OUR_MODES.get(node.get("mode", 0))
    return mode if mode and node.get("type") in CONVERTERS else None


def convert_ui(data: dict[str, Any]) -> tuple[dict[str, Any], Layout]:
    """(API-format prompt, layout by node id); ImportRefused for what cannot be read."""
    if (data.get("definitions") or {}).get("subgraphs"):
        raise ImportRefused(
            "ComfyUI",
            [Problem(None, None, "no_equivalent", "subgraphs have no equivalent; unpack them")],
        )
    nodes = {int(n["id"]): n for n in data["nodes"] if isinstance(n, dict) and "id" in n}
    links = _links(data)
    problems: list[Problem] = []

    def source(link_id: int | None, depth: int = 0) -> tuple[str, Any] | None:
        """Where a link really comes from: ("link", [id, slot]) or ("value", literal)."""
        if link_id is None or link_id not in links or depth > 100:
            return None
        a, a_slot, _b, _b_slot, kind = links[link_id]
        node = nodes.get(a)
        if node is None:
            return None
        ntype, mode = node.get("type"), node.get("mode", 0)
        if ntype == "PrimitiveNode":
            values = node.get("widgets_values") or [None]
            return ("value", values[0])
        if ntype == "Reroute":
            ins = node.get("inputs") or [{}]
            return source(ins[0].get("link"), depth + 1)
        if _kept_mode(node):
            return ("link", [str(a), a_slot])
        if mode == MUTED:
            return None
        if mode == BYPASSED:
            ins = node.get("inputs") or []
            same = [i for i in ins if i.get("type") == kind and i.get("link") is not None]
            first = ins[a_slot] if a_slot < len(ins) and ins[a_slot] in same else None
            chosen = first or (same[0] if same else None)
            return source(chosen.get("link"), depth + 1) if chosen else None
        return ("link", [str(a), a_slot])

    prompt: dict[str, Any] = {}
    layout: Layout = {}
    for nid, node in nodes.items():
        ntype = node.get("type")
        kept = _kept_mode(node)
        if (
            not isinstance(ntype, str)
            or ntype in VIRTUAL
            or (node.get("mode", 0) in (MUTED, BYPASSED) and not kept)
        ):
            continue
        inputs, error = _widget_inputs(node)
        if error:
            problems.append(Problem(str(nid), None, "bad_format", f"{ntype}: {error}"))
        for slot in node.get("inputs") or []:
            name = slot.get("name") or (slot.get("widget") or {}).get("name")
            if not name:
                continue
            found = source(slot.get("link"))
            if found is None:
                continue
            inputs[name] = found[1]
        prompt[str(nid)] = {"class_type": ntype, "inputs": inputs}
        if kept:
            prompt[str(nid)]["_mode"] = kept
        layout[str(nid)] = _xywh(node)
    if problems:
        raise ImportRefused("ComfyUI", problems)
    return prompt, layout


def viewport(data: dict[str, Any]) -> dict[str, float] | None:
    """LiteGraph's ``extra.ds`` (offset in canvas units, scale) as a React Flow viewport."""
    ds = (data.get("extra") or {}).get("ds")
    if not isinstance(ds, dict):
        return None
    try:
        scale = float(ds.get("scale", 1))
        ox, oy = (float(v) for v in ds.get("offset", [0, 0])[:2])
    except (TypeError, ValueError):
        return None
    return {"x": ox * scale, "y": oy * scale, "zoom": scale}
