// The canvas: palette, React Flow editor, toolbar, queue/history, and the test hook.
import {
  Background,
  Controls,
  ReactFlow,
  ReactFlowProvider,
  useEdgesState,
  useNodesState,
  useReactFlow,
  type Connection,
  type Edge,
  type Viewport,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, ApiError, type JobSummary } from "./api";
import { Ctx, type CanvasContext } from "./context";
import { nodeTypes } from "./GraphNode";
import { DRAG_MIME, Palette } from "./Palette";
import { Sidebar } from "./Sidebar";
import type { Schema, ValidationIssue, Workflow } from "./types";
import { useJobEvents } from "./useJobEvents";
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

type Toast = { id: number; kind: "info" | "error"; text: string };

const clientId =
  typeof crypto.randomUUID === "function"
    ? crypto.randomUUID()
    : Math.random().toString(36).slice(2) + Date.now().toString(36);

const MAX_SEED = 2 ** 48;

function groupIssues(details: unknown): Record<string, ValidationIssue[]> {
  const out: Record<string, ValidationIssue[]> = {};
  if (!Array.isArray(details)) return out;
  for (const d of details as ValidationIssue[]) {
    if (d && typeof d.node_id === "string") (out[d.node_id] ??= []).push(d);
  }
  return out;
}

