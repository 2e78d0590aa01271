// Validation problems from the server (400 details), by node, until fixed or rerun.
import { useCallback, useMemo, useState } from "react";
import type { ValidationIssue } from "./types";

export type Issues = {
  byNode: Record<string, ValidationIssue[]>;
  /** Mark the problems of a 400; returns how many were marked and those with no node. */
  show: (details: unknown) => { marked: number; loose: ValidationIssue[] };
  clear: () => void;
  clearField: (nodeId: string, field: string) => void;
};

export function useIssues(): Issues {
  const [byNode, setByNode] = useState<Record<string, ValidationIssue[]>>({});
  const show = useCallback((details: unknown) => {
    const grouped: Record<string, ValidationIssue[]> = {};
    const loose: ValidationIssue[] = [];
    let marked = 0;
    for (const d of Array.isArray(details) ? (details as ValidationIssue[]) : []) {
      if (d && typeof d.node_id === "string") {
        (grouped[d.node_id] ??= []).push(d);
        marked += 1;
      } else if (d) loose.push(d);
    }
    setByNode(grouped);
    return { marked, loose };
  }, []);
  const clear = useCallback(() => setByNode({}), []);
  const clearField = useCallback(
    (nodeId: string, field: string) =>
      setByNode((is) => {
        if (!is[nodeId]?.some((i) => i.field === field)) return is;
        const next = { ...is };
        const rest = is[nodeId].filter((i) => i.field !== field);
        if (rest.length) next[nodeId] = rest;
        else delete next[nodeId];
        return next;
      }),
    [],
  );
  return useMemo(() => ({ byNode, show, clear, clearField }), [byNode, show, clear, clearField]);
}
