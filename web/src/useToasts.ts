// Short messages in the corner, in the order they were raised: at most three, a repeated text
// (or a message with the same key, such as the state of one job) replaces the older one
// instead of piling up, and a keyed message can be withdrawn once it no longer holds (the
// validation error after the fix). Each goes after a few seconds; errors stay longer.
import { useCallback, useRef, useState } from "react";
import type { Toast } from "./Overlays";

const MAX_TOASTS = 3;

export type Toasts = {
  toasts: Toast[];
  toast: (kind: Toast["kind"], text: string, key?: string) => void;
  dismiss: (id: number) => void;
  dismissKey: (key: string) => void;
};

export function useToasts(): Toasts {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const seq = useRef(0);
  const toast = useCallback((kind: Toast["kind"], text: string, key?: string) => {
    const id = ++seq.current;
    setToasts((t) => [
      ...t.filter((x) => x.text !== text && (key === undefined || x.key !== key)).slice(-(MAX_TOASTS - 1)),
      { id, kind, text, key },
    ]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), kind === "error" ? 10000 : 5000);
  }, []);
  const dismiss = useCallback((id: number) => setToasts((x) => x.filter((y) => y.id !== id)), []);
  const dismissKey = useCallback((key: string) => setToasts((x) => x.filter((y) => y.key !== key)), []);
  return { toasts, toast, dismiss, dismissKey };
}
