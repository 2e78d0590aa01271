// Queue (with cancel) and history gallery of past jobs with their output images.
import { useEffect, useState } from "react";
import { api, type JobSummary } from "./api";

type Props = {
  active: string[];
  running: string[];
  workerOf: Record<string, string>;
  refreshKey: number;
  onCancel: (id: string) => void;
  onOpenImage: (url: string, job: JobSummary) => void;
};

function fmtTime(t: number | string | null | undefined): string {
  if (t === null || t === undefined) return "";
  const d = typeof t === "number" ? new Date(t < 1e12 ? t * 1000 : t) : new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleTimeString();
}

export function Sidebar({ active, running, workerOf, refreshKey, onCancel, onOpenImage }: Props) {
  const [jobs, setJobs] = useState<JobSummary[]>([]);
  const [error, setError] = useState<string | null>(null);
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
  return (
    <aside className="sidebar">
      <div className="queue">
        <div className="side-title">Queue</div>
        {active.length === 0 && <div className="side-empty">idle</div>}
        {active.map((id) => (
          <div className="queue-item" key={id} data-job={id}>
            <span className="mono">{id.slice(0, 8)}</span>
            <span className="queue-state">{running.includes(id) ? "running" : "queued"}</span>
            {running.includes(id) && workerOf[id] && (
              <span className="queue-worker mono" title="the worker running this job">
                {workerOf[id]}
              </span>
            )}
            <button className="small" onClick={() => onCancel(id)} title="Cancel / interrupt">
              ✕
            </button>
          </div>
        ))}
      </div>
      <div className="gallery">
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
                      onClick={() => onOpenImage(f.url, job)}
                    />
                  ))}
                </div>
              )}
              {job.error?.message && <div className="job-error">{job.error.message}</div>}
            </div>
          );
        })}
        {jobs.length === 0 && !error && <div className="side-empty">no runs yet</div>}
      </div>
    </aside>
  );
}
