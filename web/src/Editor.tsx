// The editor: palette, React Flow canvas, toolbar, queue/history, and the test hook.
// The work is in hooks: graph state (useGraphState), links (useConnections), loading and saving
// (useWorkflowFiles), running (useRunControl), drops (useCanvasDrop) and the test hook.
import { Background, Controls, MiniMap, ReactFlow, type Edge } from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { clientId } from "./clientId";
import { Ctx, type CanvasContext } from "./context";
import { nodeTypes } from "./GraphNode";
import { edgeTypes, RerouteCtx } from "./RerouteEdge";
import { GroupLayer } from "./Groups";
import { useGroupEditing } from "./useGroupEditing";
import { NodeMenu } from "./NodeMenu";
import { NodeRulesMenu } from "./NodeRulesMenu";
import { useNodeRules } from "./useNodeRules";
import { NodeSearch } from "./NodeSearch";
import { useNodeSearch } from "./useNodeSearch";
import { Lightbox, Toasts } from "./Overlays";
import { Palette } from "./Palette";
import { Sidebar } from "./Sidebar";
import { Toolbar } from "./Toolbar";
import type { NodeRunState, Schema, Workflow } from "./types";
import { eventJob } from "./api";
import { useCanvasDrop } from "./useCanvasDrop";
import { useClipboard } from "./useClipboard";
import { literalParams, seedLabel, seedsOf } from "./seeds";
import { useConnections } from "./useConnections";
import { useDocumentState, useTitle } from "./useDocument";
import { useGraphState } from "./useGraphState";
import { useIssues } from "./useIssues";
import { useJobEvents } from "./useJobEvents";
import { useLightbox, type ShownImage } from "./useLightbox";
import { Compare } from "./Compare";
import { useNativeSizes, usePresets } from "./usePresets";
import { useRunControl } from "./useRunControl";
import { useShortcuts } from "./useShortcuts";
import { useShowLoaded } from "./useShowLoaded";
import { useTestHook } from "./useTestHook";
import { useToasts } from "./useToasts";
import { useUndo, type DocState } from "./useUndo";
import { useWorkflowFiles } from "./useWorkflowFiles";
import { checkWorkflowShape, type FlowNode } from "./workflow";

/** How far the running job is: finished nodes plus the running node's share, of all nodes. */
function jobProgress(rs: Record<string, NodeRunState>): number | null {
  const states = Object.values(rs);
  if (!states.some((s) => s.status === "running" || s.status === "queued")) return null;
  const done = states.filter((s) => s.status === "done" || s.status === "cached").length;
  const running = states.find((s) => s.status === "running")?.fraction ?? 0;
  return (done + running) / states.length;
}

