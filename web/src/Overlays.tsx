// Messages (toasts) and the full-size image view with "load this workflow".
import type { JobSummary } from "./api";

export type Toast = { id: number; kind: "info" | "error"; text: string };

export function Toasts({ toasts, onDismiss }: { toasts: Toast[]; onDismiss: (id: number) => void }) {
  return (
    <div className="toasts">
      {toasts.map((t) => (
        <div key={t.id} className={`toast ${t.kind}`} onClick={() => onDismiss(t.id)}>
          {t.text}
        </div>
      ))}
    </div>
  );
}

type LightboxProps = {
  url: string;
  job?: JobSummary;
  onClose: () => void;
  onLoad: (job: JobSummary) => void;
};

export function Lightbox({ url, job, onClose, onLoad }: LightboxProps) {
  return (
    <div className="lightbox" onClick={onClose}>
      <img src={url} alt="" />
      {job?.workflow && (
        <button
          className="primary"
          onClick={(e) => {
            e.stopPropagation();
            onLoad(job);
          }}
        >
          Load this workflow
        </button>
      )}
    </div>
  );
}
