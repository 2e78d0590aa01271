// Reroute points on links: layout only (saved under the workflow's `ui.reroutes`, keyed by the
// link's edge id; the engine never sees them). Every link is drawn by this edge component:
// through its points when it has some, as React Flow's usual curve otherwise.
// Alt+click or double-click on a link adds a point there; drag a point to move it;
// double-click, Alt+click or Delete (when focused) removes a point.
import { BaseEdge, EdgeLabelRenderer, getBezierPath, useReactFlow, type Edge, type EdgeProps } from "@xyflow/react";
import { createContext, memo, useCallback, useContext, type Dispatch, type SetStateAction } from "react";
import { insertPoint, pathThrough, type Point, type RerouteData } from "./reroutes";
import "./canvas-layout.css";

export type { Point, RerouteData };

/** The graph's edge setter, for the points' edits. */
export const RerouteCtx = createContext<Dispatch<SetStateAction<Edge[]>> | null>(null);

function RerouteEdgeImpl(props: EdgeProps<Edge<RerouteData>>) {
  const { id, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, style, markerEnd } = props;
  const setEdges = useContext(RerouteCtx);
  const rf = useReactFlow();
  const points = props.data?.points ?? [];
  const setPoints = useCallback(
    (f: (pts: Point[]) => Point[]) =>
      setEdges?.((eds) =>
        eds.map((e) => {
          if (e.id !== id) return e;
          const next = f(((e.data as RerouteData | undefined)?.points ?? []).slice());
          return { ...e, data: { ...e.data, points: next.length ? next : undefined } };
        }),
      ),
    [setEdges, id],
  );
  const source = { x: sourceX, y: sourceY };
  const target = { x: targetX, y: targetY };
  const path = points.length
    ? pathThrough([source, ...points, target])
    : getBezierPath({ sourceX, sourceY, sourcePosition, targetX, targetY, targetPosition })[0];

  const addAt = (e: React.MouseEvent) => {
    e.stopPropagation();
    const p = rf.screenToFlowPosition({ x: e.clientX, y: e.clientY });
    setPoints((pts) => insertPoint(pts, { x: Math.round(p.x), y: Math.round(p.y) }, source, target));
  };
  const drag = (index: number) => (e: React.PointerEvent<HTMLDivElement>) => {
    if (e.button !== 0) return;
    e.stopPropagation();
    if (e.altKey) {
      setPoints((pts) => pts.filter((_, i) => i !== index));
      return;
    }
    const el = e.currentTarget;
    el.setPointerCapture(e.pointerId);
    const move = (ev: PointerEvent) => {
      const p = rf.screenToFlowPosition({ x: ev.clientX, y: ev.clientY });
      setPoints((pts) => pts.map((q, i) => (i === index ? { x: Math.round(p.x), y: Math.round(p.y) } : q)));
    };
    const up = () => {
      el.removeEventListener("pointermove", move);
      el.removeEventListener("pointerup", up);
    };
    el.addEventListener("pointermove", move);
    el.addEventListener("pointerup", up);
  };

  return (
    <>
      <BaseEdge id={id} path={path} style={style} markerEnd={markerEnd} interactionWidth={0} />
      <path
        className="reroute-hit"
        d={path}
        fill="none"
        stroke="transparent"
        strokeWidth={16}
        onDoubleClick={addAt}
        onClick={(e) => e.altKey && addAt(e)}
      />
      {points.length > 0 && (
        <EdgeLabelRenderer>
          {points.map((p, i) => (
            <div
              key={i}
              className="reroute nodrag nopan"
              role="button"
              aria-label={`Reroute point ${i + 1} of link ${id}`}
              title="Drag to move; double-click, Alt+click or Delete to remove"
              data-edge={id}
              tabIndex={0}
              onKeyDown={(e) => {
                if (e.key !== "Delete" && e.key !== "Backspace") return;
                e.stopPropagation();
                e.preventDefault();
                setPoints((pts) => pts.filter((_, j) => j !== i));
              }}
              style={{ transform: `translate(-50%, -50%) translate(${p.x}px, ${p.y}px)`, borderColor: style?.stroke }}
              onPointerDown={drag(i)}
              onDoubleClick={(e) => {
                e.stopPropagation();
                setPoints((pts) => pts.filter((_, j) => j !== i));
              }}
            />
          ))}
        </EdgeLabelRenderer>
      )}
    </>
  );
}

export const RerouteEdge = memo(RerouteEdgeImpl);
/** Every link is drawn by the reroute-aware edge. */
export const edgeTypes = { default: RerouteEdge };
