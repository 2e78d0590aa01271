"""Bypass and mute: the workflow that actually runs, once node modes are applied.

A node's ``mode`` lives in the workflow (not in ``ui``) because it changes what runs:

- **bypass**: the node does not run; each of its outputs passes on the value of its first
  linked input whose type fits that output (ComfyUI's rule), so bypassing a LoadLoRA hands
  the un-LoRA'd model and CLIP to its readers. An output with no such input has nothing to
  pass: a reader of it is an error.
- **mute**: the node does not run, nor does any node all of whose links come from skipped
  nodes ("what only it feeds"). A node that is still fed by something else keeps running:
  an optional input fed only by skipped nodes becomes unlinked, a required one is an error.

The result is an ordinary workflow without those nodes, readers linked straight to the
passed values, so validation, planning and cache keys need no special case: a bypassed
LoRA gives the same keys (and cached outputs) as the graph without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graph.registry import Registry
from graph.types import can_connect
from graph.validate import Problem
from graph.workflow import NodeEntry, Workflow, as_link


@dataclass
class Modes:
    """The applied modes: the workflow that runs, what was left out, and why not."""

    workflow: Workflow
    bypassed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # muted, and what only they fed
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class _Skipped:
    node: str  # the skipped node the value would have come from
    muted: bool  # muted itself (else skipped for being fed only by skipped nodes)


@dataclass(frozen=True)
class _Nothing:
    node: str  # the bypassed node
    output: str
    reason: str


_Feed = tuple[str, str] | _Skipped | _Nothing


def apply_modes(workflow: Workflow, registry: Registry) -> Modes:
    """The workflow with bypassed and muted nodes taken out (unchanged when all are normal)."""
    nodes = workflow.nodes
    if all(e.mode == "normal" for e in nodes.values()):
        return Modes(workflow)
    bypassed = {nid for nid, e in nodes.items() if e.mode == "bypass"}
    skipped = {nid for nid, e in nodes.items() if e.mode == "mute"}

    def feed(link: tuple[str, str], seen: frozenset[str] = frozenset()) -> _Feed:
        src, out = link
        if src in skipped:
            return _Skipped(src, nodes[src].mode == "mute")
        if src not in bypassed or src in seen:
            return link
        passed = _passed_input(nodes[src], out, registry)
        if isinstance(passed, str):
            return _Nothing(src, out, passed)
        return feed(passed, seen | {src})

    feeds: dict[str, dict[str, _Feed]] = {
        nid: {name: feed(link) for name, link in _links(entry)}
        for nid, entry in nodes.items()
        if nid not in bypassed
    }
    changed = True
    while changed:  # a node fed only by skipped nodes is skipped too, and so on downstream
        changed = False
        for nid, by_input in feeds.items():
            if nid in skipped or not by_input:
                continue
            if all(isinstance(f, _Skipped) for f in by_input.values()):
                skipped.add(nid)
                changed = True
        if changed:
            feeds = {nid: {name: feed(link) for name, link in _links(nodes[nid])} for nid in feeds}
    result = Modes(workflow, sorted(bypassed), sorted(skipped))
    kept: dict[str, NodeEntry] = {}
    for nid, entry in nodes.items():
        if nid in bypassed or nid in skipped:
            continue
        inputs = dict(entry.inputs)
        for name, f in feeds[nid].items():
            if isinstance(f, tuple):
                inputs[name] = {"node": f[0], "output": f[1]}
                continue
            del inputs[name]
            problem = _feed_problem(nid, name, entry, f, registry)
            if problem is not None:
                result.problems.append(problem)
        kept[nid] = entry.model_copy(update={"inputs": inputs})
    result.workflow = workflow.model_copy(update={"nodes": kept})
    return result


def _links(entry: NodeEntry) -> list[tuple[str, tuple[str, str]]]:
    return [(name, link) for name, v in entry.inputs.items() if (link := as_link(v)) is not None]


def _passed_input(entry: NodeEntry, output: str, registry: Registry) -> tuple[str, str] | str:
    """The link a bypassed node passes to ``output``: its first linked input whose type
    fits the output's; otherwise why there is none."""
    spec = registry.nodes.get(entry.type)
    if spec is None:
        return f"its type {entry.type!r} is unknown"
    out_type = spec.outputs.get(output)
    if out_type is None:
        return f"{entry.type} has no output {output!r}"
    for name, inp in spec.inputs.items():
        link = as_link(entry.inputs.get(name))
        kind = inp.link_type
        if link is not None and kind is not None and can_connect(kind, out_type):
            return link
    return f"it has no linked {out_type.name} input to pass to its output {output!r}"


def _feed_problem(
    nid: str, name: str, entry: NodeEntry, feed: _Skipped | _Nothing, registry: Registry
) -> Problem | None:
    """A reader's input that lost its link: an error unless the input is optional."""
    if isinstance(feed, _Nothing):
        return Problem(
            nid,
            name,
            "bypass_passes_nothing",
            f"{name} reads {feed.node}.{feed.output}, but {feed.node} is bypassed and "
            f"{feed.reason}",
        )
    spec = registry.nodes.get(entry.type)
    inp = spec.inputs.get(name) if spec is not None else None
    if inp is not None and not inp.required:
        return None
    why = "muted" if feed.muted else "skipped (it is fed only by muted nodes)"
    return Problem(
        nid,
        name,
        "fed_by_muted",
        f"required input {name} is fed only by node {feed.node}, which is {why}; mute this "
        "node too, or link the input elsewhere",
    )
