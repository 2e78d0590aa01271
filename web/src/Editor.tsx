// The editor: palette, React Flow canvas, toolbar, queue/history, and the test hook.
import {
  Background,
  Controls,
  ReactFlow,
  useEdgesState,
  useNodesState,
  useReactFlow,
  type Connection,
  type Edge,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, ApiError, type JobSummary } from "./api";
import { copySelection, pasteClip, type Clip } from "./clipboard";
import { Ctx, type CanvasContext } from "./context";
import { nodeTypes } from "./GraphNode";
import { Lightbox, Toasts, type Toast } from "./Overlays";
import { DRAG_MIME, Palette } from "./Palette";
import { Sidebar } from "./Sidebar";
import { Toolbar } from "./Toolbar";
import type { Schema, Workflow } from "./types";
import { useJobEvents } from "./useJobEvents";
import { useShortcuts } from "./useShortcuts";
import { useIssues } from "./useIssues";
import { useShowLoaded } from "./useShowLoaded";
import { useUndo } from "./useUndo";
import {
  checkWorkflowShape,
  freshId,
  fromFlow,
  linkInputs,
  makeEdge,
  newNodeData,
  outputType,
  toFlow,
  type FlowNode,
} from "./workflow";


/** One client id per tab, kept across reloads so the tab sees its own jobs again. */
const clientId = ((): string => {
  const key = "sdgraph.client_id";
  const fresh = () =>
    typeof crypto.randomUUID === "function"
      ? crypto.randomUUID()
      : Math.random().toString(36).slice(2) + Date.now().toString(36);
  try {
    const id = sessionStorage.getItem(key) || fresh();
    sessionStorage.setItem(key, id);
    return id;
  } catch {
    return fresh();
  }
})();

const MAX_SEED = 2 ** 48;

