// A search field over node types, shared by the palette and the node search popup: the
// ranked matches, the highlighted one (arrows move it), Enter takes it, Esc leaves.
import { useMemo, useState } from "react";
import { searchNodes } from "./search";
import type { NodeSchema, Schema } from "./types";

export function useNodeQuery(schema: Schema, fits?: (spec: NodeSchema) => boolean) {
  const [query, setQuery] = useState("");
  const [pick, setPick] = useState(0);
  const hits = useMemo(() => searchNodes(schema, query, fits), [schema, query, fits]);
  const chosen: NodeSchema | undefined = hits[Math.min(pick, hits.length - 1)];
  /** Props for the search <input>: typing, arrows, Enter (with the chosen type), Esc. */
  const fieldProps = (onEnter: (type: string) => void, onEscape: () => void) => ({
    type: "search",
    value: query,
    onChange: (e: React.ChangeEvent<HTMLInputElement>) => {
      setQuery(e.target.value);
      setPick(0);
    },
    onKeyDown: (e: React.KeyboardEvent) => {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const d = e.key === "ArrowDown" ? 1 : -1;
        setPick((p) => Math.max(0, Math.min(hits.length - 1, p + d)));
      } else if (e.key === "Enter" && chosen) {
        onEnter(chosen.type);
      } else if (e.key === "Escape") {
        e.preventDefault();
        onEscape();
      }
    },
  });
  return { query, setQuery, hits, chosen, fieldProps };
}
