// Copy/paste of nodes: the selection with the links inside it, pasted under fresh ids.
import type { Edge } from "@xyflow/react";
import type { Schema } from "./types";
import { freshId, makeEdge, type FlowNode } from "./workflow";

export type Clip = { nodes: FlowNode[]; edges: Edge[]; pastes: number };

export function copySelection(nodes: FlowNode[], edges: Edge[]): Clip | null {
  const sel = nodes.filter((n) => n.selected);
  if (!sel.length) return null;
  const ids = new Set(sel.map((n) => n.id));
  return {
    nodes: structuredClone(sel),
    edges: edges.filter((e) => ids.has(e.source) && ids.has(e.target)),
    pastes: 0,
  };
}

/** The nodes after pasting (pasted ones selected, offset per paste) and the new edges. */
export function pasteClip(
  clip: Clip,
  nodes: FlowNode[],
  schema: Schema,
): { nodes: FlowNode[]; edges: Edge[] } {
  clip.pastes += 1;
  const off = 40 * clip.pastes;
  const taken = new Set(nodes.map((n) => n.id));
  const rename: Record<string, string> = {};
  const added: FlowNode[] = clip.nodes.map((n) => {
    const id = freshId(n.data.type, taken);
    taken.add(id);
    rename[n.id] = id;
    const position = { x: n.position.x + off, y: n.position.y + off };
    return { ...structuredClone(n), id, selected: true, position };
  });
  const all = [...nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), ...added];
  const edges = clip.edges.map((e) =>
    makeEdge(schema, all, rename[e.source], e.sourceHandle!, rename[e.target], e.targetHandle!),
  );
  return { nodes: all, edges };
}
