// Finding node types by what was typed: every word must appear somewhere (type, title,
// category, description), and names that match rank first, so Enter adds what was meant
// ("checkpoint" -> LoadCheckpoint, not a node whose description mentions checkpoints).
import type { NodeSchema, Schema } from "./types";

/** Lower is better; null when the node does not match at all. */
export function rank(spec: NodeSchema, query: string): number | null {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return 0;
  const name = `${spec.type} ${spec.title ?? ""}`.toLowerCase();
  const squashed = name.replace(/\s+/g, "");
  const hay = `${name} ${spec.category} ${spec.description}`.toLowerCase();
  if (!words.every((w) => hay.includes(w))) return null;
  const joined = words.join("");
  const type = spec.type.toLowerCase();
  if (type === joined || (spec.title ?? "").toLowerCase().replace(/\s+/g, "") === joined) return 0;
  if (type.startsWith(joined)) return 1;
  if (squashed.includes(joined)) return 2;
  const inName = words.filter((w) => name.includes(w)).length;
  if (inName === words.length) return 3;
  return 10 - inName; // some words only in the description or category
}

/** Matching node types, best first (ties by name); `accepts` narrows to those a link fits. */
export function searchNodes(schema: Schema, query: string, fits?: (spec: NodeSchema) => boolean): NodeSchema[] {
  const scored: [number, NodeSchema][] = [];
  for (const spec of Object.values(schema.nodes)) {
    if (fits && !fits(spec)) continue;
    const r = rank(spec, query);
    if (r !== null) scored.push([r, spec]);
  }
  return scored.sort((a, b) => a[0] - b[0] || a[1].type.localeCompare(b[1].type)).map(([, s]) => s);
}

/** The label with the first occurrence of each typed word wrapped for highlighting. */
export function highlightParts(label: string, query: string): { text: string; hit: boolean }[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const marks = new Array(label.length).fill(false);
  for (const w of words) {
    const at = label.toLowerCase().indexOf(w);
    if (at >= 0) for (let i = at; i < at + w.length; i++) marks[i] = true;
  }
  const parts: { text: string; hit: boolean }[] = [];
  for (let i = 0; i < label.length; i++) {
    const last = parts[parts.length - 1];
    if (last && last.hit === marks[i]) last.text += label[i];
    else parts.push({ text: label[i], hit: marks[i] });
  }
  return parts;
}
