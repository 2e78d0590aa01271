// Undo/redo over snapshots of the open document: the workflow (the file format, not React Flow
// state) and its name, so undoing past a load also restores the name Save uses. The top
// snapshot is autosaved (localStorage) and compared with the last loaded/saved one to tell
// whether there are unsaved changes.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { Edge } from "@xyflow/react";
import { parseJson, stringifyJson } from "./json";
import type { Workflow } from "./types";
import type { FlowNode } from "./workflow";

const LIMIT = 100;
const SETTLE_MS = 250;
export const AUTOSAVE_KEY = "sdgraph.autosave.v1";

/** What one undo step holds. */
export type DocState = { doc: Workflow; title: string };

export type Undo = {
  undo: () => void;
  redo: () => void;
  commitNow: () => void;
  /** The current document is what was last loaded or saved (or, with false, is not). */
  markClean: (clean?: boolean) => void;
  canUndo: boolean;
  canRedo: boolean;
  dirty: boolean;
};

/** The autosaved document of the last session in this browser, if any. */
export function readAutosave(): (DocState & { dirty: boolean }) | null {
  try {
    const raw = localStorage.getItem(AUTOSAVE_KEY);
    if (!raw) return null;
    const v = parseJson(raw) as DocState & { dirty?: boolean };
    return v && v.doc && typeof v.title === "string" ? { ...v, dirty: Boolean(v.dirty) } : null;
  } catch {
    return null;
  }
}

export function useUndo(
  snapshot: () => DocState,
  apply: (s: DocState) => void,
  nodes: FlowNode[],
  edges: Edge[],
): Undo {
  const stack = useRef<string[]>([]);
  const index = useRef(-1);
  const clean = useRef<string | null>(null);
  const [version, setVersion] = useState(0);
  const snap = useRef(snapshot);
  snap.current = snapshot;
  const applyRef = useRef(apply);
  applyRef.current = apply;

  const autosave = useCallback(() => {
    const s = stack.current[index.current];
    if (s === undefined) return;
    try {
      const dirty = s !== clean.current;
      localStorage.setItem(AUTOSAVE_KEY, s.replace(/^\{/, `{"dirty":${dirty},`));
    } catch {
      /* storage full or disabled: nothing to do */
    }
  }, []);

  const commitNow = useCallback(() => {
    const s = stringifyJson(snap.current());
    if (stack.current[index.current] === s) return;
    stack.current = [...stack.current.slice(0, index.current + 1), s].slice(-LIMIT);
    index.current = stack.current.length - 1;
    autosave();
    setVersion((v) => v + 1);
  }, [autosave]);

  const markClean = useCallback(
    (isClean = true) => {
      commitNow();
      clean.current = isClean ? stack.current[index.current] : null;
      autosave();
      setVersion((v) => v + 1);
    },
    [commitNow, autosave],
  );

  // Record every settled change (not mid-drag); edits coalesce within SETTLE_MS.
  useEffect(() => {
    if (index.current < 0 || nodes.some((n) => n.dragging)) return;
    const t = setTimeout(commitNow, SETTLE_MS);
    return () => clearTimeout(t);
  }, [nodes, edges, commitNow]);

  const step = useCallback(
    (by: number) => {
      const to = index.current + by;
      if (to < 0 || to >= stack.current.length) return;
      index.current = to;
      applyRef.current(parseJson(stack.current[to]) as DocState);
      autosave();
      setVersion((v) => v + 1);
    },
    [autosave],
  );

  const undo = useCallback(() => {
    commitNow();
    step(-1);
  }, [commitNow, step]);
  const redo = useCallback(() => step(1), [step]);

  return useMemo(
    () => ({
      undo,
      redo,
      commitNow,
      markClean,
      canUndo: index.current > 0,
      canRedo: index.current < stack.current.length - 1,
      dirty: index.current >= 0 && stack.current[index.current] !== clean.current,
    }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [undo, redo, commitNow, markClean, version],
  );
}
