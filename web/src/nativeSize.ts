// New nodes with a width and height (EmptyLatent) start at the native size of the checkpoint
// selected in the graph: the server says each checkpoint's size (GET /api/models
// `native_sizes`), so a user's SDXL file gives 1024, an SD 1.x file 512, the demo model 64.
// Generic: "the checkpoint" is the value of any literal input fed by the `checkpoints` choice
// list (LoadCheckpoint's name); no node type is named here.
import type { InputSchema, NodeSchema, Schema, Widget } from "./types";
import type { FlowNode } from "./workflow";

/** The checkpoint chosen in the graph: on a selected node first, else the first one. */
export function selectedCheckpoint(nodes: FlowNode[], schema: Schema): string | null {
  const ordered = [...nodes.filter((n) => n.selected), ...nodes.filter((n) => !n.selected)];
  for (const n of ordered) {
    const inp = schema.nodes[n.data.type]?.inputs.find((i) => i.widget?.source === "checkpoints");
    const value = inp && n.data.inputs[inp.name];
    if (typeof value === "string") return value;
  }
  return null;
}

function fit(inp: InputSchema, size: number): number {
  const w: Widget = inp.widget ?? { kind: "number" };
  const step = typeof w.step === "number" && w.step > 0 ? w.step : 1;
  let v = Math.round(size / step) * step;
  if (typeof w.min === "number") v = Math.max(v, w.min);
  if (typeof w.max === "number") v = Math.min(v, w.max);
  return v;
}

/** `preset` with width/height set to the selected checkpoint's native size, when the node
 * has both as literal inputs and the size is known. */
export function withNativeSize(
  spec: NodeSchema,
  preset: Record<string, unknown> | undefined,
  nodes: FlowNode[],
  schema: Schema,
  sizes: Record<string, number>,
): Record<string, unknown> | undefined {
  const width = spec.inputs.find((i) => i.name === "width" && !i.link_only);
  const height = spec.inputs.find((i) => i.name === "height" && !i.link_only);
  const name = width && height ? selectedCheckpoint(nodes, schema) : null;
  const size = name ? sizes[name] : undefined;
  if (!width || !height || !size) return preset;
  return { ...preset, width: fit(width, size), height: fit(height, size) };
}
