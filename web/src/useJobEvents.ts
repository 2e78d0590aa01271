// The websocket for this tab's client_id: per-node run state, active jobs, last events.
import { useCallback, useEffect, useRef, useState } from "react";
import { eventJob } from "./api";
import type { FileRef, NodeRunState, ServerEvent } from "./types";

const KEEP_EVENTS = 300;

export type JobEvents = {
  runState: Record<string, NodeRunState>;
  active: string[];
  running: string[];
  workerOf: Record<string, string>;
  connected: boolean;
  events: React.RefObject<ServerEvent[]>;
  addActive: (id: string) => void;
  resetRunState: () => void;
};

type Hooks = { onRunFinished: (ev: ServerEvent) => void; onRunError: (ev: ServerEvent) => void };

export function useJobEvents(clientId: string, hooks: Hooks): JobEvents {
  const [runState, setRunState] = useState<Record<string, NodeRunState>>({});
  const [active, setActive] = useState<string[]>([]);
  const [running, setRunning] = useState<string[]>([]);
  const [workerOf, setWorkerOf] = useState<Record<string, string>>({});
  const [connected, setConnected] = useState(false);
  const events = useRef<ServerEvent[]>([]);
  const finished = useRef<Set<string>>(new Set());
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
        // Several jobs may run at once (one per worker).
        const queue = Array.isArray(ev.queue) ? (ev.queue as string[]) : [];
        const run = runningOf(ev);
        const mine = Array.isArray(ev.jobs)
          ? (ev.jobs as { id: string; status: string }[])
              .filter((j) => j.status === "queued" || j.status === "running")
              .map((j) => j.id)
          : [...run, ...queue];
        setActive(mine);
        setRunning(run.filter((j) => mine.includes(j)));
        setWorkerOf(workersOf(ev));
        break;
      }
      case "status": {
        // Global queue changed: drop own jobs that are neither queued nor running any more.
        const queue = Array.isArray(ev.queue) ? (ev.queue as string[]) : [];
        const run = runningOf(ev);
        setActive((a) => a.filter((j) => run.includes(j) || queue.includes(j)));
        setRunning((r) => r.filter((j) => run.includes(j)));
        setWorkerOf(workersOf(ev));
        break;
      }
      case "requeued":
        // Its worker died: the job waits for another run.
        if (job) setRunning((r) => r.filter((x) => x !== job));
        break;
      case "queued":
        if (job) setActive((a) => (a.includes(job) ? a : [...a, job]));
        break;
      case "run_started": {
        if (job) setRunning((r) => (r.includes(job) ? r : [...r, job]));
        if (job && typeof ev.worker === "string") {
          const worker = ev.worker;
          setWorkerOf((w) => ({ ...w, [job]: worker }));
        }
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
        if (job) setRunning((r) => r.filter((x) => x !== job));
        if (job) setActive((a) => a.filter((x) => x !== job));
        // Nodes that never started lose their state; the one cut short shows it.
        setRunState((rs) => {
          const next: Record<string, NodeRunState> = {};
          for (const [id, s] of Object.entries(rs)) {
            if (s.status === "queued") continue;
            next[id] = s.status === "running" ? { ...s, status: "interrupted", preview: null } : s;
          }
          return next;
        });
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
          handle(JSON.parse(String(m.data)) as ServerEvent);
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
  return { runState, active, running, workerOf, connected, events, addActive, resetRunState };
}

function runningOf(ev: ServerEvent): string[] {
  if (Array.isArray(ev.running))
    return (ev.running as unknown[]).filter((j): j is string => typeof j === "string");
  return typeof ev.running === "string" ? [ev.running] : [];
}

function workersOf(ev: ServerEvent): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(ev.workers))
    for (const w of ev.workers as { name?: unknown; job?: unknown }[])
      if (typeof w?.job === "string" && typeof w.name === "string") out[w.job] = w.name;
  return out;
}
