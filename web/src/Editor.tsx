// The editor: palette, React Flow canvas, toolbar, queue/history, and the test hook.
// The work is in hooks: graph state (useGraphState), links (useConnections), loading and saving
// (useWorkflowFiles), running (useRunControl), drops (useCanvasDrop) and the test hook.
import { Background, Controls, ReactFlow, type Edge } from "@xyflow/react";
import { useMemo, useRef, useState } from "react";
import { clientId } from "./clientId";
import { Ctx, type CanvasContext } from "./context";
import { nodeTypes } from "./GraphNode";
import { Lightbox, Toasts } from "./Overlays";
import { Palette } from "./Palette";
import { Sidebar } from "./Sidebar";
import { Toolbar } from "./Toolbar";
import type { Schema } from "./types";
import { useCanvasDrop } from "./useCanvasDrop";
import { useClipboard } from "./useClipboard";
import { useConnections } from "./useConnections";
import { useGraphState } from "./useGraphState";
import { useIssues } from "./useIssues";
import { useJobEvents } from "./useJobEvents";
import { useLightbox } from "./useLightbox";
import { useRunControl } from "./useRunControl";
import { useShortcuts } from "./useShortcuts";
import { useShowLoaded } from "./useShowLoaded";
import { useTestHook } from "./useTestHook";
import { useToasts } from "./useToasts";
import { useUndo } from "./useUndo";
import { useWorkflowFiles } from "./useWorkflowFiles";
import { checkWorkflowShape, type FlowNode } from "./workflow";

export function Editor({ schema, reloadSchema }: { schema: Schema; reloadSchema: () => void }) {
  const issues = useIssues();
  const { clear: clearIssues, clearField } = issues;
  const { toasts, toast, dismiss } = useToasts();
  const [historyKey, setHistoryKey] = useState(0);
  const canvasRef = useRef<HTMLDivElement>(null);

  const jobs = useJobEvents(clientId, {
    onRunFinished: (ev) => {
      setHistoryKey((k) => k + 1);
      if (ev.status === "interrupted" || ev.status === "cancelled") toast("info", `run ${ev.status}`);
    },
    onRunError: (ev) => {
      toast("error", `${String(ev.node_id ?? "run")}: ${String(ev.error_type ?? "")} ${String(ev.message ?? "")}`);
    },
  });

  const graph = useGraphState(schema, canvasRef, clearField);
  const { nodes, edges, currentWorkflow, apply, setInput, setSeedControl, addNode } = graph;
  const showLoaded = useShowLoaded(nodes, canvasRef);
  const undo = useUndo(() => currentWorkflow(false), apply, nodes, edges);
  const files = useWorkflowFiles({ graph, clearIssues, jobs, showLoaded, undo, toast, reloadSchema });
  const { loadWorkflow, openFile, save } = files;
  const { isValidConnection, onConnect } = useConnections(graph, clearField);
  const { run, cancel } = useRunControl(graph, jobs, issues, toast);
  const { copy, paste } = useClipboard(graph);
  useShortcuts({ copy, paste, undo: undo.undo, redo: undo.redo, save, run: () => void run() });
  const { onDragOver, onDrop } = useCanvasDrop(addNode, openFile);
  const [lightbox, setLightbox] = useLightbox();

  useTestHook({
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
    }),
    [schema, jobs.runState, issues.byNode, setInput, setSeedControl, setLightbox],
  );

  return (
    <Ctx.Provider value={ctx}>
      <div className="app">
        <Toolbar
          onRun={() => void run()}
          onStop={() => {
            const id = jobs.running[0] ?? jobs.active[0];
            if (id) void cancel(id);
          }}
          busy={jobs.active.length > 0}
          onOpenFile={(f) => void openFile(f)}
          onSave={save}
          examples={files.examples}
          onExample={(name) => void files.openExample(name)}
          undo={undo}
          title={files.title}
          connected={jobs.connected}
        />
        <div className="main">
          <Palette schema={schema} onAdd={(t) => addNode(t)} />
          <div className="work">
            <div className="canvas" ref={canvasRef} onDragOver={onDragOver} onDrop={onDrop}>
              <ReactFlow<FlowNode, Edge>
                nodes={nodes}
                edges={edges}
                onNodesChange={graph.onNodesChange}
                onEdgesChange={graph.onEdgesChange}
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
              workerOf={jobs.workerOf}
              refreshKey={historyKey}
              onCancel={(id) => void cancel(id)}
              onOpenImage={(url, job) => setLightbox({ url, job })}
            />
          </div>
        </div>
        <Toasts toasts={toasts} onDismiss={dismiss} />
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
