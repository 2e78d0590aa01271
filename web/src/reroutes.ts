// Reroute points of links as data: where they are stored (`ui.reroutes`: edge id -> points,
// layout only), the path drawn through them, and where a new point goes in the list.
export type Point = { x: number; y: number };
export type RerouteData = { points?: Point[] };

/** A curve through the points, leaving and entering each horizontally like a link does. */
export function pathThrough(all: Point[]): string {
  let d = `M ${all[0].x},${all[0].y}`;
  for (let i = 1; i < all.length; i++) {
    const a = all[i - 1];
    const b = all[i];
    const c = Math.max(Math.abs(b.x - a.x) / 2, 25);
    d += ` C ${a.x + c},${a.y} ${b.x - c},${b.y} ${b.x},${b.y}`;
  }
  return d;
}

function distToSegment(p: Point, a: Point, b: Point): number {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len = dx * dx + dy * dy;
  const t = len ? Math.max(0, Math.min(1, ((p.x - a.x) * dx + (p.y - a.y) * dy) / len)) : 0;
  return Math.hypot(p.x - (a.x + t * dx), p.y - (a.y + t * dy));
}

/** `points` with `p` inserted into the stretch (source, points..., target) nearest to it. */
export function insertPoint(points: Point[], p: Point, source: Point, target: Point): Point[] {
  const all = [source, ...points, target];
  let best = 0;
  for (let i = 1; i < all.length - 1; i++) {
    if (distToSegment(p, all[i], all[i + 1]) < distToSegment(p, all[best], all[best + 1])) best = i;
  }
  return [...points.slice(0, best), p, ...points.slice(best)];
}

/** Clean `ui.reroutes` of a file: edge id -> points, only for edges that exist. */
export function readReroutes(raw: unknown, edgeIds: Set<string>): Record<string, Point[]> {
  const out: Record<string, Point[]> = {};
  if (!raw || typeof raw !== "object") return out;
  for (const [id, pts] of Object.entries(raw as Record<string, unknown>)) {
    if (!edgeIds.has(id) || !Array.isArray(pts)) continue;
    const ok = pts.filter(
      (p): p is Point => Boolean(p) && Number.isFinite((p as Point).x) && Number.isFinite((p as Point).y),
    );
    if (ok.length) out[id] = ok.map((p) => ({ x: Math.round(p.x), y: Math.round(p.y) }));
  }
  return out;
}
