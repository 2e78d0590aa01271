// Opening the node search popup and what picking a type does: add the node where the popup
// was opened, and, for a dropped link, connect it through the first input (or output) that
// takes the link's type (the server's `accepts` lists decide, as for every link).
import type { FinalConnectionState } from "@xyflow/react";
import { useReactFlow } from "@xyflow/react";
import { useCallback, useState } from "react";
import type { SearchRequest } from "./NodeSearch";
import type { NodeSchema } from "./types";
import type { GraphState } from "./useGraphState";
import type { Connections } from "./useConnections";
import { acceptedTypes } from "./nodeRules";
import { linkInputs, outputType } from "./workflow";

type Pending = SearchRequest & { connect?: (newId: string, spec: NodeSchema) => void };

export function useNodeSearch(
  graph: Pick<GraphState, "addNode" | "schemaRef" | "nodesRef">,
  onConnect: Connections["onConnect"],
) {
  const rf = useReactFlow();
  const [request, setRequest] = useState<Pending | null>(null);

  const onPaneDoubleClick = useCallback((e: React.MouseEvent) => {
    if (!(e.target as Element).classList?.contains("react-flow__pane")) return;
    setRequest({ x: e.clientX, y: e.clientY });
  }, []);

  const onConnectEnd = useCallback(
    (e: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      if (state.isValid || state.toNode || !state.fromNode || !state.fromHandle?.id) return;
      const point = "changedTouches" in e ? e.changedTouches[0] : e;
      const schema = graph.schemaRef.current;
      const from = graph.nodesRef.current.find((n) => n.id === state.fromNode!.id);
      const handle = state.fromHandle.id;
      if (state.fromHandle.type === "source") {
        const type = outputType(schema, from, handle);
        if (!type) return;
        const input = (spec: NodeSchema) => linkInputs(spec).find((i) => (i.accepts ?? []).includes(type));
        setRequest({
          x: point.clientX,
          y: point.clientY,
          fits: (spec) => Boolean(input(spec)),
          hint: `takes ${type}`,
          connect: (id, spec) =>
            onConnect({ source: from!.id, sourceHandle: handle, target: id, targetHandle: input(spec)!.name }),
        });
      } else {
        const accepts = acceptedTypes(schema, from, handle); // a converted widget's too
        if (!accepts.length) return;
        const output = (s: NodeSchema) => s.outputs.find((o) => accepts.includes(o.type));
        setRequest({
          x: point.clientX,
          y: point.clientY,
          fits: (s) => Boolean(output(s)),
          hint: `gives ${accepts.join(" / ")}`,
          connect: (id, s) =>
            onConnect({ source: id, sourceHandle: output(s)!.name, target: from!.id, targetHandle: handle }),
        });
      }
    },
    [graph.schemaRef, graph.nodesRef, onConnect],
  );

  const pick = useCallback(
    (type: string) => {
      const r = request;
      setRequest(null);
      if (!r) return;
      const at = rf.screenToFlowPosition({ x: r.x, y: r.y });
      const id = graph.addNode(type, at);
      const spec = graph.schemaRef.current.nodes[type];
      if (id && spec && r.connect) r.connect(id, spec);
    },
    [request, rf, graph],
  );

  return { request, onPaneDoubleClick, onConnectEnd, pick, close: () => setRequest(null) };
}
