// Undo/redo over snapshots of the workflow document (the file format, not React Flow state).
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { Edge } from "@xyflow/react";
import type { Workflow } from "./types";
import type { FlowNode } from "./workflow";

const LIMIT = 100;
const SETTLE_MS = 250;

export type Undo = {
  undo: () => void;
  redo: () => void;
  commitNow: () => void;
  canUndo: boolean;
  canRedo: boolean;
};

export function useUndo(
  snapshot: () => Workflow,
  apply: (doc: Workflow) => void,
  nodes: FlowNode[],
  edges: Edge[],
): Undo {
  const stack = useRef<string[]>([]);
  const index = useRef(-1);
  const [version, setVersion] = useState(0);
  const snap = useRef(snapshot);
  snap.current = snapshot;
  const applyRef = useRef(apply);
  applyRef.current = apply;

  const commitNow = useCallback(() => {
    const s = JSON.stringify(snap.current());
    if (stack.current[index.current] === s) return;
    stack.current = [...stack.current.slice(0, index.current + 1), s].slice(-LIMIT);
    index.current = stack.current.length - 1;
    setVersion((v) => v + 1);
  }, []);

  // Record every settled change (not mid-drag); edits coalesce within SETTLE_MS.
  useEffect(() => {
    if (index.current < 0 || nodes.some((n) => n.dragging)) return;
    const t = setTimeout(commitNow, SETTLE_MS);
    return () => clearTimeout(t);
  }, [nodes, edges, commitNow]);

  const undo = useCallback(() => {
    commitNow();
    if (index.current <= 0) return;
    index.current -= 1;
    applyRef.current(JSON.parse(stack.current[index.current]));
    setVersion((v) => v + 1);
  }, [commitNow]);

  const redo = useCallback(() => {
    if (index.current >= stack.current.length - 1) return;
    index.current += 1;
    applyRef.current(JSON.parse(stack.current[index.current]));
    setVersion((v) => v + 1);
  }, []);

  return useMemo(
    () => ({
      undo,
      redo,
      commitNow,
      canUndo: index.current > 0,
      canRedo: index.current < stack.current.length - 1,
    }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [undo, redo, commitNow, version],
  );
}
