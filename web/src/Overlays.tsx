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

function StepButton({ dir, enabled, onStep }: { dir: -1 | 1; enabled: boolean; onStep: (by: -1 | 1) => void }) {
  return (
    <button
      className={`lightbox-step ${dir < 0 ? "prev" : "next"}`}
      aria-label={dir < 0 ? "Previous image" : "Next image"}
      disabled={!enabled}
      onClick={(e) => {
        e.stopPropagation();
        onStep(dir);
      }}
    >
      {dir < 0 ? "‹" : "›"}
    </button>
  );
}

type LightboxProps = {
  url: string;
  job?: JobSummary;
  /** Seeds the job ran with, shown under the image. */
  seeds?: string;
  /** The literal inputs of the job's workflow ("node.input": value), shown beside it. */
  params?: [string, string][];
  /** Step to the previous (-1) / next (+1) history image; absent at the ends. */
  onStep?: (by: -1 | 1) => void;
  canStep?: { prev: boolean; next: boolean };
  onClose: () => void;
  onLoad: (job: JobSummary) => void;
  /** Open the A/B compare with this image as A (history images only). */
  onCompare?: () => void;
};

/** Full-size image; Esc, the close button or a click outside the image closes it; the arrow
 * keys (or buttons) step through the history. */
export function Lightbox({ url, job, seeds, params, onStep, canStep, onClose, onLoad, onCompare }: LightboxProps) {
  const closeRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    closeRef.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        e.preventDefault();
        onClose();
      } else if (e.key === "ArrowLeft" && canStep?.prev) {
        e.preventDefault();
        onStep?.(-1);
      } else if (e.key === "ArrowRight" && canStep?.next) {
        e.preventDefault();
        onStep?.(1);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose, onStep, canStep]);
  return (
    <div className="lightbox" role="dialog" aria-modal="true" aria-label="Image viewer" onClick={onClose}>
      <button ref={closeRef} className="lightbox-close" aria-label="Close" title="Close (Esc)" onClick={onClose}>
        ✕
      </button>
      {onStep && <StepButton dir={-1} enabled={Boolean(canStep?.prev)} onStep={onStep} />}
      <img src={url} alt="" onClick={(e) => e.stopPropagation()} />
      {onStep && <StepButton dir={1} enabled={Boolean(canStep?.next)} onStep={onStep} />}
      {seeds && <div className="lightbox-info">{seeds}</div>}
      {params && params.length > 0 && (
        <dl className="lightbox-params nowheel" onClick={(e) => e.stopPropagation()}>
          {params.map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
      )}
      {onCompare && (
        <button
          className="lightbox-compare"
          onClick={(e) => {
            e.stopPropagation();
            onCompare();
          }}
        >
          Compare A/B…
        </button>
      )}
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