export function Editor({ schema, reloadSchema }: { schema: Schema; reloadSchema: () => void }) {
  const rf = useReactFlow<FlowNode, Edge>();
  const [nodes, setNodes, onNodesChange] = useNodesState<FlowNode>([]);
  const [edges, setEdges, onEdgesChange] = useEdgesState<Edge>([]);
  const issues = useIssues();
  const { show: showIssues, clear: clearIssues, clearField } = issues;
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [examples, setExamples] = useState<string[]>([]);
  const [historyKey, setHistoryKey] = useState(0);
  const [lightbox, setLightbox] = useState<{ url: string; job?: JobSummary } | null>(null);
  const [title, setTitle] = useState("untitled");
  const canvasRef = useRef<HTMLDivElement>(null);
  const clipboard = useRef<Clip | null>(null);
  const nodesRef = useRef(nodes);
  const edgesRef = useRef(edges);
  nodesRef.current = nodes;
  edgesRef.current = edges;
  const schemaRef = useRef(schema);
  schemaRef.current = schema;

  const toast = useCallback((kind: Toast["kind"], text: string) => {
    const id = Date.now() + Math.random();
    setToasts((t) => [...t.slice(-4), { id, kind, text }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), kind === "error" ? 10000 : 5000);
  }, []);

  const jobs = useJobEvents(clientId, {
    onRunFinished: (ev) => {
      setHistoryKey((k) => k + 1);
      if (ev.status === "interrupted" || ev.status === "cancelled") toast("info", `run ${ev.status}`);
    },
    onRunError: (ev) => {
      toast("error", `${String(ev.node_id ?? "run")}: ${String(ev.error_type ?? "")} ${String(ev.message ?? "")}`);
    },
  });

  /** The current graph in the workflow file format. */
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

  const showLoaded = useShowLoaded(nodes, canvasRef);

  const undo = useUndo(() => currentWorkflow(false), apply, nodes, edges);

  const loadWorkflow = useCallback(
    (doc: Workflow, name?: string) => {
      const flow = apply(doc);
      clearIssues();
      jobs.resetRunState();
      if (name) setTitle(name);
      showLoaded(flow.viewport);
      undo.commitNow();
      const unknown = [...new Set(flow.nodes.filter((n) => !schemaRef.current.nodes[n.data.type]).map((n) => n.data.type))];
      if (unknown.length) toast("error", `Unknown node types kept as placeholders: ${unknown.join(", ")}`);
    },
    [apply, jobs, showLoaded, toast, undo, clearIssues],
  );

  // Start with the default workflow (txt2img) and the list of examples.
  useEffect(() => {
    let live = true;
    api
      .workflows()
      .then(async (r) => {
        if (!live) return;
        const names = r.workflows ?? [];
        setExamples(names);
        const first = names.includes("txt2img") ? "txt2img" : names[0];
        if (first) loadWorkflow(checkWorkflowShape(await api.workflow(first)), first);
      })
      .catch((e) => toast("error", `could not load the default workflow: ${e.message ?? e}`));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

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
    [rf, setNodes],
  );

  /** The only link rule: the server's `accepts` list, and one link per input. */
  const isValidConnection = useCallback((c: Connection | Edge) => {
    if (!c.source || !c.target || c.source === c.target || !c.targetHandle) return false;
    const src = nodesRef.current.find((n) => n.id === c.source);
    const dst = nodesRef.current.find((n) => n.id === c.target);
    const type = outputType(schemaRef.current, src, c.sourceHandle ?? null);
    const spec = dst && schemaRef.current.nodes[dst.data.type];
    const input = spec && linkInputs(spec).find((i) => i.name === c.targetHandle);
    if (!type || !input || !(input.accepts ?? []).includes(type)) return false;
    return !edgesRef.current.some((e) => e.target === c.target && e.targetHandle === c.targetHandle);
  }, []);

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
    [isValidConnection, setEdges, setNodes, clearField],
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

  const run = useCallback(async (): Promise<string | null> => {
    const wf = currentWorkflow();
    try {
      const { id } = await api.submit(wf, clientId);
      clearIssues();
      jobs.addActive(id);
      randomizeSeeds();
      return id;
    } catch (e) {
      if (e instanceof ApiError) {
        const { marked: count, loose } = showIssues(e.details);
        toast(
          "error",
          `${e.message}${count ? ` (${count} problem${count > 1 ? "s" : ""} marked on the nodes)` : ""}` +
            loose.map((d) => `; ${d?.message ?? JSON.stringify(d)}`).join(""),
        );
      } else toast("error", `run failed: ${String((e as Error).message ?? e)}`);
      return null;
    }
  }, [currentWorkflow, jobs, randomizeSeeds, toast, showIssues, clearIssues]);

  const cancel = useCallback(
    async (id: string) => {
      try {
        const r = await api.cancel(id);
        toast("info", r.status === "running" ? `stopping job ${id.slice(0, 8)}…` : `job ${id.slice(0, 8)}: ${r.status}`);
      } catch (e) {
        toast("error", `cancel failed: ${String((e as Error).message ?? e)}`);
      }
    },
    [toast],
  );

  const openFile = useCallback(
    async (file: File) => {
      try {
        const isJson = file.type === "application/json" || /\.json$/i.test(file.name);
        if (isJson) {
          const doc = checkWorkflowShape(JSON.parse(await file.text()));
          loadWorkflow(doc, file.name.replace(/\.json$/i, ""));
          toast("info", `opened ${file.name}`);
          return;
        }
        if (!file.type.startsWith("image/") && !/\.(png|jpe?g|webp)$/i.test(file.name)) {
          throw new Error("drop a workflow .json or an image");
        }
        // A PNG may carry a workflow (SaveImage embeds one): read it without storing the image.
        const isPng = file.type === "image/png" || /\.png$/i.test(file.name);
        const peek = isPng ? await api.upload(file, false) : null;
        if (peek?.workflow) {
          loadWorkflow(checkWorkflowShape(peek.workflow), file.name.replace(/\.\w+$/, ""));
          toast("info", `loaded the workflow embedded in ${file.name}`);
          return;
        }
        if (peek?.workflow_error) throw new Error(`its embedded workflow is not valid: ${peek.workflow_error}`);
        const r = await api.upload(file);
        reloadSchema(); // the input image lists now hold it
        toast("info", `${file.name} has no workflow; added to the input images as “${r.name}”`);
      } catch (e) {
        toast("error", `could not open ${file.name}: ${String((e as Error).message ?? e)}`);
      }
    },
    [loadWorkflow, reloadSchema, toast],
  );

  const openExample = useCallback(
    async (name: string) => {
      try {
        loadWorkflow(checkWorkflowShape(await api.workflow(name)), name);
      } catch (err) {
        toast("error", `could not open ${name}: ${String((err as Error).message ?? err)}`);
      }
    },
    [loadWorkflow, toast],
  );

  const save = useCallback(() => {
    const blob = new Blob([JSON.stringify(currentWorkflow(), null, 2) + "\n"], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${title || "workflow"}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }, [currentWorkflow, title]);

  const copy = useCallback(() => {
    const clip = copySelection(nodesRef.current, edgesRef.current);
    if (clip) clipboard.current = clip;
  }, []);

  const paste = useCallback(() => {
    if (!clipboard.current) return;
    const out = pasteClip(clipboard.current, nodesRef.current, schemaRef.current);
    setNodes(out.nodes);
    setEdges((eds) => [...eds, ...out.edges]);
  }, [setNodes, setEdges]);

  useShortcuts({ copy, paste, undo: undo.undo, redo: undo.redo, save, run: () => void run() });

  const onDrop = useCallback(
    (e: React.DragEvent) => {
      e.preventDefault();
      const type = e.dataTransfer.getData(DRAG_MIME);
      if (type) {
        const at = rf.screenToFlowPosition({ x: e.clientX, y: e.clientY });
        addNode(type, at);
        return;
      }
      const file = e.dataTransfer.files?.[0];
      if (file) void openFile(file);
    },
    [rf, addNode, openFile],
  );

  // Job lists carry no workflow: fetch the job's detail when its image is opened.
  useEffect(() => {
    const job = lightbox?.job;
    if (!job || job.workflow) return;
    let live = true;
    api
      .job(job.id)
      .then((d) => live && setLightbox((l) => (l && l.job?.id === d.id ? { ...l, job: d } : l)))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [lightbox]);

  // Test hook: the graph in the file format, the last events, and helpers.
  useEffect(() => {
    (window as unknown as { __app: unknown }).__app = {
      ready: true,
      clientId,
      schema,
      workflow: () => currentWorkflow(),
      load: (doc: unknown) => loadWorkflow(checkWorkflowShape(doc)),
      events: jobs.events.current,
      lastEvents: (n = 50) => jobs.events.current!.slice(-n),
      runState: () => jobs.runState,
      activeJobs: () => jobs.active,
      issues: () => issues.byNode,
      connected: () => jobs.connected,
      run,
      cancel,
      setInput,
      addNode,
      undo: undo.undo,
      redo: undo.redo,
      openFile,
    };
  });

  const ctx: CanvasContext = useMemo(
    () => ({
      schema,
      runState: jobs.runState,
      issues: issues.byNode,
      setInput,
      setSeedControl,
      openImage: (url: string) => setLightbox({ url }),
    }),
    [schema, jobs.runState, issues.byNode, setInput, setSeedControl],
  );

  return (
    <Ctx.Provider value={ctx}>
      <div className="app">
        <Toolbar
          onRun={() => void run()}
          onStop={() => {
            const id = jobs.running ?? jobs.active[0];
            if (id) void cancel(id);
          }}
          busy={jobs.active.length > 0}
          onOpenFile={(f) => void openFile(f)}
          onSave={save}
          examples={examples}
          onExample={(name) => void openExample(name)}
          undo={undo}
          title={title}
          connected={jobs.connected}
        />
        <div className="main">
          <Palette schema={schema} onAdd={(t) => addNode(t)} />
          <div className="work">
            <div
              className="canvas"
              ref={canvasRef}
              onDragOver={(e) => {
                e.preventDefault();
                e.dataTransfer.dropEffect = "copy";
              }}
              onDrop={onDrop}
            >
              <ReactFlow<FlowNode, Edge>
                nodes={nodes}
                edges={edges}
                onNodesChange={onNodesChange}
                onEdgesChange={onEdgesChange}
                onConnect={onConnect}
                isValidConnection={isValidConnection}
                nodeTypes={nodeTypes}
                deleteKeyCode={["Delete", "Backspace"]}
                minZoom={0.1}
                maxZoom={2}
                colorMode="dark"
              >
                <Background gap={20} />
                <Controls />
              </ReactFlow>
            </div>
            <Sidebar
              active={jobs.active}
              running={jobs.running}
              refreshKey={historyKey}
              onCancel={(id) => void cancel(id)}
              onOpenImage={(url, job) => setLightbox({ url, job })}
            />
          </div>
        </div>
        <Toasts toasts={toasts} onDismiss={(id) => setToasts((x) => x.filter((y) => y.id !== id))} />
        {lightbox && (
          <Lightbox
            url={lightbox.url}
            job={lightbox.job}
            onClose={() => setLightbox(null)}
            onLoad={(job) => {
              loadWorkflow(checkWorkflowShape(job.workflow), `job ${job.id.slice(0, 8)}`);
              setLightbox(null);
            }}
          />
        )}
      </div>
    </Ctx.Provider>
  );
}

