// The top bar: run/stop, open/save/examples, undo/redo, and the connection state.
import { useRef } from "react";
import type { Undo } from "./useUndo";

type Props = {
  onRun: () => void;
  batch: number;
  onBatch: (n: number) => void;
  onStop: () => void;
  busy: boolean;
  onOpenFile: (file: File) => void;
  onSave: () => void;
  examples: string[];
  onExample: (name: string) => void;
  undo: Undo;
  title: string;
  dirty: boolean;
  connected: boolean;
};

export function Toolbar(p: Props) {
  const fileInput = useRef<HTMLInputElement>(null);
  return (
    <header className="toolbar">
      <span className="brand">sdgraph</span>
      <button className="primary" onClick={p.onRun} title="Queue this workflow (Ctrl+Enter)">
        ▶ Run
      </button>
      <input
        className="batch"
        type="number"
        min={1}
        max={32}
        value={p.batch}
        aria-label="Batch count"
        title="Runs per click (seeds set to randomize get a new one for each)"
        onChange={(e) => p.onBatch(Math.max(1, Math.min(32, Math.round(Number(e.target.value) || 1))))}
      />
      <button onClick={p.onStop} disabled={!p.busy} title="Interrupt the running job">
        ■ Stop
      </button>
      <span className="sep" />
      <button onClick={() => fileInput.current?.click()} title="Open a workflow .json or a PNG">
        Open…
      </button>
      <button onClick={p.onSave} title="Save as workflow JSON (Ctrl+S)">
        Save
      </button>
      <select
        className="examples"
        aria-label="Open an example workflow"
        value=""
        onChange={(e) => e.target.value && p.onExample(e.target.value)}
      >
        <option value="">Examples…</option>
        {p.examples.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
      <span className="sep" />
      <button onClick={p.undo.undo} disabled={!p.undo.canUndo} title="Undo (Ctrl+Z)" aria-label="Undo">
        ↶
      </button>
      <button onClick={p.undo.redo} disabled={!p.undo.canRedo} title="Redo (Ctrl+Shift+Z)" aria-label="Redo">
        ↷
      </button>
      <span className="wf-title" title={p.dirty ? "unsaved changes (kept in this browser)" : "saved"}>
        {p.dirty && (
          <span className="dirty" aria-label="unsaved changes">
            ●{" "}
          </span>
        )}
        {p.title}
      </span>
      <span className={`conn ${p.connected ? "on" : "off"}`} title="live events connection">
        {p.connected ? "● live" : "○ offline"}
      </span>
      <input
        ref={fileInput}
        type="file"
        accept=".json,application/json,image/png,image/jpeg,image/webp"
        style={{ display: "none" }}
        onChange={(e) => {
          const f = e.target.files?.[0];
          if (f) p.onOpenFile(f);
          e.target.value = "";
        }}
      />
    </header>
  );
}