function Editor({ schema, reloadSchema }: { schema: Schema; reloadSchema: () => void }) {
  const rf = useReactFlow<FlowNode, Edge>();
  const [nodes, setNodes, onNodesChange] = useNodesState<FlowNode>([]);
  const [edges, setEdges, onEdgesChange] = useEdgesState<Edge>([]);
  const [issues, setIssues] = useState<Record<string, ValidationIssue[]>>({});
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [examples, setExamples] = useState<string[]>([]);
  const [historyKey, setHistoryKey] = useState(0);
  const [lightbox, setLightbox] = useState<{ url: string; job?: JobSummary } | null>(null);
  const [title, setTitle] = useState("untitled");
  const canvasRef = useRef<HTMLDivElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const pendingView = useRef<{ viewport: Viewport | null } | null>(null);
  const clipboard = useRef<{ nodes: FlowNode[]; edges: Edge[]; pastes: number } | null>(null);
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

  // Once a loaded graph is measured: keep its saved viewport when the whole graph is
  // visible with it on this screen, else fit the graph to the canvas.
  useEffect(() => {
    const pending = pendingView.current;
    if (!pending || !nodes.length || !nodes.every((n) => n.measured?.width)) return;
    pendingView.current = null;
    const vp = pending.viewport;
    const box = canvasRef.current?.getBoundingClientRect();
    if (vp && box) {
      const b = rf.getNodesBounds(nodes);
      const left = b.x * vp.zoom + vp.x;
      const top = b.y * vp.zoom + vp.y;
      const fits =
        left >= 0 && top >= 0 && left + b.width * vp.zoom <= box.width && top + b.height * vp.zoom <= box.height;
      if (fits) {
        void rf.setViewport(vp);
        return;
      }
    }
    void rf.fitView({ padding: 0.06, maxZoom: 1 });
  }, [nodes, rf]);

  const undo = useUndo(() => currentWorkflow(false), apply, nodes, edges);

  const loadWorkflow = useCallback(
    (doc: Workflow, name?: string) => {
      const flow = apply(doc);
      setIssues({});
      jobs.resetRunState();
      if (name) setTitle(name);
      pendingView.current = { viewport: flow.viewport };
      undo.commitNow();
      const unknown = [...new Set(flow.nodes.filter((n) => !schemaRef.current.nodes[n.data.type]).map((n) => n.data.type))];
      if (unknown.length) toast("error", `Unknown node types kept as placeholders: ${unknown.join(", ")}`);
    },
    [apply, jobs, rf, toast, undo],
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
      setIssues((is) => {
        if (!is[nodeId]?.some((i) => i.field === name)) return is;
        const rest = is[nodeId].filter((i) => i.field !== name);
        const next = { ...is };
        if (rest.length) next[nodeId] = rest;
        else delete next[nodeId];
        return next;
      });
    },
    [setNodes],
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
      setIssues((is) => {
        if (!is[c.target]) return is;
        const next = { ...is };
        next[c.target] = is[c.target].filter((i) => i.field !== c.targetHandle);
        if (!next[c.target].length) delete next[c.target];
        return next;
      });
    },
    [isValidConnection, setEdges, setNodes],
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
      setIssues({});
      jobs.addActive(id);
      randomizeSeeds();
      return id;
    } catch (e) {
      if (e instanceof ApiError) {
        const grouped = groupIssues(e.details);
        setIssues(grouped);
        const loose = Array.isArray(e.details)
          ? (e.details as ValidationIssue[]).filter((d) => !d || typeof d.node_id !== "string")
          : [];
        const count = Object.values(grouped).reduce((a, l) => a + l.length, 0);
        toast(
          "error",
          `${e.message}${count ? ` (${count} problem${count > 1 ? "s" : ""} marked on the nodes)` : ""}` +
            loose.map((d) => `; ${d?.message ?? JSON.stringify(d)}`).join(""),
        );
      } else toast("error", `run failed: ${String((e as Error).message ?? e)}`);
      return null;
    }
  }, [currentWorkflow, jobs, randomizeSeeds, toast]);

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

  const save = useCallback(() => {
    const blob = new Blob([JSON.stringify(currentWorkflow(), null, 2) + "\n"], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${title || "workflow"}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }, [currentWorkflow, title]);

  const copy = useCallback(() => {
    const sel = nodesRef.current.filter((n) => n.selected);
    if (!sel.length) return;
    const ids = new Set(sel.map((n) => n.id));
    clipboard.current = {
      nodes: structuredClone(sel),
      edges: edgesRef.current.filter((e) => ids.has(e.source) && ids.has(e.target)),
      pastes: 0,
    };
  }, []);

  const paste = useCallback(() => {
    const clip = clipboard.current;
    if (!clip) return;
    clip.pastes += 1;
    const taken = new Set(nodesRef.current.map((n) => n.id));
    const rename: Record<string, string> = {};
    const added: FlowNode[] = clip.nodes.map((n) => {
      const id = freshId(n.data.type, taken);
      taken.add(id);
      rename[n.id] = id;
      const off = 40 * clip.pastes;
      return { ...structuredClone(n), id, selected: true, position: { x: n.position.x + off, y: n.position.y + off } };
    });
    const allNodes = [...nodesRef.current.map((n) => ({ ...n, selected: false })), ...added];
    const addedEdges = clip.edges.map((e) =>
      makeEdge(schemaRef.current, allNodes, rename[e.source], e.sourceHandle!, rename[e.target], e.targetHandle!),
    );
    setNodes(allNodes);
    setEdges((eds) => [...eds, ...addedEdges]);
  }, [setNodes, setEdges]);

  // Keyboard: copy/paste/undo/redo (Delete/Backspace are React Flow's deleteKeyCode).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
      if (!(e.ctrlKey || e.metaKey)) return;
      const k = e.key.toLowerCase();
      if (k === "c") copy();
      else if (k === "v") paste();
      else if (k === "z" && e.shiftKey) undo.redo();
      else if (k === "z") undo.undo();
      else if (k === "y") undo.redo();
      else if (k === "s") save();
      else if (k === "enter") void run();
      else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [copy, paste, undo, save, run]);

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
      issues: () => issues,
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
      issues,
      setInput,
      setSeedControl,
      openImage: (url: string) => setLightbox({ url }),
    }),
    [schema, jobs.runState, issues, setInput, setSeedControl],
  );

  const running = jobs.active.length > 0;
  return (
    <Ctx.Provider value={ctx}>
      <div className="app">
        <header className="toolbar">
          <span className="brand">sdgraph</span>
          <button className="primary" onClick={() => void run()} title="Queue this workflow (Ctrl+Enter)">
            ▶ Run
          </button>
          <button
            onClick={() => {
              const id = jobs.running ?? jobs.active[0];
              if (id) void cancel(id);
            }}
            disabled={!running}
            title="Interrupt the running job"
          >
            ■ Stop
          </button>
          <span className="sep" />
          <button onClick={() => fileInput.current?.click()} title="Open a workflow .json or a PNG">
            Open…
          </button>
          <button onClick={save} title="Save as workflow JSON (Ctrl+S)">
            Save
          </button>
          <select
            className="examples"
            value=""
            onChange={async (e) => {
              const name = e.target.value;
              if (!name) return;
              try {
                loadWorkflow(checkWorkflowShape(await api.workflow(name)), name);
              } catch (err) {
                toast("error", `could not open ${name}: ${String((err as Error).message ?? err)}`);
              }
            }}
          >
            <option value="">Examples…</option>
            {examples.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
          <span className="sep" />
          <button onClick={undo.undo} disabled={!undo.canUndo} title="Undo (Ctrl+Z)">
            ↶
          </button>
          <button onClick={undo.redo} disabled={!undo.canRedo} title="Redo (Ctrl+Shift+Z)">
            ↷
          </button>
          <span className="wf-title">{title}</span>
          <span className={`conn ${jobs.connected ? "on" : "off"}`} title="live events connection">
            {jobs.connected ? "● live" : "○ offline"}
          </span>
          <input
            ref={fileInput}
            type="file"
            accept=".json,application/json,image/png,image/jpeg,image/webp"
            style={{ display: "none" }}
            onChange={(e) => {
              const f = e.target.files?.[0];
              if (f) void openFile(f);
              e.target.value = "";
            }}
          />
        </header>
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
              refreshKey={historyKey}
              onCancel={(id) => void cancel(id)}
              onOpenImage={(url, job) => setLightbox({ url, job })}
            />
          </div>
        </div>
        <div className="toasts">
          {toasts.map((t) => (
            <div key={t.id} className={`toast ${t.kind}`} onClick={() => setToasts((x) => x.filter((y) => y.id !== t.id))}>
              {t.text}
            </div>
          ))}
        </div>
        {lightbox && (
          <div className="lightbox" onClick={() => setLightbox(null)}>
            <img src={lightbox.url} alt="" />
            {lightbox.job?.workflow && (
              <button
                className="primary"
                onClick={(e) => {
                  e.stopPropagation();
                  loadWorkflow(checkWorkflowShape(lightbox.job!.workflow), `job ${lightbox.job!.id.slice(0, 8)}`);
                  setLightbox(null);
                }}
              >
                Load this workflow
              </button>
            )}
          </div>
        )}
      </div>
    </Ctx.Provider>
  );
}

export function App() {
  const [schema, setSchema] = useState<Schema | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(() => {
    api
      .nodes()
      .then((s) => {
        setSchema(s);
        setError(null);
      })
      .catch((e) => setError(String(e.message ?? e)));
  }, []);
  useEffect(reload, [reload]);
  if (!schema) {
    return (
      <div className="loading">
        {error ? `Could not reach the server: ${error}` : "Loading node types…"}
        {error && <button onClick={reload}>Retry</button>}
      </div>
    );
  }
  return (
    <ReactFlowProvider>
      <Editor schema={schema} reloadSchema={reload} />
    </ReactFlowProvider>
  );
}
