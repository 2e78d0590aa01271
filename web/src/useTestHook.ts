// Test hook: `window.__app` exposes the graph in the file format, the last events, and
// actions, so browser tests read and drive the editor without scraping the DOM.
import { useEffect } from "react";
import { clientId } from "./clientId";
import type { Toast } from "./Overlays";
import type { Schema, ValidationIssue, Workflow } from "./types";
import type { JobEvents } from "./useJobEvents";
import type { RunControl } from "./useRunControl";
import type { Undo } from "./useUndo";
import { checkWorkflowShape } from "./workflow";

type Editor = {
  toasts: Toast[];
  schema: Schema;
  currentWorkflow: () => Workflow;
  loadWorkflow: (doc: Workflow) => void;
  jobs: JobEvents;
  issues: Record<string, ValidationIssue[]>;
  run: RunControl["run"];
  cancel: RunControl["cancel"];
  setInput: (nodeId: string, name: string, value: unknown) => void;
  addNode: (type: string, at?: { x: number; y: number }) => string | null;
  undo: Undo;
  openFile: (file: File) => Promise<void>;
};

/** Refreshed after every render, so the getters always read this render's state. Only in the
 * test build (`vite build --mode test`, web/dist-test): production bundles leave it out. */
export function useTestHook(e: Editor): void {
  useEffect(() => {
    if (import.meta.env.MODE !== "test") return;
    (window as unknown as { __app: unknown }).__app = {
      ready: true,
      clientId,
      schema: e.schema,
      workflow: () => e.currentWorkflow(),
      load: (doc: unknown) => e.loadWorkflow(checkWorkflowShape(doc)),
      events: e.jobs.events.current,
      lastEvents: (n = 50) => e.jobs.events.current!.slice(-n),
      runState: () => e.jobs.runState,
      activeJobs: () => e.jobs.active,
      issues: () => e.issues,
      connected: () => e.jobs.connected,
      run: e.run,
      cancel: e.cancel,
      setInput: e.setInput,
      addNode: e.addNode,
      undo: e.undo.undo,
      redo: e.undo.redo,
      openFile: e.openFile,
      toasts: () => e.toasts.map((t) => t.text),
    };
  });
}
