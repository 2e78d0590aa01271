// The canvas side of node modes (bypass, mute: graph/modes.py) and of widgets converted to
// inputs (a literal input fed by a link of its value type, e.g. from a Seed node).
import type { InputSchema, NodeMode, NodeSchema, Schema } from "./types";
import type { FlowNode } from "./workflow";

/** A widget shown as a link input (its name is in the node's `ui.inputs`). */
export function isConverted(node: Pick<FlowNode, "data">, inp: InputSchema): boolean {
  return !inp.link_only && !!inp.link_type && (node.data.ui?.inputs ?? []).includes(inp.name);
}

/** Widgets that can become inputs: literals with a value socket type. */
export function convertibleInputs(spec: NodeSchema | undefined): InputSchema[] {
  return (spec?.inputs ?? []).filter((i) => !i.link_only && i.link_type);
}

/** The source types a link into `handle` of `node` may carry (the server's rule, as given in
 * the schema): a link input's `accepts`, or a converted widget's value type. */
export function acceptedTypes(schema: Schema, node: FlowNode | undefined, handle: string): string[] {
  const inp = node && schema.nodes[node.data.type]?.inputs.find((i) => i.name === handle);
  if (!node || !inp) return [];
  if (inp.link_only) return inp.accepts ?? [];
  if (!isConverted(node, inp) || !inp.link_type) return [];
  return schema.compatibility?.[inp.link_type] ?? [inp.link_type];
}

/** Ctrl+B / Ctrl+M on a selection: set the mode on all, or clear it when all have it. */
export function toggleModes(nodes: FlowNode[], ids: Set<string>, mode: NodeMode): FlowNode[] {
  const chosen = nodes.filter((n) => ids.has(n.id));
  const clear = chosen.length > 0 && chosen.every((n) => n.data.mode === mode);
  return nodes.map((n) => {
    if (!ids.has(n.id)) return n;
    const data = { ...n.data };
    if (clear) delete data.mode;
    else data.mode = mode;
    return { ...n, data };
  });
}

export const MODE_LABEL: Record<NodeMode, string> = { bypass: "bypassed", mute: "muted" };
