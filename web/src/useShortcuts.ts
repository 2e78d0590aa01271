// Keyboard shortcuts outside text fields (Delete/Backspace are React Flow's deleteKeyCode).
// Inside a text field every key is the field's own: Ctrl+Z there is the browser's text undo
// (typing is undone in runs, not character by character through node undo), Ctrl+A selects
// its text.
import { useEffect, useRef } from "react";

type Actions = {
  copy: () => void;
  paste: () => void;
  undo: () => void;
  redo: () => void;
  save: () => void;
  run: () => void;
  selectAll: () => void;
  bypass: () => void;
  mute: () => void;
};

export function useShortcuts(actions: Actions): void {
  const ref = useRef(actions);
  ref.current = actions;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
      if (!(e.ctrlKey || e.metaKey)) return;
      const a = ref.current;
      const k = e.key.toLowerCase();
      if (k === "c" && String(window.getSelection() ?? "") !== "") return; // copying text
      if (k === "c") a.copy();
      else if (k === "v") a.paste();
      else if (k === "z" && e.shiftKey) a.redo();
      else if (k === "z") a.undo();
      else if (k === "y") a.redo();
      else if (k === "s") a.save();
      else if (k === "enter") a.run();
      else if (k === "a") a.selectAll();
      else if (k === "b" && !e.shiftKey) a.bypass();
      else if (k === "m" && !e.shiftKey) a.mute();
      else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
}
