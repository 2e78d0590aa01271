// Groups as data: titled, coloured frames (flow coordinates), saved under the workflow's
// `ui.groups` (layout only; the engine never sees them). Which nodes a group holds is not
// stored: a node belongs to the group its centre lies in, as in ComfyUI.
import { useCallback, useRef, useState } from "react";
import type { FlowNode } from "./workflow";
import { NODE_WIDTH } from "./workflow";

export type Group = { id: string; title: string; color?: string; x: number; y: number; width: number; height: number };

const PAD = 24;
const HEADER = 36;

/** Clean `ui.groups` of a file: well-formed frames only. */
export function readGroups(raw: unknown): Group[] {
  if (!Array.isArray(raw)) return [];
  const out: Group[] = [];
  for (const g of raw) {
    if (!g || typeof g !== "object") continue;
    const v = g as Record<string, unknown>;
    const nums = [v.x, v.y, v.width, v.height].map(Number);
    if (!nums.every(Number.isFinite) || nums[2] <= 0 || nums[3] <= 0) continue;
    const [x, y, width, height] = nums.map(Math.round);
    const id = typeof v.id === "string" && v.id ? v.id : `group${out.length + 1}`;
    const title = typeof v.title === "string" ? v.title : "Group";
    const color = typeof v.color === "string" && /^#[0-9a-fA-F]{6}$/.test(v.color) ? v.color : undefined;
    out.push({ id, title, ...(color ? { color } : {}), x, y, width, height });
  }
  return out;
}

function box(n: FlowNode) {
  return { x: n.position.x, y: n.position.y, w: n.measured?.width ?? NODE_WIDTH, h: n.measured?.height ?? 200 };
}

/** The nodes whose centre lies inside the group. */
export function nodesIn(group: Group, nodes: FlowNode[]): string[] {
  return nodes
    .filter((n) => {
      const b = box(n);
      const cx = b.x + b.w / 2;
      const cy = b.y + b.h / 2;
      return cx > group.x && cx < group.x + group.width && cy > group.y && cy < group.y + group.height;
    })
    .map((n) => n.id);
}

/** A frame around `nodes`, with room for its title above them. */
export function frameAround(nodes: FlowNode[], id: string, title = "Group"): Group | null {
  if (!nodes.length) return null;
  const boxes = nodes.map(box);
  const x = Math.min(...boxes.map((b) => b.x)) - PAD;
  const y = Math.min(...boxes.map((b) => b.y)) - PAD - HEADER;
  const right = Math.max(...boxes.map((b) => b.x + b.w)) + PAD;
  const bottom = Math.max(...boxes.map((b) => b.y + b.h)) + PAD;
  return { id, title, x: Math.round(x), y: Math.round(y), width: Math.round(right - x), height: Math.round(bottom - y) };
}

export type Groups = {
  groups: Group[];
  /** Read by the workflow snapshot at once (undo, save), before React re-renders. */
  groupsRef: React.RefObject<Group[]>;
  setGroups: (f: Group[] | ((gs: Group[]) => Group[])) => void;
};

export function useGroups(): Groups {
  const [groups, setState] = useState<Group[]>([]);
  const groupsRef = useRef<Group[]>(groups);
  const setGroups = useCallback((f: Group[] | ((gs: Group[]) => Group[])) => {
    const next = typeof f === "function" ? f(groupsRef.current) : f;
    groupsRef.current = next;
    setState(next);
  }, []);
  return { groups, groupsRef, setGroups };
}

/** A fresh group id. */
export function freshGroupId(groups: Group[]): string {
  const taken = new Set(groups.map((g) => g.id));
  for (let i = 1; ; i++) if (!taken.has(`group${i}`)) return `group${i}`;
}
