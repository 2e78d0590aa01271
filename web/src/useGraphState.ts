// The graph as React Flow state, with refs that callbacks read so they never see a stale graph,
// conversion to and from the workflow file format, and the edits nodes and the palette make.
import { useEdgesState, useNodesState, useReactFlow, type Edge, type OnEdgesChange, type OnNodesChange } from "@xyflow/react";
import { useCallback, useRef, type Dispatch, type RefObject, type SetStateAction } from "react";
import type { Schema, Workflow } from "./types";
import { freshId, fromFlow, newNodeData, toFlow, type FlowNode } from "./workflow";

const MAX_SEED = 2 ** 48;

export type GraphState = {
  nodes: FlowNode[];
  edges: Edge[];
  setNodes: Dispatch<SetStateAction<FlowNode[]>>;
  setEdges: Dispatch<SetStateAction<Edge[]>>;
  onNodesChange: OnNodesChange<FlowNode>;
  onEdgesChange: OnEdgesChange<Edge>;
  nodesRef: RefObject<FlowNode[]>;
  edgesRef: RefObject<Edge[]>;
  schemaRef: RefObject<Schema>;
  /** The current graph in the workflow file format. */
  currentWorkflow: (withViewport?: boolean) => Workflow;
  /** Replace the graph with a workflow document; returns the React Flow view of it. */
  apply: (doc: Workflow) => ReturnType<typeof toFlow>;
  setInput: (nodeId: string, name: string, value: unknown) => void;
  setSeedControl: (nodeId: string, name: string, on: boolean) => void;
  /** Add a node of `type` at `at` (flow coordinates), or near the canvas centre; returns its id. */
  addNode: (type: string, at?: { x: number; y: number }) => string | null;
  /** New random values for every seed input whose "randomize" control is on. */
  randomizeSeeds: () => void;
};

export function useGraphState(
  schema: Schema,
  canvasRef: RefObject<HTMLDivElement | null>,
  clearField: (nodeId: string, field: string) => void,
): GraphState {
  const rf = useReactFlow<FlowNode, Edge>();
  const [nodes, setNodes, onNodesChange] = useNodesState<FlowNode>([]);
  const [edges, setEdges, onEdgesChange] = useEdgesState<Edge>([]);
  const nodesRef = useRef(nodes);
  const edgesRef = useRef(edges);
  nodesRef.current = nodes;
  edgesRef.current = edges;
  const schemaRef = useRef(schema);
  schemaRef.current = schema;

  const currentWorkflow = useCallback(
    (withViewport = true): Workflow =>
      fromFlow(nodesRef.current, edgesRef.current, schemaRef.current, withViewport ? rf.getViewport() : null),
    [rf],
  );

  const apply = useCallback(
    (doc: Workflow) => {
      const flow = toFlow(doc, schemaRef.current);
      nodesRef.current = flow.nodes;
      edgesRef.current = flow.edges;
      setNodes(flow.nodes);
      setEdges(flow.edges);
      return flow;
    },
    [setNodes, setEdges],
  );

  const setInput = useCallback(
    (nodeId: string, name: string, value: unknown) => {
      setNodes((nds) =>
        nds.map((n) =>
          n.id === nodeId ? { ...n, data: { ...n.data, inputs: { ...n.data.inputs, [name]: value } } } : n,
        ),
      );
      clearField(nodeId, name);
    },
    [setNodes, clearField],
  );

  const setSeedControl = useCallback(
    (nodeId: string, name: string, on: boolean) =>
      setNodes((nds) =>
        nds.map((n) =>
          n.id === nodeId
            ? { ...n, data: { ...n.data, seedControl: { ...n.data.seedControl, [name]: on } } }
            : n,
        ),
      ),
    [setNodes],
  );

  const addNode = useCallback(
    (type: string, at?: { x: number; y: number }) => {
      const spec = schemaRef.current.nodes[type];
      if (!spec) return null;
      let position = at;
      if (!position) {
        const r = canvasRef.current?.getBoundingClientRect();
        const jitter = (nodesRef.current.length % 5) * 24;
        position = rf.screenToFlowPosition({
          x: (r ? r.left + r.width / 2 : 400) - 130 + jitter,
          y: (r ? r.top + r.height / 3 : 300) + jitter,
        });
      }
      const id = freshId(type, new Set(nodesRef.current.map((n) => n.id)));
      const node: FlowNode = { id, type: "graph", position, data: newNodeData(spec), selected: true };
      setNodes((nds) => [...nds.map((n) => (n.selected ? { ...n, selected: false } : n)), node]);
      return id;
    },
    [rf, setNodes, canvasRef],
  );

  const randomizeSeeds = useCallback(() => {
    setNodes((nds) =>
      nds.map((n) => {
        const spec = schemaRef.current.nodes[n.data.type];
        if (!spec) return n;
        const changes: Record<string, number> = {};
        for (const inp of spec.inputs) {
          if (inp.widget?.kind !== "seed" || n.data.seedControl?.[inp.name] === false) continue;
          const lo = inp.widget.min ?? 0;
          const hi = Math.min(inp.widget.max ?? MAX_SEED, MAX_SEED);
          changes[inp.name] = lo + Math.floor(Math.random() * (hi - lo + 1));
        }
        return Object.keys(changes).length
          ? { ...n, data: { ...n.data, inputs: { ...n.data.inputs, ...changes } } }
          : n;
      }),
    );
  }, [setNodes]);

  return {
    nodes,
    edges,
    setNodes,
    setEdges,
    onNodesChange,
    onEdgesChange,
    nodesRef,
    edgesRef,
    schemaRef,
    currentWorkflow,
    apply,
    setInput,
    setSeedControl,
    addNode,
    randomizeSeeds,
  };
}
