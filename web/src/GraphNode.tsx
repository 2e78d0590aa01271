// The one generic node component: renders any node type from its schema.
import { Handle, Position, useUpdateNodeInternals, type NodeProps } from "@xyflow/react";
import { memo, useEffect } from "react";
import { useCanvas } from "./context";
import { isConverted, MODE_LABEL } from "./nodeRules";
import { stringifyJson } from "./json";
import type { FlowNode } from "./workflow";
import { typeColor } from "./workflow";
import { WidgetEditor } from "./widgets";
import { MissingModelPicker } from "./MissingModelPicker";

const STATUS_LABEL: Record<string, string> = {
  queued: "queued",
  running: "running",
  cached: "cached",
  done: "done",
  error: "error",
  interrupted: "interrupted",
};

function GraphNodeImpl({ id, data, selected }: NodeProps<FlowNode>) {
  const { schema, runState, issues, setInput, setSeedControl, openImage, lastRun } = useCanvas();
  const spec = schema.nodes[data.type];
  const state = runState[id];
  const nodeIssues = issues[id] ?? [];
  const fieldIssue = (name: string) => nodeIssues.filter((i) => i.field === name);
  const generalIssues = nodeIssues.filter(
    (i) => !i.field || !(spec?.inputs.some((s) => s.name === i.field) ?? false),
  );
  const updateInternals = useUpdateNodeInternals();
  const handleKey = [
    ...(spec?.inputs.map((i) => i.name) ?? []),
    ...data.extraInputs,
    ...data.extraOutputs,
    ...(data.ui?.inputs ?? []),
  ].join(",");
  useEffect(() => updateInternals(id), [id, handleKey, updateInternals]);

  const classes = ["gnode"];
  if (selected) classes.push("selected");
  if (!spec) classes.push("unknown");
  if (nodeIssues.length) classes.push("invalid");
  if (state) classes.push(`st-${state.status}`);
  if (data.ui?.collapsed) classes.push("collapsed");
  if (data.mode) classes.push(`mode-${data.mode}`);

  const images = (state?.files ?? []).filter((f) => /\.(png|jpe?g|webp)$/i.test(f.name));

  return (
    <div className={classes.join(" ")} data-node-type={data.type}>
      <div className="gnode-head" style={data.ui?.color ? { background: data.ui.color, color: "#fff" } : undefined}>
        <span className="gnode-title" title={data.ui?.title ? `${data.ui.title} (${data.type})` : undefined}>
          {data.ui?.title || spec?.title || data.type}
        </span>
        <span className="gnode-id">{id}</span>
        {data.mode && <span className="gnode-mode">{MODE_LABEL[data.mode]}</span>}
        {state && (
          <span className={`gnode-status s-${state.status}`} data-status={state.status}>
            {STATUS_LABEL[state.status] ?? state.status}
          </span>
        )}
      </div>
      {!spec && (
        <div className="gnode-unknown-msg">
          Unknown node type “{data.type}”: kept as is, not runnable until the type exists.
        </div>
      )}
      {spec?.outputs.map((o) => (
        <div className="gnode-row out" key={`o-${o.name}`}>
          <span className="gnode-label">{o.name}</span>
          <span className="gnode-type" style={{ color: typeColor(schema, o.type) }}>
            {o.type}
          </span>
          <Handle
            type="source"
            position={Position.Right}
            id={o.name}
            className="ghandle"
            style={{ background: typeColor(schema, o.type) }}
            title={`${o.name}: ${o.type}`}
          />
        </div>
      ))}
      {data.extraOutputs.map((name) => (
        <div className="gnode-row out extra" key={`xo-${name}`}>
          <span className="gnode-label">{name}</span>
          <span className="gnode-type">?</span>
          <Handle type="source" position={Position.Right} id={name} className="ghandle" />
        </div>
      ))}
      {spec?.inputs.map((inp) => {
        const bad = fieldIssue(inp.name);
        const cls = `gnode-row in${bad.length ? " invalid" : ""}`;
        if (inp.link_only || isConverted({ data }, inp)) {
          const type = inp.link_only ? inp.type : inp.link_type!; // a converted widget: its value type
          return (
            <div className={cls} key={`i-${inp.name}`} data-field={inp.name}>
              <Handle
                type="target"
                position={Position.Left}
                id={inp.name}
                className="ghandle"
                style={{ background: typeColor(schema, type) }}
                title={`${inp.name}: ${type}`}
              />
              <span className="gnode-label">
                {inp.name}
                {!inp.required && inp.link_only && <em> (optional)</em>}
              </span>
              <span className="gnode-type" style={{ color: typeColor(schema, type) }}>
                {type}
              </span>
              {inp.link_only && inp.name in data.inputs && (
                <div className="gnode-issue">
                  broken link: {stringifyJson(data.inputs[inp.name])} (no such node)
                </div>
              )}
              {bad.map((b, k) => (
                <div className="gnode-issue" key={k}>
                  {b.message}
                </div>
              ))}
            </div>
          );
        }
        return (
          <div className={`${cls} widget`} key={`i-${inp.name}`} data-field={inp.name}>
            <label className="gnode-label">{inp.name}</label>
            <WidgetEditor
              input={inp}
              value={inp.name in data.inputs ? data.inputs[inp.name] : inp.default}
              onChange={(v) => setInput(id, inp.name, v)}
              seedRandomize={data.seedControl?.[inp.name]}
              onSeedRandomize={(on) => setSeedControl(id, inp.name, on)}
              usedSeed={lastRun.seeds[id]?.[inp.name]}
            />
            {bad.map((b, k) => (
              <div className="gnode-issue" key={k}>
                {b.message}
              </div>
            ))}
            {inp.widget?.source && bad.some((b) => b.code === "model_missing") && (
              <MissingModelPicker
                source={inp.widget.source}
                field={inp.name}
                value={data.inputs[inp.name]}
                family={bad.find((b) => b.code === "model_missing")?.detail?.family}
                onPick={(name) => setInput(id, inp.name, name)}
              />
            )}
          </div>
        );
      })}
      {data.extraInputs.map((name) => (
        <div className="gnode-row in extra" key={`xi-${name}`} data-field={name}>
          <Handle type="target" position={Position.Left} id={name} className="ghandle" />
          <span className="gnode-label">{name}</span>
          <span className="gnode-type">?</span>
        </div>
      ))}
      {Object.entries(data.inputs)
        .filter(([name]) => !spec?.inputs.some((i) => i.name === name))
        .map(([name, value]) => (
          <div className="gnode-row in extra" key={`xl-${name}`} data-field={name}>
            <span className="gnode-label">{name}</span>
            <code className="gnode-raw">{stringifyJson(value)}</code>
          </div>
        ))}
      {generalIssues.length > 0 && (
        <div className="gnode-issues">
          {generalIssues.map((b, k) => (
            <div className="gnode-issue" key={k}>
              {b.field ? `${b.field}: ` : ""}
              {b.message}
            </div>
          ))}
        </div>
      )}
      {state?.status === "running" && (
        <div className="gnode-progress" title={`${state.step ?? ""}/${state.total ?? ""}`}>
          <div style={{ width: `${Math.round((state.fraction ?? 0) * 100)}%` }} />
          {state.total ? (
            <span>
              {state.step}/{state.total}
            </span>
          ) : null}
        </div>
      )}
      {state?.status === "running" && state.preview && (
        <div className="gnode-preview-box">
          <img className="gnode-preview" src={state.preview} alt="live preview" />
        </div>
      )}
      {state?.error && (
        <div className="gnode-error">
          <b>{state.error.error_type}</b>: {state.error.message}
          {state.error.traceback && (
            <details className="nodrag nowheel">
              <summary>traceback</summary>
              <pre>{state.error.traceback}</pre>
            </details>
          )}
        </div>
      )}
      {images.length > 0 && (
        <div className="gnode-images">
          {images.map((f) => (
            <img
              key={f.url}
              src={f.url}
              alt={f.name}
              className="gnode-result nodrag"
              title={lastRun.label ? `made with ${lastRun.label}` : undefined}
              onDoubleClick={() => openImage(f.url)}
            />
          ))}
          {state?.status === "done" && lastRun.label && <div className="gnode-result-seed">{lastRun.label}</div>}
        </div>
      )}
    </div>
  );
}

export const GraphNode = memo(GraphNodeImpl);
export const nodeTypes = { graph: GraphNode };
