// The websocket for this tab's client_id: per-node run state, active jobs, last events.
import { useCallback, useEffect, useRef, useState } from "react";
import { eventJob } from "./api";
import { parseJson } from "./json";
import type { FileRef, NodeRunState, ServerEvent } from "./types";

const KEEP_EVENTS = 300;

export type JobEvents = {
  runState: Record<string, NodeRunState>;
  active: string[];
  running: string | null;
  /** Every running job, all clients (several run at once with several workers). */
  runningAll: string[];
  /** The worker running each job, from the server's status. */
  workerOf: Record<string, string>;
  connected: boolean;
  events: React.RefObject<ServerEvent[]>;
  addActive: (id: string) => void;
  resetRunState: () => void;
  /** The job has ended (its run_finished arrived, or the server no longer has it running). */
  isFinished: (id: string) => boolean;
};

type Hooks = {
  onRunFinished: (ev: ServerEvent) => void;
  onRunError: (ev: ServerEvent) => void;
  /** Each (re)connect's snapshot and each queue change: what happened while this tab was not
   * listening, or in other tabs, is in history. */
  onSnapshot?: (ev: ServerEvent) => void;
};

/** The ids of running jobs in a snapshot/status (`running` is an id, or a list of them). */
function runningIds(ev: ServerEvent): string[] {
  const r = ev.running;
  if (typeof r === "string") return [r];
  return Array.isArray(r) ? r.filter((x): x is string => typeof x === "string") : [];
}

/** job id -> worker name, from a snapshot/status `workers` list. */
function workersOf(ev: ServerEvent): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(ev.workers))
    for (const w of ev.workers as { name?: unknown; job?: unknown }[])
      if (typeof w?.job === "string" && typeof w.name === "string") out[w.job] = w.name;
  return out;
}

/** Run state once its job has ended: nodes that never started lose their state, the one cut
 * short shows it, and no preview stays. */
function settled(rs: Record<string, NodeRunState>): Record<string, NodeRunState> {
  const next: Record<string, NodeRunState> = {};
  for (const [id, s] of Object.entries(rs)) {
    if (s.status === "queued") continue;
    next[id] = s.status === "running" ? { ...s, status: "interrupted", preview: null } : s;
  }
  return next;
}

