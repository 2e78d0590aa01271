// The node search popup: opened at the cursor by a double-click on empty canvas, or where a
// link was dropped in empty space (then only node types that fit that link are offered).
// Type to narrow, arrows move the highlight, Enter or a click adds, Esc closes.
import { useEffect, useRef } from "react";
import { NodeLabel } from "./Palette";
import { useNodeQuery } from "./useNodeQuery";
import type { NodeSchema, Schema } from "./types";

export type SearchRequest = {
  /** Screen position of the popup (the cursor). */
  x: number;
  y: number;
  /** Only these node types (a dropped link's), with what the list says about it. */
  fits?: (spec: NodeSchema) => boolean;
  hint?: string;
};

type Props = SearchRequest & { schema: Schema; onPick: (type: string) => void; onClose: () => void };

const WIDTH = 260;
const HEIGHT = 320;

export function NodeSearch({ x, y, fits, hint, schema, onPick, onClose }: Props) {
  const { query, hits: all, chosen, fieldProps } = useNodeQuery(schema, fits);
  const hits = all.slice(0, 40);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  const left = Math.max(4, Math.min(x, window.innerWidth - WIDTH - 4));
  const top = Math.max(4, Math.min(y, window.innerHeight - HEIGHT - 4));
  return (
    <div className="node-search-backdrop" onMouseDown={onClose}>
      <div
        className="node-search"
        role="dialog"
        aria-label="Add a node"
        style={{ left, top, width: WIDTH, maxHeight: HEIGHT }}
        onMouseDown={(e) => e.stopPropagation()}
      >
        <input
          ref={input}
          aria-label="Search node types to add"
          placeholder={hint ?? "Add a node…"}
          {...fieldProps(onPick, onClose)}
        />
        {hint && <div className="node-search-hint">{hint}</div>}
        <div className="node-search-list" role="listbox">
          {hits.map((spec) => (
            <div
              key={spec.type}
              role="option"
              aria-selected={spec === chosen}
              className={`palette-item${spec === chosen ? " hit" : ""}`}
              data-type={spec.type}
              title={spec.description || spec.type}
              onClick={() => onPick(spec.type)}
            >
              <NodeLabel spec={spec} query={query} />
              <span className="palette-out">{spec.category}</span>
            </div>
          ))}
          {hits.length === 0 && <div className="palette-empty">No node matches.</div>}
        </div>
      </div>
    </div>
  );
}