export function Editor({ schema, reloadSchema }: { schema: Schema; reloadSchema: () => void }) {
  const issues = useIssues();
  const { clear: clearIssues, clearField } = issues;
  const { toasts, toast, dismiss, dismissKey } = useToasts();
  const [historyKey, setHistoryKey] = useState(0);
  const canvasRef = useRef<HTMLDivElement>(null);
  // The seeds the last submitted run used (randomising changes the widgets right after).
  const [lastRun, setLastRun] = useState<{ seeds: Record<string, Record<string, unknown>>; label: string }>({
    seeds: {},
    label: "",
  });

  const jobs = useJobEvents(clientId, {
    onRunFinished: (ev) => {
      setHistoryKey((k) => k + 1);
      const key = `job:${String(eventJob(ev))}`;
      if (ev.status === "interrupted" || ev.status === "cancelled") toast("info", `run ${ev.status}`, key);
      else dismissKey(key);
    },
    onRunError: (ev) => {
      toast(
        "error",
        `${String(ev.node_id ?? "run")}: ${String(ev.error_type ?? "")} ${String(ev.message ?? "")}`,
        `job:${String(eventJob(ev))}`,
      );
    },
    onSnapshot: () => setHistoryKey((k) => k + 1),
  });

  // Validation toasts go once every marked problem is fixed (not when there were none marked).
  const marked = useRef(0);
  useEffect(() => {
    const now = Object.keys(issues.byNode).length;
    if (marked.current > 0 && now === 0) dismissKey("issues");
    marked.current = now;
  }, [issues.byNode, dismissKey]);

  const graph = useGraphState(schema, canvasRef, clearField);
  const { nodes, edges, currentWorkflow, apply, setInput, setSeedControl, addNode } = graph;
  usePresets(graph.presetsRef);
  useNativeSizes(graph.nativeSizesRef, schema);
  const showLoaded = useShowLoaded(nodes, canvasRef);
  const naming = useTitle();
  const { setTitle, titleRef } = naming;
  const undo = useUndo(
    () => ({ doc: currentWorkflow(false), title: titleRef.current }),
    useCallback(
      (s: DocState) => {
        apply(s.doc);
        setTitle(s.title);
      },
      [apply, setTitle],
    ),
    nodes,
    edges,
  );
  useDocumentState(naming.title, undo.dirty);
  const files = useWorkflowFiles({
    graph,
    clearIssues,
    showIssues: issues.show,
    jobs,
    showLoaded,
    undo,
    toast,
    reloadSchema,
    naming,
  });
  const { loadWorkflow, openFile, save } = files;
  const links = useConnections(graph, clearField);
  const { isValidConnection, onConnect } = links;
  const rules = useNodeRules(graph); // bypass / mute, widgets converted to inputs
  const search = useNodeSearch(graph, onConnect);
  const [menu, setMenu] = useState<{ x: number; y: number; id: string } | null>(null);
  const menuNode = menu ? nodes.find((n) => n.id === menu.id) : undefined;
  const [jobNames, setJobNames] = useState<Record<string, string>>({});
  const onSubmitted = useCallback(
    (id: string, wf: Workflow) => {
      setLastRun({ seeds: seedsOf(schema, wf), label: seedLabel(schema, wf) });
      setJobNames((m) => ({ ...m, [id]: titleRef.current }));
    },
    [schema, titleRef],
  );
  const { run, cancel } = useRunControl(graph, jobs, issues, toast, onSubmitted);
  const [batch, setBatch] = useState(1);
  // N runs: each submitted after the last was accepted (and its seeds randomised).
  const runBatch = useCallback(async () => {
    for (let i = 0; i < batch; i++) if (!(await run())) return;
  }, [batch, run]);
  const { copy, paste } = useClipboard(graph);
  useShortcuts({
    copy,
    paste,
    undo: undo.undo,
    redo: undo.redo,
    save,
    run: () => void runBatch(),
    selectAll: graph.selectAll,
    bypass: () => rules.toggleMode("bypass"),
    mute: () => rules.toggleMode("mute"),
  });
  const { onDragOver, onDrop } = useCanvasDrop(addNode, openFile);
  const grouping = useGroupEditing(graph, undo.commitNow);
  const [lightbox, setLightbox] = useLightbox();
  const [compare, setCompare] = useState<{ list: ShownImage[]; a: number } | null>(null);
  const closeLightbox = useCallback(() => setLightbox(null), [setLightbox]);

  useTestHook({
    toasts,
    schema,
    currentWorkflow,
    loadWorkflow,
    jobs,
    issues: issues.byNode,
    run,
    cancel,
    setInput,
    addNode,
    undo,
    openFile,
  });

  const ctx: CanvasContext = useMemo(
    () => ({
      schema,
      runState: jobs.runState,
      issues: issues.byNode,
      setInput,
      setSeedControl,
      openImage: (url: string) => setLightbox({ url }),
      lastRun,
    }),
    [schema, jobs.runState, issues.byNode, setInput, setSeedControl, setLightbox, lastRun],
  );

  return (
    <Ctx.Provider value={ctx}>
      <div className="app">
        <Toolbar
          onRun={() => void runBatch()}
          batch={batch}
          onBatch={setBatch}
          onStop={() => {
            const id = jobs.running ?? jobs.active[0];
            if (id) void cancel(id);
          }}
          busy={jobs.active.length > 0}
          onOpenFile={(f) => void openFile(f)}
          onSave={save}
          examples={files.examples}
          onExample={(name) => void files.openExample(name)}
          undo={undo}
          title={files.title}
          dirty={undo.dirty}
          connected={jobs.connected}
        />
        <div className="main">
          <Palette schema={schema} onAdd={(t) => addNode(t)} />
          <div className="work">
            <div
              className="canvas"
              ref={canvasRef}
              onDragOver={onDragOver}
              onDrop={onDrop}
              onDoubleClick={search.onPaneDoubleClick}
            >
              <RerouteCtx.Provider value={graph.setEdges}>
              <ReactFlow<FlowNode, Edge>
                nodes={nodes}
                edges={edges}
                onNodesChange={graph.onNodesChange}
                onEdgesChange={graph.onEdgesChange}
                onConnect={onConnect}
                onConnectEnd={search.onConnectEnd}
                edgesReconnectable
                onReconnectStart={links.onReconnectStart}
                onReconnect={links.onReconnect}
                onReconnectEnd={links.onReconnectEnd}
                onNodeContextMenu={(e, n) => {
                  e.preventDefault();
                  setMenu({ x: e.clientX, y: e.clientY, id: n.id });
                }}
                zoomOnDoubleClick={false}
                isValidConnection={isValidConnection}
                nodeTypes={nodeTypes}
                edgeTypes={edgeTypes}
                deleteKeyCode={["Delete", "Backspace"]}
                minZoom={0.1}
                maxZoom={2}
                colorMode="system"
              >
                <Background gap={20} />
                <Controls />
                <MiniMap pannable zoomable className="minimap" ariaLabel="Minimap" />
                <GroupLayer {...grouping.layer} />
              </ReactFlow>
              </RerouteCtx.Provider>
            </div>
            <Sidebar
              schema={schema}
              names={jobNames}
              progress={jobProgress(jobs.runState)}
              onClear={() => jobs.active.filter((id) => id !== jobs.running).forEach((id) => void cancel(id))}
              active={jobs.active}
              running={jobs.running}
              runningAll={jobs.runningAll}
              workerOf={jobs.workerOf}
              refreshKey={historyKey}
              onCancel={(id) => void cancel(id)}
              onOpenImage={(url, job, list) => setLightbox({ url, job, list, index: list.findIndex((i) => i.url === url) })}
            />
          </div>
        </div>
        <Toasts toasts={toasts} onDismiss={dismiss} />
        {menu && menuNode && (
          <NodeMenu
            x={menu.x}
            y={menu.y}
            nodeId={menu.id}
            ui={menuNode.data.ui ?? {}}
            defaultTitle={schema.nodes[menuNode.data.type]?.title || menuNode.data.type}
            onChange={(patch) => graph.setNodeUi(menu.id, patch)}
            onDelete={() => graph.removeNode(menu.id)}
            onClose={() => setMenu(null)}
            onGroup={() => grouping.groupSelected(menu.id)}
          >
            <NodeRulesMenu
              node={menuNode}
              spec={schema.nodes[menuNode.data.type]}
              rules={rules}
              onClose={() => setMenu(null)}
            />
          </NodeMenu>
        )}
        {grouping.menu}
        {search.request && (
          <NodeSearch {...search.request} schema={schema} onPick={search.pick} onClose={search.close} />
        )}
        {lightbox && (
          <Lightbox
            url={lightbox.url}
            job={lightbox.job}
            seeds={lightbox.job?.workflow ? seedLabel(schema, lightbox.job.workflow) : lastRun.label}
            params={literalParams(schema, lightbox.job?.workflow)}
            onStep={
              lightbox.list
                ? (by) =>
                    setLightbox((l) => {
                      if (!l?.list || l.index === undefined) return l;
                      const index = Math.max(0, Math.min(l.list.length - 1, l.index + by));
                      return { ...l.list[index], list: l.list, index };
                    })
                : undefined
            }
            canStep={
              lightbox.list && lightbox.index !== undefined
                ? { prev: lightbox.index > 0, next: lightbox.index < lightbox.list.length - 1 }
                : undefined
            }
            onClose={closeLightbox}
            onCompare={
              lightbox.list && lightbox.list.length > 1
                ? () => {
                    setCompare({ list: lightbox.list!, a: lightbox.index ?? 0 });
                    setLightbox(null);
                  }
                : undefined
            }
            onLoad={(job) => {
              loadWorkflow(checkWorkflowShape(job.workflow), `job ${job.id.slice(0, 8)}`);
              setLightbox(null);
            }}
          />
        )}
        {compare && <Compare {...compare} onClose={() => setCompare(null)} />}
      </div>
    </Ctx.Provider>
  );
}
