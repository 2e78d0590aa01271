// The open document's name, and what the browser shows of it: the tab title (with a mark
// while there are unsaved changes) and a warning before leaving with unsaved changes.
import { useCallback, useEffect, useRef, useState } from "react";

export type Naming = { title: string; setTitle: (title: string) => void; titleRef: React.RefObject<string> };

export function useTitle(): Naming {
  const [title, setState] = useState("untitled");
  const titleRef = useRef(title);
  const setTitle = useCallback((t: string) => {
    titleRef.current = t; // read at once by undo snapshots, before React re-renders
    setState(t);
  }, []);
  return { title, setTitle, titleRef };
}

export function useDocumentState(title: string, dirty: boolean): void {
  useEffect(() => {
    document.title = `${dirty ? "● " : ""}${title} — sdgraph`;
  }, [title, dirty]);
  useEffect(() => {
    if (!dirty) return;
    const warn = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = ""; // older browsers need it set to show the prompt
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);
}
