// Conversion between the workflow file format (the only stored format) and the
// React Flow view of it. React Flow state is never saved as such.
import type { Edge, Node, Viewport } from "@xyflow/react";
import { readReroutes } from "./reroutes";
import { asLink, type InputSchema, type NodeMode, type NodeSchema, type Schema, type Workflow } from "./types";

export type NodeData = {
  /** The node type name from the workflow (may be unknown to the server). */
  type: string;
  /** Literal input values; links live in the edges. */
  inputs: Record<string, unknown>;
  /** Per seed input: randomize after each run (default on). */
  seedControl: Record<string, boolean>;
  /** Link inputs/outputs referenced by the file but absent from the schema (or unknown type). */
  extraInputs: string[];
  extraOutputs: string[];
  /** Layout-only look, saved under `ui.nodes`: a title, a header colour, collapsed. */
  ui?: NodeUi;
  /** Bypassed or muted (saved in the node entry: it changes what runs); absent: normal. */
  mode?: NodeMode;
};

/** `inputs`: widgets shown as link inputs (converted), so a primitive node can feed them. */
export type NodeUi = { title?: string; color?: string; collapsed?: boolean; inputs?: string[] };

function cleanUi(u: unknown): NodeUi | undefined {
  if (!u || typeof u !== "object") return undefined;
  const v = u as Record<string, unknown>;
  const out: NodeUi = {};
  if (typeof v.title === "string" && v.title.trim()) out.title = v.title;
  if (typeof v.color === "string" && /^#[0-9a-fA-F]{6}$/.test(v.color)) out.color = v.color;
  if (v.collapsed === true) out.collapsed = true;
  if (Array.isArray(v.inputs)) {
    const names = v.inputs.filter((n): n is string => typeof n === "string");
    if (names.length) out.inputs = [...new Set(names)];
  }
  return Object.keys(out).length ? out : undefined;
}

export type FlowNode = Node<NodeData, "graph">;

export const NODE_WIDTH = 260;

/** The value a literal input starts with when a node is added. */
export function initialValue(inp: InputSchema): unknown {
  if (inp.default !== undefined && inp.default !== null) return inp.default;
  const w = inp.widget;
  if (!w) return inp.default ?? null;
  switch (w.kind) {
    case "select":
    case "model":
      return w.choices && w.choices.length > 0 ? w.choices[0] : "";
    case "toggle":
      return false;
    case "number":
    case "seed":
    case "slider":
      return typeof w.min === "number" ? w.min : 0;
    default:
      return "";
  }
}

export function literalInputs(spec: NodeSchema): InputSchema[] {
  return spec.inputs.filter((i) => !i.link_only);
}

export function linkInputs(spec: NodeSchema): InputSchema[] {
  return spec.inputs.filter((i) => i.link_only);
}

export function outputType(schema: Schema, node: FlowNode | undefined, output: string | null) {
  if (!node || output == null) return null;
  const spec = schema.nodes[node.data.type];
  return spec?.outputs.find((o) => o.name === output)?.type ?? null;
}

export function typeColor(schema: Schema, type: string | null | undefined): string {
  return (type && schema.types[type]?.color) || "#9ca3af";
}

export function edgeId(source: string, output: string, target: string, input: string): string {
  return `${source}.${output}->${target}.${input}`;
}

export function makeEdge(
  schema: Schema,
  nodes: FlowNode[],
  source: string,
  output: string,
  target: string,
  input: string,
): Edge {
  const src = nodes.find((n) => n.id === source);
  const color = typeColor(schema, outputType(schema, src, output));
  return {
    id: edgeId(source, output, target, input),
    source,
    sourceHandle: output,
    target,
    targetHandle: input,
    style: { stroke: color, strokeWidth: 2 },
  };
}

/** Columns by longest path from the sources, for files without positions. */
function autoLayout(doc: Workflow): Record<string, { x: number; y: number }> {
  const ids = Object.keys(doc.nodes);
  const depth: Record<string, number> = {};
  const visit = (id: string, seen: Set<string>): number => {
    if (depth[id] !== undefined) return depth[id];
    if (seen.has(id)) return 0;
    seen.add(id);
    let d = 0;
    for (const v of Object.values(doc.nodes[id]?.inputs ?? {})) {
      const l = asLink(v);
      if (l && doc.nodes[l.node]) d = Math.max(d, visit(l.node, seen) + 1);
    }
    depth[id] = d;
    return d;
  };
  const rows: Record<number, number> = {};
  const out: Record<string, { x: number; y: number }> = {};
  for (const id of ids) {
    const d = visit(id, new Set());
    const r = rows[d] ?? 0;
    rows[d] = r + 1;
    out[id] = { x: d * (NODE_WIDTH + 60), y: r * 260 };
  }
  return out;
}

/** A new node's data; `preset` values (literals of the same type in the default workflow)
 * win over schema defaults where the input still offers them. */
export function newNodeData(spec: NodeSchema, preset?: Record<string, unknown>): NodeData {
  const inputs: Record<string, unknown> = {};
  const seedControl: Record<string, boolean> = {};
  for (const inp of literalInputs(spec)) {
    const p = preset?.[inp.name];
    const usable =
      p !== undefined && !asLink(p) && (!inp.widget?.choices || inp.widget.choices.includes(p));
    const kind = inp.widget?.kind ?? "";
    inputs[inp.name] = usable && !["seed", "text", "textarea"].includes(kind) ? p : initialValue(inp);
    if (inp.widget?.kind === "seed") seedControl[inp.name] = true;
  }
  return { type: spec.type, inputs, seedControl, extraInputs: [], extraOutputs: [] };
}

/** A workflow document -> React Flow nodes and edges. Unknown types become placeholders. */
export function toFlow(
  doc: Workflow,
  schema: Schema,
): { nodes: FlowNode[]; edges: Edge[]; viewport: Viewport | null } {
  const positions = { ...autoLayout(doc), ...(doc.ui?.positions ?? {}) };
  const control = (doc.ui?.seed_control ?? {}) as Record<string, Record<string, boolean>>;
  const looks = (doc.ui?.nodes ?? {}) as Record<string, unknown>;
  const usedOutputs: Record<string, Set<string>> = {};
  for (const entry of Object.values(doc.nodes)) {
    for (const v of Object.values(entry.inputs ?? {})) {
      const l = asLink(v);
      if (l) (usedOutputs[l.node] ??= new Set()).add(l.output);
    }
  }
  const nodes: FlowNode[] = [];
  const links: [string, string, string, string][] = [];
  for (const [id, entry] of Object.entries(doc.nodes)) {
    const spec = schema.nodes[entry.type];
    const inputs: Record<string, unknown> = {};
    const extraInputs: string[] = [];
    const seedControl: Record<string, boolean> = {};
    const ui: NodeUi = cleanUi(looks[id]) ?? {};
    for (const [name, value] of Object.entries(entry.inputs ?? {})) {
      const l = asLink(value);
      if (l && !doc.nodes[l.node]) {
        inputs[name] = value; // a link to a missing node: kept as written, shown as broken
      } else if (l) {
        links.push([l.node, l.output, id, name]);
        const si = spec?.inputs.find((i) => i.name === name);
        if (si && !si.link_only && si.link_type) {
          convertWidget(ui, si, inputs); // a widget fed by a link (a primitive node)
        } else if (!si || !si.link_only) extraInputs.push(name);
      } else {
        inputs[name] = value;
      }
    }
    if (spec) {
      for (const inp of literalInputs(spec)) {
        if (inp.widget?.kind === "seed") seedControl[inp.name] = control[id]?.[inp.name] ?? true;
      }
    }
    const known = new Set(spec?.outputs.map((o) => o.name) ?? []);
    const extraOutputs = [...(usedOutputs[id] ?? [])].filter((o) => !known.has(o));
    const pos = positions[id] ?? { x: 0, y: 0 };
    nodes.push({
      id,
      type: "graph",
      position: { x: Number(pos.x) || 0, y: Number(pos.y) || 0 },
      data: {
        type: entry.type,
        inputs,
        seedControl,
        extraInputs,
        extraOutputs,
        ui: Object.keys(ui).length ? ui : undefined,
        ...(entry.mode === "bypass" || entry.mode === "mute" ? { mode: entry.mode } : {}),
      },
    });
  }
  const edges = links.map(([s, o, t, i]) => makeEdge(schema, nodes, s, o, t, i));
  const reroutes = readReroutes(doc.ui?.reroutes, new Set(edges.map((e) => e.id)));
  for (const e of edges) if (reroutes[e.id]) e.data = { points: reroutes[e.id] };
  const vp = doc.ui?.viewport;
  const viewport =
    vp && typeof vp.x === "number" && typeof vp.y === "number" && typeof vp.zoom === "number"
      ? vp
      : null;
  return { nodes, edges, viewport };
}

/** React Flow state -> the workflow file format (inputs with inline links, ui block). */
export function fromFlow(
  nodes: FlowNode[],
  edges: Edge[],
  schema: Schema,
  viewport: Viewport | null,
): Workflow {
  const incoming: Record<string, Record<string, { node: string; output: string }>> = {};
  for (const e of edges) {
    if (!e.targetHandle || !e.sourceHandle) continue;
    (incoming[e.target] ??= {})[e.targetHandle] = { node: e.source, output: e.sourceHandle };
  }
  const out: Workflow = { version: 1, nodes: {}, ui: { positions: {} } };
  const seedControl: Record<string, Record<string, boolean>> = {};
  const looks: Record<string, NodeUi> = {};
  for (const n of nodes) {
    const look = cleanUi(n.data.ui);
    if (look) looks[n.id] = look;
    const spec = schema.nodes[n.data.type];
    const links = incoming[n.id] ?? {};
    const inputs: Record<string, unknown> = {};
    const order = spec ? spec.inputs.map((i) => i.name) : [];
    for (const name of [...order, ...Object.keys(n.data.inputs), ...Object.keys(links)]) {
      if (name in inputs) continue;
      if (links[name]) inputs[name] = { ...links[name] };
      else if (name in n.data.inputs) inputs[name] = n.data.inputs[name];
    }
    out.nodes[n.id] = { type: n.data.type, inputs, ...(n.data.mode ? { mode: n.data.mode } : {}) };
    out.ui!.positions![n.id] = { x: Math.round(n.position.x), y: Math.round(n.position.y) };
    const off = Object.entries(n.data.seedControl ?? {}).filter(([, on]) => !on);
    if (off.length) seedControl[n.id] = Object.fromEntries(off);
  }
  if (Object.keys(seedControl).length) out.ui!.seed_control = seedControl;
  if (Object.keys(looks).length) out.ui!.nodes = looks;
  const reroutes = readReroutes(Object.fromEntries(edges.map((e) => [e.id, e.data?.points])), new Set(edges.map((e) => e.id)));
  if (Object.keys(reroutes).length) out.ui!.reroutes = reroutes;
  if (viewport) {
    out.ui!.viewport = {
      x: Math.round(viewport.x),
      y: Math.round(viewport.y),
      zoom: Math.round(viewport.zoom * 1000) / 1000,
    };
  }
  return out;
}

/** Mark a widget as converted to an input (in `ui`), keeping a value for converting back. */
function convertWidget(ui: NodeUi, inp: InputSchema, inputs: Record<string, unknown>) {
  ui.inputs = [...new Set([...(ui.inputs ?? []), inp.name])];
  if (!(inp.name in inputs)) inputs[inp.name] = initialValue(inp);
}

/** A fresh node id from its type, unique within `taken`. */
export function freshId(type: string, taken: Set<string>): string {
  const base = type.replace(/[^A-Za-z0-9_]/g, "").toLowerCase() || "node";
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}${i}`)) return `${base}${i}`;
}

/** Basic shape check of a parsed document before loading it. */
export function checkWorkflowShape(doc: unknown): Workflow {
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new Error("not a JSON object");
  const d = doc as Record<string, unknown>;
  if (d.version !== undefined && d.version !== 1) {
    throw new Error(`unsupported workflow version ${JSON.stringify(d.version)}`);
  }
  if (!d.nodes || typeof d.nodes !== "object" || Array.isArray(d.nodes)) {
    throw new Error('no "nodes" object: not a workflow file');
  }
  for (const [id, n] of Object.entries(d.nodes as Record<string, unknown>)) {
    const e = n as Record<string, unknown> | null;
    if (!e || typeof e !== "object" || typeof e.type !== "string") {
      throw new Error(`node ${id}: missing "type"`);
    }
    if (e.inputs !== undefined && (typeof e.inputs !== "object" || Array.isArray(e.inputs))) {
      throw new Error(`node ${id}: "inputs" must be an object`);
    }
  }
  return { version: 1, nodes: d.nodes as Workflow["nodes"], ui: (d.ui as Workflow["ui"]) ?? null };
}
