// Node types by category; typing narrows them to a ranked list whose highlighted entry
// Enter adds (arrows move the highlight); click adds, drag drops on the canvas.
import { useMemo } from "react";
import { highlightParts } from "./search";
import { useNodeQuery } from "./useNodeQuery";
import type { NodeSchema, Schema } from "./types";

export const DRAG_MIME = "application/x-sdgraph-node";

export function NodeLabel({ spec, query }: { spec: NodeSchema; query: string }) {
  return (
    <span className="palette-name">
      {highlightParts(spec.title || spec.type, query).map((p, i) =>
        p.hit ? <mark key={i}>{p.text}</mark> : <span key={i}>{p.text}</span>,
      )}
    </span>
  );
}

export function Palette({ schema, onAdd }: { schema: Schema; onAdd: (type: string) => void }) {
  const { query, setQuery, hits: ranked, chosen: best, fieldProps } = useNodeQuery(schema);
  const searching = Boolean(query.trim());
  const groups = useMemo(() => {
    if (searching) return [["matches", ranked] as const];
    const by: Record<string, NodeSchema[]> = {};
    for (const spec of Object.values(schema.nodes)) (by[spec.category || "misc"] ??= []).push(spec);
    return Object.entries(by)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([cat, list]) => [cat, list.sort((a, b) => a.type.localeCompare(b.type))] as const);
  }, [schema, searching, ranked]);
  const hits = searching ? ranked : [];
  const chosen = searching ? best : undefined;
  return (
    <aside className="palette" aria-label="Node types">
      <input
        className="palette-search"
        aria-label="Search node types"
        placeholder="Search nodes…"
        title="Type to filter; Enter adds the highlighted match (arrows move it); drag an entry onto the canvas"
        {...fieldProps(
          (type) => {
            if (!searching) return;
            onAdd(type);
            setQuery("");
          },
          () => setQuery(""),
        )}
      />
      <div className="palette-list" role="listbox" aria-label="Node types">
        {groups.map(([cat, list]) => (
          <div className="palette-group" key={cat}>
            {!searching && <div className="palette-cat">{cat}</div>}
            {list.map((spec) => (
              <div
                key={spec.type}
                className={`palette-item${spec === chosen ? " hit" : ""}`}
                role="option"
                aria-selected={spec === chosen}
                data-type={spec.type}
                title={spec.description || spec.type}
                draggable
                onDragStart={(e) => {
                  e.dataTransfer.setData(DRAG_MIME, spec.type);
                  e.dataTransfer.effectAllowed = "copy";
                }}
                onClick={() => onAdd(spec.type)}
              >
                <NodeLabel spec={spec} query={query} />
                {spec.output_node && <span className="palette-out">output</span>}
              </div>
            ))}
          </div>
        ))}
        {searching && hits.length === 0 && <div className="palette-empty">No node matches “{query}”.</div>}
      </div>
    </aside>
  );
}
