// Searchable list of node types by category: click or Enter adds, drag drops on the canvas.
import { useMemo, useState } from "react";
import type { NodeSchema, Schema } from "./types";

export const DRAG_MIME = "application/x-sdgraph-node";

function matches(spec: NodeSchema, q: string): boolean {
  if (!q) return true;
  const hay = `${spec.type} ${spec.title ?? ""} ${spec.category} ${spec.description}`.toLowerCase();
  return q
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((w) => hay.includes(w));
}

export function Palette({ schema, onAdd }: { schema: Schema; onAdd: (type: string) => void }) {
  const [query, setQuery] = useState("");
  const groups = useMemo(() => {
    const by: Record<string, NodeSchema[]> = {};
    for (const spec of Object.values(schema.nodes)) {
      if (matches(spec, query)) (by[spec.category || "misc"] ??= []).push(spec);
    }
    return Object.entries(by)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([cat, list]) => [cat, list.sort((a, b) => a.type.localeCompare(b.type))] as const);
  }, [schema, query]);
  const first = groups[0]?.[1][0];
  return (
    <aside className="palette">
      <input
        className="palette-search"
        type="search"
        placeholder="Search nodes…"
        title="Type to filter; Enter adds the first match; drag an entry onto the canvas"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && first) {
            onAdd(first.type);
            setQuery("");
          }
        }}
      />
      <div className="palette-list">
        {groups.map(([cat, list]) => (
          <div className="palette-group" key={cat}>
            <div className="palette-cat">{cat}</div>
            {list.map((spec) => (
              <div
                key={spec.type}
                className="palette-item"
                data-type={spec.type}
                title={spec.description || spec.type}
                draggable
                onDragStart={(e) => {
                  e.dataTransfer.setData(DRAG_MIME, spec.type);
                  e.dataTransfer.effectAllowed = "copy";
                }}
                onClick={() => onAdd(spec.type)}
              >
                {spec.title || spec.type}
                {spec.output_node && <span className="palette-out">output</span>}
              </div>
            ))}
          </div>
        ))}
        {groups.length === 0 && <div className="palette-empty">No node matches “{query}”.</div>}
      </div>
    </aside>
  );
}
