// Parts the right-click menus share (nodes, groups): the colour swatches and Esc to close.
import { useEffect } from "react";

export const NODE_COLOURS = ["#7f1d1d", "#78350f", "#14532d", "#1e3a8a", "#581c87", "#374151"];

/** The palette of header colours, and "no colour" (undefined). */
export function ColourSwatches({ label, onPick }: { label: string; onPick: (color: string | undefined) => void }) {
  return (
    <div className="node-menu-colours" role="group" aria-label={label}>
      {NODE_COLOURS.map((c) => (
        <button key={c} className="swatch" aria-label={`colour ${c}`} style={{ background: c }} onClick={() => onPick(c)} />
      ))}
      <button className="swatch none" aria-label="no colour" onClick={() => onPick(undefined)}>
        ∅
      </button>
    </div>
  );
}

/** Esc anywhere closes the menu. */
export function useEscape(onClose: () => void): void {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
}
