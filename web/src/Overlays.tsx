// Messages (toasts) and the full-size image view with "load this workflow".
import { useEffect, useRef } from "react";
import type { JobSummary } from "./api";

export type Toast = { id: number; kind: "info" | "error"; text: string; key?: string };

export function Toasts({ toasts, onDismiss }: { toasts: Toast[]; onDismiss: (id: number) => void }) {
  return (
    <div className="toasts" role="status" aria-live="polite">
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
  /** Seeds the job ran with, shown under the image. */
  seeds?: string;
  onClose: () => void;
  onLoad: (job: JobSummary) => void;
};

/** Full-size image; Esc, the close button or a click outside the image closes it. */
export function Lightbox({ url, job, seeds, onClose, onLoad }: LightboxProps) {
  const closeRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    closeRef.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        e.preventDefault();
        onClose();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <div className="lightbox" role="dialog" aria-modal="true" aria-label="Image viewer" onClick={onClose}>
      <button ref={closeRef} className="lightbox-close" aria-label="Close" title="Close (Esc)" onClick={onClose}>
        ✕
      </button>
      <img src={url} alt="" onClick={(e) => e.stopPropagation()} />
      {seeds && <div className="lightbox-info">{seeds}</div>}
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
