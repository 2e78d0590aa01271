"""Planning: keep what the outputs need, order it, key it, and split it into
nodes to execute and nodes served from the cache."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from graph.cache import CacheEntry, OutputCache
from graph.validate import Checked, CheckedNode


@dataclass
class Plan:
    order: list[str]  # every node the outputs depend on, topologically sorted
    keys: dict[Any, str]  # node id -> key; (node id, output) -> that output's own key
    to_run: list[str]  # in execution order
    cached: list[str]
    hits: dict[str, CacheEntry] = field(default_factory=dict)  # pinned for this run


def needed_nodes(checked: Checked) -> list[str]:
    """Nodes that feed an output node, in the checked deterministic topological order
    (found once per checked workflow)."""
    needed = checked.derived.get("needed")
    if needed is None:
        needed = checked.derived["needed"] = _needed_nodes(checked)
    return needed


def _needed_nodes(checked: Checked) -> list[str]:
    nodes = checked.nodes
    outputs = [nid for nid in checked.order if nodes[nid].spec.output_node]
    keep: set[str] = set(outputs)
    for nid in outputs:
        keep |= nx.ancestors(checked.graph, nid)
    if len(keep) == len(checked.order):
        return list(checked.order)
    return [nid for nid in checked.order if nid in keep]


def node_key(node: CheckedNode, keys: dict[Any, str], fingerprint: str | None) -> str:
    """Hash of type, version, literals, upstream keys and output names, fingerprint.

    Literals are JSON values normalised by validation (fields in declaration
    order), so their repr is canonical and cheaper than JSON encoding. ``keys`` maps a
    node id to its key, or ``(node id, output)`` to that output's own key where the
    upstream node declares which inputs each output depends on (`Node.OUTPUT_INPUTS`)."""
    spec = node.spec
    if not spec.cacheable:
        return "nocache:" + uuid.uuid4().hex
    upstream = sorted(
        (name, keys.get((src, out), keys[src]), out) for name, (src, out) in node.links.items()
    )
    doc = (spec.type, spec.version, node.literals, upstream, fingerprint)
    return hashlib.sha1(repr(doc).encode()).hexdigest()


def output_keys(node: CheckedNode, keys: dict[Any, str], fingerprint: str | None) -> None:
    """Give each output of a node with `Node.OUTPUT_INPUTS` its own key, hashed from the
    inputs it depends on only: a LoRA's model strength does not re-key its CLIP output,
    so text encoding downstream stays cached."""
    spec = node.spec
    if not spec.output_inputs or not spec.cacheable:
        return
    for out, names in spec.output_inputs.items():
        literals = [(n, node.literals[n]) for n in names if n in node.literals]
        upstream = sorted(
            (n, keys.get((src, o), keys[src]), o)
            for n, (src, o) in node.links.items()
            if n in names
        )
        doc = (spec.type, spec.version, out, literals, upstream, fingerprint)
        keys[(node.id, out)] = hashlib.sha1(repr(doc).encode()).hexdigest()


def make_plan(
    checked: Checked,
    cache: OutputCache,
    fingerprint: Callable[[CheckedNode], str | None],
) -> Plan:
    """Key every needed node (fingerprints included), then find what must execute."""
    nodes = checked.nodes
    order = needed_nodes(checked)
    keys = _keys(checked, order, [fingerprint(nodes[nid]) for nid in order])
    # Walk up from the outputs; a cache hit needs none of its ancestors.
    hits: dict[str, CacheEntry] = {}
    run: set[str] = set()
    stack = [nid for nid in order if nodes[nid].spec.output_node]
    seen: set[str] = set()
    while stack:
        nid = stack.pop()
        if nid in seen:
            continue
        seen.add(nid)
        entry = cache.get(keys[nid])
        if entry is not None:
            hits[nid] = entry
            continue
        run.add(nid)
        stack.extend(src for src, _ in nodes[nid].links.values())
    to_run = [nid for nid in order if nid in run]
    cached = [nid for nid in order if nid not in run]
    return Plan(order, keys, to_run, cached, hits)


def _keys(checked: Checked, order: list[str], fingerprints: list[str | None]) -> dict[Any, str]:
    """Every needed node's keys; the same checked workflow with the same fingerprints has
    the same keys, so they are kept (unless a node is not cacheable: its key is new each
    time). Read only once made."""
    kept = checked.derived.get("keys")
    if kept is not None and kept[0] == fingerprints:
        return kept[1]
    nodes = checked.nodes
    keys: dict[Any, str] = {}
    for nid, fp in zip(order, fingerprints, strict=True):
        keys[nid] = node_key(nodes[nid], keys, fp)
        output_keys(nodes[nid], keys, fp)
    if all(nodes[nid].spec.cacheable for nid in order):
        checked.derived["keys"] = (fingerprints, keys)
    return keys


def consumers(nodes: dict[str, CheckedNode], to_run: list[str]) -> dict[str, int]:
    """How many executing nodes read each node's outputs (to free values early)."""
    counts: dict[str, int] = {}
    for nid in to_run:
        for src, _ in nodes[nid].links.values():
            counts[src] = counts.get(src, 0) + 1
    return counts


def dumps_inputs(node: CheckedNode) -> dict[str, Any]:
    """A node's inputs for error reports: literals as given, links as node.output."""
    data: dict[str, Any] = dict(node.literals)
    for name, (src, out) in node.links.items():
        data[name] = f"<{src}.{out}>"
    return data
