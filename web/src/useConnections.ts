// Link handling: which links the canvas accepts, and what making one does to the graph.
import type { Connection, Edge } from "@xyflow/react";
import { useCallback, useRef } from "react";
import type { GraphState } from "./useGraphState";
import { acceptedTypes } from "./nodeRules";
import { makeEdge, outputType } from "./workflow";

export type Connections = {
  isValidConnection: (c: Connection | Edge) => boolean;
  onConnect: (c: Connection) => void;
  /** Picking up a link by its end: dropped on an input that takes it, it moves there;
   * dropped anywhere else, it is removed (detached). */
  onReconnectStart: (e: unknown, edge: Edge) => void;
  onReconnect: (old: Edge, c: Connection) => void;
  onReconnectEnd: (e: unknown, edge: Edge) => void;
};

export function useConnections(
  graph: Pick<GraphState, "nodesRef" | "edgesRef" | "schemaRef" | "setNodes" | "setEdges">,
  clearField: (nodeId: string, field: string) => void,
): Connections {
  const { nodesRef, edgesRef, schemaRef, setNodes, setEdges } = graph;
  const moving = useRef<{ id: string; moved: boolean } | null>(null); // the link picked up

  /** The only link rule: the server's `accepts` list, and one link per input. */
  const isValidConnection = useCallback(
    (c: Connection | Edge) => {
      if (!c.source || !c.target || c.source === c.target || !c.targetHandle) return false;
      const src = nodesRef.current.find((n) => n.id === c.source);
      const dst = nodesRef.current.find((n) => n.id === c.target);
      const type = outputType(schemaRef.current, src, c.sourceHandle ?? null);
      if (!type || !acceptedTypes(schemaRef.current, dst, c.targetHandle).includes(type)) return false;
      return !edgesRef.current.some(
        (e) => e.id !== moving.current?.id && e.target === c.target && e.targetHandle === c.targetHandle,
      );
    },
    [nodesRef, edgesRef, schemaRef],
  );

  const onConnect = useCallback(
    (c: Connection) => {
      if (!isValidConnection(c)) return;
      setEdges((eds) => [
        ...eds,
        makeEdge(schemaRef.current, nodesRef.current, c.source, c.sourceHandle!, c.target, c.targetHandle!),
      ]);
      setNodes((nds) =>
        nds.map((n) => {
          if (n.id !== c.target || !(c.targetHandle! in n.data.inputs)) return n;
          const inputs = { ...n.data.inputs }; // a broken link this edge replaces
          delete inputs[c.targetHandle!];
          return { ...n, data: { ...n.data, inputs } };
        }),
      );
      clearField(c.target, c.targetHandle!);
    },
    [isValidConnection, setEdges, setNodes, clearField, schemaRef, nodesRef],
  );

  const onReconnectStart = useCallback((_e: unknown, edge: Edge) => {
    moving.current = { id: edge.id, moved: false };
  }, []);
  const onReconnect = useCallback(
    (old: Edge, c: Connection) => {
      if (!isValidConnection(c)) return;
      if (moving.current) moving.current.moved = true;
      edgesRef.current = edgesRef.current.filter((e) => e.id !== old.id);
      setEdges((eds) => eds.filter((e) => e.id !== old.id));
      onConnect(c);
    },
    [isValidConnection, onConnect, setEdges, edgesRef],
  );
  const onReconnectEnd = useCallback(
    (_e: unknown, edge: Edge) => {
      if (moving.current && !moving.current.moved) setEdges((eds) => eds.filter((e) => e.id !== edge.id));
      moving.current = null;
    },
    [setEdges],
  );

  return { isValidConnection, onConnect, onReconnectStart, onReconnect, onReconnectEnd };
}
