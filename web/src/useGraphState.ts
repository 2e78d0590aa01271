// The graph as React Flow state, with refs that callbacks read so they never see a stale graph,
// conversion to and from the workflow file format, and the edits nodes and the palette make.
import { useEdgesState, useNodesState, useReactFlow, type Edge, type OnEdgesChange, type OnNodesChange } from "@xyflow/react";
import { useCallback, useRef, type Dispatch, type RefObject, type SetStateAction } from "react";
import type { Schema, Workflow } from "./types";
import { randomSeed } from "./seeds";
import { freeSpot } from "./placement";
import { withNativeSize } from "./nativeSize";
import { readGroups, useGroups, type Groups } from "./groups";
import { freshId, fromFlow, NODE_WIDTH, newNodeData, toFlow, type FlowNode, type NodeUi } from "./workflow";


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
  /** Starting values of new nodes per type (from the default workflow): the model it uses
   * and that model's size, rather than the schema's test-model defaults. */
  presetsRef: RefObject<Record<string, Record<string, unknown>>>;
  /** Each checkpoint's native size (GET /api/models): new latents start there. */
  nativeSizesRef: RefObject<Record<string, number>>;
  /** Select every node (Ctrl+A). */
  selectAll: () => void;
  /** Change a node's layout-only look (title, colour, collapsed). */
  setNodeUi: (nodeId: string, patch: NodeUi) => void;
  removeNode: (nodeId: string) => void;
  /** Group frames (layout only, `ui.groups`). */
  groups: Groups;
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
  const presetsRef = useRef<Record<string, Record<string, unknown>>>({});
  const nativeSizesRef = useRef<Record<string, number>>({});
  const groups = useGroups();
  const { groupsRef, setGroups } = groups;

  const currentWorkflow = useCallback(
    (withViewport = true): Workflow => {
      const doc = fromFlow(nodesRef.current, edgesRef.current, schemaRef.current, withViewport ? rf.getViewport() : null);
      if (groupsRef.current.length) doc.ui = { ...doc.ui, groups: groupsRef.current };
      return doc;
    },
    [rf, groupsRef],
  );

  const apply = useCallback(
    (doc: Workflow) => {
      const flow = toFlow(doc, schemaRef.current);
      nodesRef.current = flow.nodes;
      edgesRef.current = flow.edges;
      setNodes(flow.nodes);
      setEdges(flow.edges);
      setGroups(readGroups(doc.ui?.groups));
      return flow;
    },
    [setNodes, setEdges, setGroups],
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
        const centre = rf.screenToFlowPosition({
          x: r ? r.left + r.width / 2 : 400,
          y: r ? r.top + r.height / 2 : 300,
        });
        const height = 50 + spec.inputs.length * 28 + spec.outputs.length * 22;
        position = freeSpot(nodesRef.current, centre, { w: NODE_WIDTH, h: height });
      }
      const id = freshId(type, new Set(nodesRef.current.map((n) => n.id)));
      const preset = withNativeSize(
        spec, presetsRef.current[type], nodesRef.current, schemaRef.current, nativeSizesRef.current,
      );
      const data = newNodeData(spec, preset);
      const node: FlowNode = { id, type: "graph", position, data, selected: true };
      const next = [...nodesRef.current.map((n) => (n.selected ? { ...n, selected: false } : n)), node];
      nodesRef.current = next; // a link made right after (node search) sees the node
      setNodes(next);
      return id;
    },
    [rf, setNodes, canvasRef],
  );

  const randomizeSeeds = useCallback(() => {
    const picked: Record<string, Record<string, number | bigint>> = {};
    for (const n of nodesRef.current) {
      const spec = schemaRef.current.nodes[n.data.type];
      for (const inp of spec?.inputs ?? []) {
        if (inp.widget?.kind !== "seed" || n.data.seedControl?.[inp.name] === false) continue;
        if (!(inp.name in n.data.inputs)) continue; // linked
        (picked[n.id] ??= {})[inp.name] = randomSeed(inp);
      }
    }
    const apply = (nds: FlowNode[]) =>
      nds.map((n) =>
        picked[n.id] ? { ...n, data: { ...n.data, inputs: { ...n.data.inputs, ...picked[n.id] } } } : n,
      );
    // The ref changes at once: a batch's next run, submitted before React re-renders, reads
    // the new seeds.
    nodesRef.current = apply(nodesRef.current);
    setNodes(apply);
  }, [setNodes]);

  const selectAll = useCallback(
    () => setNodes((nds) => nds.map((n) => (n.selected ? n : { ...n, selected: true }))),
    [setNodes],
  );

  const setNodeUi = useCallback(
    (nodeId: string, patch: NodeUi) =>
      setNodes((nds) =>
        nds.map((n) => (n.id === nodeId ? { ...n, data: { ...n.data, ui: { ...n.data.ui, ...patch } } } : n)),
      ),
    [setNodes],
  );
  const removeNode = useCallback(
    (nodeId: string) => void rf.deleteElements({ nodes: [{ id: nodeId }] }),
    [rf],
  );

  return {
    groups,
    setNodeUi,
    removeNode,
    presetsRef,
    nativeSizesRef,
    selectAll,
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
