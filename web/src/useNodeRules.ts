// Editing node modes and converted widgets: Ctrl+B (bypass) and Ctrl+M (mute) on the selected
// nodes (keys in useShortcuts), and the node menu's actions. What they change is saved in the workflow (mode) and
// its `ui` (which widgets are shown as inputs).
import { useCallback } from "react";
import { toggleModes } from "./nodeRules";
import type { NodeMode } from "./types";
import type { GraphState } from "./useGraphState";

export type NodeRules = {
  /** Toggle `mode` on the given nodes (default: the selected ones). */
  toggleMode: (mode: NodeMode, ids?: string[]) => void;
  /** Show a widget as a link input (on) or as a widget again (off: its link goes). */
  setConverted: (nodeId: string, input: string, on: boolean) => void;
};

export function useNodeRules(graph: Pick<GraphState, "nodesRef" | "setNodes" | "setEdges">): NodeRules {
  const { nodesRef, setNodes, setEdges } = graph;

  const toggleMode = useCallback(
    (mode: NodeMode, ids?: string[]) => {
      const chosen = new Set(ids ?? nodesRef.current.filter((n) => n.selected).map((n) => n.id));
      if (chosen.size) setNodes((nds) => toggleModes(nds, chosen, mode));
    },
    [nodesRef, setNodes],
  );

  const setConverted = useCallback(
    (nodeId: string, input: string, on: boolean) => {
      setNodes((nds) =>
        nds.map((n) => {
          if (n.id !== nodeId) return n;
          const names = new Set(n.data.ui?.inputs ?? []);
          if (on) names.add(input);
          else names.delete(input);
          const ui = { ...n.data.ui, inputs: names.size ? [...names] : undefined };
          return { ...n, data: { ...n.data, ui } };
        }),
      );
      if (!on) setEdges((eds) => eds.filter((e) => !(e.target === nodeId && e.targetHandle === input)));
    },
    [setNodes, setEdges],
  );

  return { toggleMode, setConverted };
}
