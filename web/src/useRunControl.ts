// Submitting the graph as a job (server validation problems are marked on the nodes) and
// cancelling jobs.
import { useCallback } from "react";
import { api, ApiError } from "./api";
import { clientId } from "./clientId";
import type { Issues } from "./useIssues";
import type { GraphState } from "./useGraphState";
import type { JobEvents } from "./useJobEvents";
import type { Toasts } from "./useToasts";

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
): RunControl {
  const { currentWorkflow, randomizeSeeds } = graph;
  const { show: showIssues, clear: clearIssues } = issues;

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

  return { run, cancel };
}
