// Where to look after a graph is loaded: its saved viewport when the whole graph is
// visible with it on this screen, else the graph fitted to the canvas.
import { useReactFlow, type Viewport } from "@xyflow/react";
import { useCallback, useEffect, useRef, type RefObject } from "react";
import type { FlowNode } from "./workflow";

export function useShowLoaded(
  nodes: FlowNode[],
  canvas: RefObject<HTMLDivElement | null>,
): (viewport: Viewport | null) => void {
  const rf = useReactFlow();
  const pending = useRef<{ viewport: Viewport | null } | null>(null);
  useEffect(() => {
    const p = pending.current;
    if (!p || !nodes.length || !nodes.every((n) => n.measured?.width)) return; // not drawn yet
    pending.current = null;
    const vp = p.viewport;
    const box = canvas.current?.getBoundingClientRect();
    if (vp && box) {
      const b = rf.getNodesBounds(nodes);
      const left = b.x * vp.zoom + vp.x;
      const top = b.y * vp.zoom + vp.y;
      const right = left + b.width * vp.zoom;
      const bottom = top + b.height * vp.zoom;
      if (left >= 0 && top >= 0 && right <= box.width && bottom <= box.height) {
        void rf.setViewport(vp);
        return;
      }
    }
    void rf.fitView({ padding: 0.06, maxZoom: 1 });
  }, [nodes, rf, canvas]);
  return useCallback((viewport: Viewport | null) => {
    pending.current = { viewport };
  }, []);
}
