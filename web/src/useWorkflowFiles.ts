// Loading and saving workflows: the default one at start, examples, dropped or opened files
// (a .json of ours or ComfyUI's, or a PNG that may embed a workflow from us, ComfyUI or
// A1111: the server converts), and download as a .json file.
import type { Viewport } from "@xyflow/react";
import { useCallback, useEffect, useState } from "react";
import { api } from "./api";
import type { Workflow } from "./types";
import type { GraphState } from "./useGraphState";
import type { JobEvents } from "./useJobEvents";
import type { Toasts } from "./useToasts";
import { readAutosave, type Undo } from "./useUndo";
import { parseJson, stringifyJson } from "./json";
import { checkWorkflowShape } from "./workflow";

export type WorkflowFiles = {
  title: string;
  examples: string[];
  /** Replace the graph with `doc`, reset run state and issues, and start a new undo point. */
  loadWorkflow: (doc: Workflow, name?: string) => void;
  openFile: (file: File) => Promise<void>;
  openExample: (name: string) => Promise<void>;
  save: () => void;
};

type Deps = {
  graph: Pick<GraphState, "apply" | "currentWorkflow" | "schemaRef">;
  clearIssues: () => void;
  /** Mark problems on their nodes (a missing model on its loader). */
  showIssues: (details: unknown) => unknown;
  jobs: JobEvents;
  showLoaded: (viewport: Viewport | null) => void;
  undo: Undo;
  toast: Toasts["toast"];
  reloadSchema: () => void;
  /** The open document's name (kept by the editor, so undo can restore it). */
  naming: { title: string; setTitle: (title: string) => void };
};

export function useWorkflowFiles({
  graph,
  clearIssues,
  showIssues,
  jobs,
  showLoaded,
  undo,
  toast,
  reloadSchema,
  naming,
}: Deps): WorkflowFiles {
  const { apply, currentWorkflow, schemaRef } = graph;
  const [examples, setExamples] = useState<string[]>([]);
  const { title, setTitle } = naming;

  const loadWorkflow = useCallback(
    (doc: Workflow, name?: string) => {
      const flow = apply(doc);
      clearIssues();
      jobs.resetRunState();
      if (name) setTitle(name);
      showLoaded(flow.viewport);
      undo.markClean();
      const unknown = [...new Set(flow.nodes.filter((n) => !schemaRef.current.nodes[n.data.type]).map((n) => n.data.type))];
      if (unknown.length) toast("error", `Unknown node types kept as placeholders: ${unknown.join(", ")}`);
    },
    [apply, jobs, showLoaded, toast, undo, clearIssues, schemaRef, setTitle],
  );

  // Start with what was open in this browser (autosaved), else the default workflow (txt2img).
  useEffect(() => {
    let live = true;
    let restored = false;
    const saved = readAutosave();
    if (saved) {
      try {
        loadWorkflow(checkWorkflowShape(saved.doc), saved.title);
        if (saved.dirty) undo.markClean(false);
        restored = true;
      } catch {
        /* a damaged autosave: start from the default workflow */
      }
    }
    api
      .workflows()
      .then(async (r) => {
        if (!live) return;
        const names = r.workflows ?? [];
        setExamples(names);
        const first = names.includes("txt2img") ? "txt2img" : names[0];
        if (first && !restored) loadWorkflow(checkWorkflowShape(await api.workflow(first)), first);
      })
      .catch((e) => toast("error", `could not load the default workflow: ${e.message ?? e}`));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const openFile = useCallback(
    async (file: File) => {
      try {
        const isJson = file.type === "application/json" || /\.json$/i.test(file.name);
        if (isJson) {
          // The server converts ComfyUI's formats and points model names at local files
          // with the same content (the file's models section).
          const converted = await api.importWorkflow(parseJson(await file.text()));
          const doc = checkWorkflowShape(converted.workflow);
          loadWorkflow(doc, file.name.replace(/\.json$/i, ""));
          const how = converted.source === "sdgraph" ? "opened" : `imported (${converted.source})`;
          toast("info", `${how} ${file.name}`);
          for (const w of converted.warnings) toast("info", w);
          if (converted.problems.length) {
            showIssues(converted.problems); // e.g. model_missing, on the loader node
            toast("error", converted.problems.map((p) => p.message).join("; "));
          }
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
    [loadWorkflow, reloadSchema, toast, showIssues],
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

  const save = useCallback(async () => {
    // The server adds each model file's sha256 and size (the models section), so the file
    // finds the same models on another machine; saved as is when the server cannot.
    let doc = currentWorkflow();
    try {
      doc = (await api.importWorkflow(doc)).workflow;
    } catch {
      toast("info", "saved without model hashes (the server did not answer)");
    }
    const blob = new Blob([stringifyJson(doc, 2) + "\n"], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${title || "workflow"}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    undo.markClean();
  }, [currentWorkflow, title, toast, undo]);

  return { title, examples, loadWorkflow, openFile, openExample, save };
}
