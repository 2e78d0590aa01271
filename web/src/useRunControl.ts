// Submitting the graph as a job (server validation problems are marked on the nodes) and
// cancelling jobs.
import { useCallback } from "react";
import { api, ApiError } from "./api";
import { clientId } from "./clientId";
import type { Issues } from "./useIssues";
import type { GraphState } from "./useGraphState";
import type { JobEvents } from "./useJobEvents";
import type { Toasts } from "./useToasts";
import type { Workflow } from "./types";

export type RunControl = {
  /** Submit the current graph; returns the job id, or null when the server refused it. */
  run: () => Promise<string | null>;
  cancel: (id: string) => Promise<void>;
};

export function useRunControl(
  graph: Pick<GraphState, "currentWorkflow" | "randomizeSeeds">,
  jobs: JobEvents,
  issues: Pick<Issues, "show" | "clear">,
  toast: Toasts["toast"],
  /** Told of each accepted job with the workflow as submitted (its seeds are the ones used). */
  onSubmitted: (id: string, workflow: Workflow) => void = () => undefined,
): RunControl {
  const { currentWorkflow, randomizeSeeds } = graph;
  const { show: showIssues, clear: clearIssues } = issues;

  const run = useCallback(async (): Promise<string | null> => {
    const wf = currentWorkflow();
    try {
      const { id } = await api.submit(wf, clientId);
      clearIssues();
      jobs.addActive(id);
      onSubmitted(id, wf);
      randomizeSeeds();
      return id;
    } catch (e) {
      if (e instanceof ApiError) {
        const { marked: count, loose } = showIssues(e.details);
        toast(
          "error",
          `${e.message}${count ? ` (${count} problem${count > 1 ? "s" : ""} marked on the nodes)` : ""}` +
            loose.map((d) => `; ${d?.message ?? JSON.stringify(d)}`).join(""),
          "issues",
        );
      } else toast("error", `run failed: ${String((e as Error).message ?? e)}`);
      return null;
    }
  }, [currentWorkflow, jobs, randomizeSeeds, toast, showIssues, clearIssues, onSubmitted]);

  const cancel = useCallback(
    async (id: string) => {
      // Said before asking, under the job's key: the job's own end ("run interrupted") replaces
      // it, and a late answer for a job that has already ended says nothing.
      const key = `job:${id}`;
      toast("info", `stopping job ${id.slice(0, 8)}…`, key);
      try {
        const r = await api.cancel(id);
        if (r.status !== "running" && !jobs.isFinished(id)) toast("info", `job ${id.slice(0, 8)}: ${r.status}`, key);
      } catch (e) {
        if (!jobs.isFinished(id)) toast("error", `cancel failed: ${String((e as Error).message ?? e)}`, key);
      }
    },
    [toast, jobs],
  );

  return { run, cancel };
}
