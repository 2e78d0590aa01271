// Copy and paste of the selected nodes (and the links between them) inside this tab.
import { useCallback, useRef } from "react";
import { copySelection, pasteClip, type Clip } from "./clipboard";
import type { GraphState } from "./useGraphState";

export function useClipboard(
  graph: Pick<GraphState, "nodesRef" | "edgesRef" | "schemaRef" | "setNodes" | "setEdges">,
): { copy: () => void; paste: () => void } {
  const { nodesRef, edgesRef, schemaRef, setNodes, setEdges } = graph;
  const clipboard = useRef<Clip | null>(null);

  const copy = useCallback(() => {
    const clip = copySelection(nodesRef.current, edgesRef.current);
    if (clip) clipboard.current = clip;
  }, [nodesRef, edgesRef]);

  const paste = useCallback(() => {
    if (!clipboard.current) return;
    const out = pasteClip(clipboard.current, nodesRef.current, schemaRef.current);
    setNodes(out.nodes);
    setEdges((eds) => [...eds, ...out.edges]);
  }, [setNodes, setEdges, nodesRef, schemaRef]);

  return { copy, paste };
}