export function useJobEvents(clientId: string, hooks: Hooks): JobEvents {
  const [runState, setRunState] = useState<Record<string, NodeRunState>>({});
  const [active, setActive] = useState<string[]>([]);
  const [running, setRunning] = useState<string | null>(null);
  const [runningAll, setRunningAll] = useState<string[]>([]);
  const [workerOf, setWorkerOf] = useState<Record<string, string>>({});
  const [connected, setConnected] = useState(false);
  const events = useRef<ServerEvent[]>([]);
  const finished = useRef<Set<string>>(new Set());
  const runJob = useRef<string | null>(null); // the job runState shows
  const hooksRef = useRef(hooks);
  hooksRef.current = hooks;

  const handle = useCallback((ev: ServerEvent) => {
    events.current.push(ev);
    if (events.current.length > KEEP_EVENTS) events.current.splice(0, events.current.length - KEEP_EVENTS);
    const job = eventJob(ev);
    const nodeId = typeof ev.node_id === "string" ? ev.node_id : null;
    const patch = (id: string, f: (s: NodeRunState | undefined) => NodeRunState) =>
      setRunState((rs) => ({ ...rs, [id]: f(rs[id]) }));
    switch (ev.type) {
      case "snapshot": {
        // The queue is global; this tab's own jobs come in `jobs` when the server sends them.
        // Sent on every (re)connect: the server's state replaces whatever this tab still
        // showed (after a restart, the job it was following is gone).
        const queue = Array.isArray(ev.queue) ? (ev.queue as string[]) : [];
        const runs = runningIds(ev);
        const mine = Array.isArray(ev.jobs)
          ? (ev.jobs as { id: string; status: string }[])
              .filter((j) => j.status === "queued" || j.status === "running")
              .map((j) => j.id)
          : [...runs, ...queue];
        setActive(mine);
        setRunning(runs.find((r) => mine.includes(r)) ?? null);
        setRunningAll(runs);
        setWorkerOf(workersOf(ev));
        if (runJob.current && !runs.includes(runJob.current)) {
          finished.current.add(runJob.current);
          runJob.current = null;
          setRunState(settled);
        }
        hooksRef.current.onSnapshot?.(ev);
        break;
      }
      case "status": {
        // Global queue changed: drop own jobs that are neither queued nor running any more.
        const queue = Array.isArray(ev.queue) ? (ev.queue as string[]) : [];
        const runs = runningIds(ev);
        setActive((a) => a.filter((j) => runs.includes(j) || queue.includes(j)));
        setRunning((r) => (r && runs.includes(r) ? r : null));
        setRunningAll(runs);
        setWorkerOf(workersOf(ev));
        hooksRef.current.onSnapshot?.(ev); // other tabs' jobs start and end: history changed
        break;
      }
      case "queued":
        if (job) setActive((a) => (a.includes(job) ? a : [...a, job]));
        break;
      case "run_started": {
        if (job) setRunning(job);
        runJob.current = job;
        const toRun = (ev.to_run as string[]) ?? [];
        const cached = (ev.cached as string[]) ?? [];
        setRunState((rs) => {
          const next: Record<string, NodeRunState> = {};
          for (const id of toRun) next[id] = { status: "queued", files: rs[id]?.files };
          for (const id of cached) next[id] = { status: "cached", files: rs[id]?.files };
          return next;
        });
        break;
      }
      case "node_started":
        if (nodeId) patch(nodeId, (s) => ({ status: "running", fraction: 0, files: s?.files }));
        break;
      case "progress":
        if (nodeId)
          patch(nodeId, (s) => ({
            ...s,
            status: "running",
            fraction: Number(ev.fraction ?? 0),
            step: (ev.step as number | null) ?? null,
            total: (ev.total as number | null) ?? null,
            preview: (ev.preview as string | null) ?? s?.preview ?? null,
          }));
        break;
      case "node_cached":
      case "node_finished": {
        if (!nodeId) break;
        const files = (ev.files as FileRef[] | undefined) ?? [];
        const status = ev.type === "node_cached" ? "cached" : "done";
        patch(nodeId, (s) => ({ status, files: files.length ? files : s?.files }));
        break;
      }
      case "error":
        if (nodeId)
          patch(nodeId, (s) => ({
            ...s,
            status: "error",
            preview: null,
            error: {
              error_type: String(ev.error_type ?? "Error"),
              message: String(ev.message ?? ""),
              traceback: typeof ev.traceback === "string" ? ev.traceback : undefined,
            },
          }));
        hooksRef.current.onRunError(ev);
        break;
      case "run_finished":
        if (job) finished.current.add(job);
        if (job) setRunning((r) => (r === job ? null : r));
        if (job) setActive((a) => a.filter((x) => x !== job));
        if (job && runJob.current === job) runJob.current = null;
        setRunState(settled);
        hooksRef.current.onRunFinished(ev);
        break;
    }
  }, []);

  useEffect(() => {
    let ws: WebSocket | null = null;
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let delay = 500;
    const connect = () => {
      const proto = location.protocol === "https:" ? "wss" : "ws";
      ws = new WebSocket(`${proto}://${location.host}/api/ws?client_id=${encodeURIComponent(clientId)}`);
      ws.onopen = () => {
        delay = 500;
        setConnected(true);
      };
      ws.onmessage = (m) => {
        try {
          handle(parseJson(String(m.data)) as ServerEvent);
        } catch {
          /* ignore a malformed frame */
        }
      };
      ws.onclose = () => {
        setConnected(false);
        if (!stopped) {
          retry = setTimeout(connect, delay);
          delay = Math.min(delay * 2, 5000);
        }
      };
    };
    connect();
    return () => {
      stopped = true;
      clearTimeout(retry);
      ws?.close();
    };
  }, [clientId, handle]);

  const addActive = useCallback(
    (id: string) => {
      if (!finished.current.has(id)) setActive((a) => (a.includes(id) ? a : [...a, id]));
    },
    [],
  );
  const resetRunState = useCallback(() => setRunState({}), []);
  const isFinished = useCallback((id: string) => finished.current.has(id), []);
  return {
    runState,
    active,
    running,
    runningAll,
    workerOf,
    connected,
    events,
    addActive,
    resetRunState,
    isFinished,
  };
}
