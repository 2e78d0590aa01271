// Group frames on the canvas (drawn behind the nodes, in the viewport's coordinates): dragging
// a group's header moves it with every node inside; its corner resizes it; right-click on the
// header opens its menu (rename, colour, delete; deleting keeps the nodes). Ctrl+G groups
// the selected nodes.
import { useReactFlow, ViewportPortal } from "@xyflow/react";
import { useEffect, useRef, useState, type Dispatch, type SetStateAction } from "react";
import { ColourSwatches, useEscape } from "./menuParts";
import { nodesIn, type Group } from "./groups";
import type { FlowNode } from "./workflow";
import "./canvas-layout.css";

type LayerProps = {
  groups: Group[];
  setGroups: (f: (gs: Group[]) => Group[]) => void;
  nodesRef: React.RefObject<FlowNode[]>;
  setNodes: Dispatch<SetStateAction<FlowNode[]>>;
  onMenu: (id: string, x: number, y: number) => void;
  /** A drag or resize ended: one undo step. */
  onChanged: () => void;
};

/** Follow the pointer from a pointerdown until it is released. */
function track(e: React.PointerEvent, onMove: (dx: number, dy: number) => void, onEnd: () => void) {
  const el = e.currentTarget as HTMLElement;
  el.setPointerCapture(e.pointerId);
  const sx = e.clientX;
  const sy = e.clientY;
  const move = (ev: PointerEvent) => onMove(ev.clientX - sx, ev.clientY - sy);
  const up = () => {
    el.removeEventListener("pointermove", move);
    el.removeEventListener("pointerup", up);
    onEnd();
  };
  el.addEventListener("pointermove", move);
  el.addEventListener("pointerup", up);
}

export function GroupLayer({ groups, setGroups, nodesRef, setNodes, onMenu, onChanged }: LayerProps) {
  const rf = useReactFlow();
  const update = (id: string, patch: Partial<Group>) =>
    setGroups((gs) => gs.map((g) => (g.id === id ? { ...g, ...patch } : g)));

  const moveGroup = (g: Group) => (e: React.PointerEvent) => {
    if (e.button !== 0) return;
    e.stopPropagation();
    const zoom = rf.getZoom();
    const inside = new Set(nodesIn(g, nodesRef.current));
    const start = Object.fromEntries(
      nodesRef.current.filter((n) => inside.has(n.id)).map((n) => [n.id, n.position]),
    );
    track(
      e,
      (dx, dy) => {
        const fx = Math.round(dx / zoom);
        const fy = Math.round(dy / zoom);
        update(g.id, { x: g.x + fx, y: g.y + fy });
        setNodes((nds) =>
          nds.map((n) => (start[n.id] ? { ...n, position: { x: start[n.id].x + fx, y: start[n.id].y + fy } } : n)),
        );
      },
      onChanged,
    );
  };
  const resize = (g: Group) => (e: React.PointerEvent) => {
    if (e.button !== 0) return;
    e.stopPropagation();
    const zoom = rf.getZoom();
    track(
      e,
      (dx, dy) =>
        update(g.id, {
          width: Math.max(120, Math.round(g.width + dx / zoom)),
          height: Math.max(80, Math.round(g.height + dy / zoom)),
        }),
      onChanged,
    );
  };

  return (
    <ViewportPortal>
      {groups.map((g) => (
        <div
          key={g.id}
          className="group-frame"
          data-group={g.id}
          style={{
            transform: `translate(${g.x}px, ${g.y}px)`,
            width: g.width,
            height: g.height,
            ...(g.color ? { borderColor: g.color, background: `${g.color}33` } : {}),
          }}
        >
          <div
            className="group-head nodrag nopan"
            style={g.color ? { background: g.color } : undefined}
            title="Drag to move the group and its nodes; right-click for its menu"
            onPointerDown={moveGroup(g)}
            onContextMenu={(e) => {
              e.preventDefault();
              e.stopPropagation();
              onMenu(g.id, e.clientX, e.clientY);
            }}
          >
            {g.title}
          </div>
          <div className="group-resize nodrag nopan" aria-hidden onPointerDown={resize(g)} />
        </div>
      ))}
    </ViewportPortal>
  );
}

type MenuProps = {
  x: number;
  y: number;
  group: Group;
  onChange: (patch: Partial<Group>) => void;
  onDelete: () => void;
  onClose: () => void;
};

/** Rename, recolour or delete a group (its nodes stay). */
export function GroupMenu({ x, y, group, onChange, onDelete, onClose }: MenuProps) {
  const [renaming, setRenaming] = useState(false);
  const [title, setTitle] = useState(group.title);
  const first = useRef<HTMLButtonElement>(null);
  useEffect(() => first.current?.focus(), []);
  useEscape(onClose);
  const act = (f: () => void) => () => {
    f();
    onClose();
  };
  return (
    <div className="node-search-backdrop" onMouseDown={onClose} onContextMenu={(e) => e.preventDefault()}>
      <div
        className="node-menu group-menu"
        role="menu"
        aria-label={`Group ${group.title}`}
        style={{ left: Math.min(x, window.innerWidth - 210), top: Math.min(y, window.innerHeight - 200) }}
        onMouseDown={(e) => e.stopPropagation()}
      >
        {renaming ? (
          <input
            autoFocus
            aria-label="Group title"
            value={title}
            onChange={(e) => setTitle(e.target.value)}
            onKeyDown={(e) => e.key === "Enter" && act(() => onChange({ title: title.trim() || "Group" }))()}
          />
        ) : (
          <button ref={first} role="menuitem" onClick={() => setRenaming(true)}>
            Rename…
          </button>
        )}
        <ColourSwatches label="Group colour" onPick={(color) => act(() => onChange({ color }))()} />
        <button role="menuitem" onClick={act(onDelete)}>
          Delete group (keep nodes)
        </button>
      </div>
    </div>
  );
}

/** Ctrl+G (outside text fields): group the selected nodes. */
export function useGroupShortcut(onGroup: () => void): void {
  const ref = useRef(onGroup);
  ref.current = onGroup;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
      if (!(e.ctrlKey || e.metaKey) || e.key.toLowerCase() !== "g") return;
      e.preventDefault(); // the browser's "find next"
      ref.current();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
}
