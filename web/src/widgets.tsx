// One editor per widget kind; every kind comes from the server schema.
import { useEffect, useLayoutEffect, useRef, useState } from "react";
import { parseWhole } from "./seeds";
import type { InputSchema } from "./types";

type Props = {
  input: InputSchema;
  value: unknown;
  onChange: (v: unknown) => void;
  seedRandomize?: boolean;
  onSeedRandomize?: (on: boolean) => void;
  /** The seed the last run of this node used (shown when randomising changed it since). */
  usedSeed?: unknown;
};

const shown = (value: unknown) => (value === undefined || value === null ? "" : String(value));

/** A number field that refuses, visibly, what is not a valid value (it keeps the last one). */
function NumberField({ input, value, onChange }: Props) {
  const w = input.widget ?? { kind: "number" };
  const whole = Boolean(w.integer) || w.kind === "seed";
  const [text, setText] = useState(shown(value));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setText(shown(value));
    setError(null);
  }, [value]);
  const commit = (t: string) => {
    setText(t);
    if (whole) {
      const r = parseWhole(t, input);
      if ("error" in r) return setError(r.error);
      setError(null);
      onChange(r.value);
      return;
    }
    const v = Number(t);
    if (t.trim() === "" || !Number.isFinite(v)) return setError("a number");
    setError(null);
    onChange(v);
  };
  return (
    <>
      <input
        className={`nodrag w-number${error ? " bad" : ""}`}
        type={w.kind === "seed" ? "text" : "number"}
        inputMode={whole ? "numeric" : "decimal"}
        name={input.name}
        aria-label={input.name}
        aria-invalid={error ? true : undefined}
        value={text}
        min={typeof w.min === "number" ? w.min : undefined}
        max={typeof w.max === "number" && w.kind !== "seed" ? w.max : undefined}
        step={w.step ?? (whole ? 1 : "any")}
        onChange={(e) => commit(e.target.value)}
        onBlur={() => {
          setText(shown(value));
          setError(null);
        }}
      />
      {error && (
        <span className="w-error" role="alert">
          {error}: {input.name} stays {shown(value)}
        </span>
      )}
    </>
  );
}

function SliderField(props: Props) {
  const w = props.input.widget ?? { kind: "slider" };
  return (
    <div className="w-slider">
      <input
        className="nodrag"
        type="range"
        aria-label={`${props.input.name} slider`}
        min={Number(w.min ?? 0)}
        max={Number(w.max ?? 1)}
        step={w.step ?? (w.integer ? 1 : "any")}
        value={Number(props.value ?? 0)}
        onChange={(e) => props.onChange(Number(e.target.value))}
      />
      <NumberField {...props} />
    </div>
  );
}

function SeedField(props: Props) {
  const used = props.usedSeed;
  return (
    <div className="w-seed">
      <NumberField {...props} />
      {used !== undefined && String(used) !== String(props.value) && (
        <span className="w-seed-used" title="The seed the last run used">
          last run: {String(used)}
        </span>
      )}
      <label className="nodrag w-seed-random" title="Pick a new random seed after each run">
        <input
          type="checkbox"
          name={`${props.input.name}__randomize`}
          aria-label={`${props.input.name}: randomize after each run`}
          checked={props.seedRandomize ?? true}
          onChange={(e) => props.onSeedRandomize?.(e.target.checked)}
        />
        randomize after each run
      </label>
    </div>
  );
}

/** Text and prompts: the element owns its text (uncontrolled), so the browser's own undo
 * works in it (Ctrl+Z takes back what was typed in runs; in a controlled field it undoes one character
 * at a time). Outside changes (undo, load) are written in. */
function TextField({ input, value, onChange, multiline }: Props & { multiline?: boolean }) {
  const ref = useRef<HTMLTextAreaElement & HTMLInputElement>(null);
  const text = String(value ?? "");
  // No value or defaultValue prop at all: React rewrites a textarea's default text (its child
  // text node) on every update, and that DOM change ends the browser's undo group too.
  useLayoutEffect(() => {
    if (ref.current && ref.current.value !== text) ref.current.value = text;
  }, [text]);
  const common = {
    ref,
    name: input.name,
    "aria-label": input.name,
    maxLength: input.widget?.max_length ?? undefined,
    onChange: (e: React.ChangeEvent<HTMLTextAreaElement | HTMLInputElement>) => onChange(e.target.value),
  };
  return multiline ? (
    <textarea className="nodrag nowheel w-textarea" rows={3} {...common} />
  ) : (
    <input className="nodrag w-text" type="text" {...common} />
  );
}

function SelectField({ input, value, onChange }: Props) {
  const choices = input.widget?.choices ?? [];
  const missing = value !== undefined && value !== null && !choices.includes(value);
  return (
    <select
      className="nodrag w-select"
          aria-label={input.name}
      name={input.name}
      value={JSON.stringify(value ?? null)}
      onChange={(e) => onChange(JSON.parse(e.target.value))}
    >
      {missing && (
        <option value={JSON.stringify(value)}>{String(value)} (not available)</option>
      )}
      {(value === undefined || value === null) && <option value="null">(choose)</option>}
      {choices.map((c) => (
        <option key={JSON.stringify(c)} value={JSON.stringify(c)}>
          {String(c)}
        </option>
      ))}
    </select>
  );
}

export function WidgetEditor(props: Props) {
  const { input, value, onChange } = props;
  switch (input.widget?.kind) {
    case "number":
      return <NumberField {...props} />;
    case "slider":
      return <SliderField {...props} />;
    case "seed":
      return <SeedField {...props} />;
    case "select":
    case "model":
      return <SelectField {...props} />;
    case "toggle":
      return (
        <input
          className="nodrag w-toggle"
          aria-label={input.name}
          type="checkbox"
          name={input.name}
          checked={Boolean(value)}
          onChange={(e) => onChange(e.target.checked)}
        />
      );
    case "textarea":
      return <TextField {...props} multiline />;
    default:
      return <TextField {...props} />;
  }
}
