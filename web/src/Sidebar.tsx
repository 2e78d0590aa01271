// Queue (with cancel) and history gallery of past jobs with their output images and the
// seeds they ran with (job lists carry no workflow: each job's detail is fetched once).
import { useEffect, useRef, useState } from "react";
import { api, type JobSummary } from "./api";
import { seedLabel } from "./seeds";
import type { Schema } from "./types";

type Props = {
  schema: Schema;
  active: string[];
  running: string | null;
  /** Every running job (several with several workers) and the worker running each. */
  runningAll: string[];
  workerOf: Record<string, string>;
  /** Names of this tab's jobs (the workflow's name when it was queued). */
  names: Record<string, string>;
  /** Progress of the running job, 0..1 (nodes done plus the running node's share). */
  progress: number | null;
  onClear: () => void;
  refreshKey: number;
  onCancel: (id: string) => void;
  onOpenImage: (url: string, job: JobSummary, list: { url: string; job: JobSummary }[]) => void;
};

function fmtTime(t: number | string | null | undefined): string {
  if (t === null || t === undefined) return "";
  const d = typeof t === "number" ? new Date(t < 1e12 ? t * 1000 : t) : new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleTimeString();
}

export function Sidebar(p: Props) {
  const { schema, active, running, refreshKey, onCancel, onOpenImage, names, progress, onClear } = p;
  const { runningAll, workerOf } = p;
  const [jobs, setJobs] = useState<JobSummary[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [seeds, setSeeds] = useState<Record<string, string>>({});
  const asked = useRef<Set<string>>(new Set());
  useEffect(() => {
    let live = true;
    api
      .jobs(30)
      .then((r) => {
        if (live) {
          setJobs(r.jobs ?? []);
          setError(null);
        }
      })
      .catch((e) => live && setError(String(e.message ?? e)));
    return () => {
      live = false;
    };
  }, [refreshKey]);
  useEffect(() => {
    for (const job of jobs) {
      if (asked.current.has(job.id)) continue;
      asked.current.add(job.id);
      api
        .job(job.id)
        .then((d) => setSeeds((s) => ({ ...s, [job.id]: seedLabel(schema, d.workflow) })))
        .catch(() => asked.current.delete(job.id));
    }
  }, [jobs, schema]);
  const gallery = useRef<HTMLDivElement>(null);
  // A vertical wheel scrolls the strip sideways (a plain mouse has no horizontal wheel).
  useEffect(() => {
    const el = gallery.current;
    if (!el) return;
    const onWheel = (e: WheelEvent) => {
      if (Math.abs(e.deltaY) <= Math.abs(e.deltaX) || el.scrollWidth <= el.clientWidth) return;
      e.preventDefault();
      el.scrollLeft += e.deltaY;
    };
    el.addEventListener("wheel", onWheel, { passive: false });
    return () => el.removeEventListener("wheel", onWheel);
  }, []);
  const all = jobs.flatMap((job) =>
    (job.files ?? []).filter((f) => f.kind === "output").map((f) => ({ url: f.url, job })),
  );
  return (
    <aside className="sidebar">
      <div className="queue" aria-label="Queue">
        <div className="side-title">
          Queue
          {active.some((id) => id !== running) && (
            <button className="small queue-clear" onClick={onClear} title="Cancel every queued job of this tab">
              clear
            </button>
          )}
        </div>
        {active.length === 0 && <div className="side-empty">idle</div>}
        {active.map((id) => (
          <div className="queue-item" key={id} data-job={id}>
            <span className="queue-name" title={id}>
              {names[id] ?? id.slice(0, 8)}
            </span>
            <span className="queue-state">
              {id === running
                ? `${Math.round((progress ?? 0) * 100)}%`
                : runningAll.includes(id)
                  ? "running"
                  : "queued"}
            </span>
            {workerOf[id] && (
              <span className="queue-worker mono" title="the worker running this job">
                {workerOf[id]}
              </span>
            )}
            <button className="small" onClick={() => onCancel(id)} title="Cancel / interrupt" aria-label="Cancel job">
              ✕
            </button>
          </div>
        ))}
      </div>
      <div className="gallery" ref={gallery} aria-label="History">
        <div className="side-title vertical">History</div>
        {error && <div className="side-error">{error}</div>}
        {jobs.map((job) => {
          const imgs = (job.files ?? []).filter((f) => f.kind === "output");
          return (
            <div className={`job j-${job.status}`} key={job.id} data-job={job.id}>
              <div className="job-head">
                <span className={`job-status js-${job.status}`}>{job.status}</span>
                <span className="job-time">{fmtTime(job.finished ?? job.created)}</span>
              </div>
              {imgs.length > 0 && (
                <div className="job-images">
                  {imgs.map((f) => (
                    <img
                      key={f.url}
                      src={f.url}
                      alt={f.name}
                      loading="lazy"
                      onClick={() => onOpenImage(f.url, job, all)}
                    />
                  ))}
                </div>
              )}
              {seeds[job.id] && <div className="job-seed">{seeds[job.id]}</div>}
              {job.error?.message && <div className="job-error">{job.error.message}</div>}
            </div>
          );
        })}
        {jobs.length === 0 && !error && <div className="side-empty">no runs yet</div>}
      </div>
    </aside>
  );
}
