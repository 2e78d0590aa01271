// Where a new node goes: the free spot nearest the point asked for (the viewport centre),
// searched in rings around it, so added nodes never land on top of each other.
import type { FlowNode } from "./workflow";
import { NODE_WIDTH } from "./workflow";

type Rect = { x: number; y: number; w: number; h: number };
const GAP = 24;

const overlaps = (a: Rect, b: Rect) =>
  a.x < b.x + b.w + GAP && b.x < a.x + a.w + GAP && a.y < b.y + b.h + GAP && b.y < a.y + a.h + GAP;

/** Top-left of a `size` box centred as near `centre` as the other nodes allow. */
export function freeSpot(
  nodes: FlowNode[],
  centre: { x: number; y: number },
  size: { w: number; h: number } = { w: NODE_WIDTH, h: 200 },
): { x: number; y: number } {
  const taken: Rect[] = nodes.map((n) => ({
    x: n.position.x,
    y: n.position.y,
    w: n.measured?.width ?? NODE_WIDTH,
    h: n.measured?.height ?? 200,
  }));
  const origin = { x: centre.x - size.w / 2, y: centre.y - size.h / 2 };
  const step = 40;
  for (let ring = 0; ring < 60; ring++) {
    const spots: { x: number; y: number }[] = [];
    for (let i = -ring; i <= ring; i++) {
      spots.push({ x: i, y: -ring }, { x: i, y: ring }, { x: -ring, y: i }, { x: ring, y: i });
    }
    spots.sort((a, b) => Math.hypot(a.x, a.y) - Math.hypot(b.x, b.y));
    for (const s of spots) {
      const r = { x: origin.x + s.x * step, y: origin.y + s.y * step, ...size };
      if (!taken.some((t) => overlaps(r, t))) return { x: Math.round(r.x), y: Math.round(r.y) };
    }
  }
  return origin;
}
