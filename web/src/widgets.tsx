// One editor per widget kind; every kind comes from the server schema.
import { useEffect, useState } from "react";
import type { InputSchema } from "./types";

type Props = {
  input: InputSchema;
  value: unknown;
  onChange: (v: unknown) => void;
  seedRandomize?: boolean;
  onSeedRandomize?: (on: boolean) => void;
};

function NumberField({ input, value, onChange }: Props) {
  const w = input.widget ?? { kind: "number" };
  const [text, setText] = useState(value === undefined || value === null ? "" : String(value));
  useEffect(() => {
    setText(value === undefined || value === null ? "" : String(value));
  }, [value]);
  const commit = (t: string) => {
    setText(t);
    const v = Number(t);
    if (t.trim() === "" || !Number.isFinite(v)) return;
    if (w.integer && !Number.isInteger(v)) return;
    onChange(v);
  };
  return (
    <input
      className="nodrag w-number"
      type="number"
      name={input.name}
      value={text}
      min={w.min ?? undefined}
      max={w.max ?? undefined}
      step={w.step ?? (w.integer ? 1 : "any")}
      onChange={(e) => commit(e.target.value)}
      onBlur={() => setText(value === undefined || value === null ? "" : String(value))}
    />
  );
}

function SliderField(props: Props) {
  const w = props.input.widget ?? { kind: "slider" };
  return (
    <div className="w-slider">
      <input
        className="nodrag"
        type="range"
        min={w.min ?? 0}
        max={w.max ?? 1}
        step={w.step ?? (w.integer ? 1 : "any")}
        value={Number(props.value ?? 0)}
        onChange={(e) => props.onChange(Number(e.target.value))}
      />
      <NumberField {...props} />
    </div>
  );
}

function SeedField(props: Props) {
  return (
    <div className="w-seed">
      <NumberField {...props} />
      <label className="nodrag w-seed-random" title="Pick a new random seed after each run">
        <input
          type="checkbox"
          name={`${props.input.name}__randomize`}
          checked={props.seedRandomize ?? true}
          onChange={(e) => props.onSeedRandomize?.(e.target.checked)}
        />
        randomize after each run
      </label>
    </div>
  );
}

function SelectField({ input, value, onChange }: Props) {
  const choices = input.widget?.choices ?? [];
  const missing = value !== undefined && value !== null && !choices.includes(value);
  return (
    <select
      className="nodrag w-select"
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
          type="checkbox"
          name={input.name}
          checked={Boolean(value)}
          onChange={(e) => onChange(e.target.checked)}
        />
      );
    case "textarea":
      return (
        <textarea
          className="nodrag nowheel w-textarea"
          name={input.name}
          rows={3}
          maxLength={input.widget?.max_length ?? undefined}
          value={String(value ?? "")}
          onChange={(e) => onChange(e.target.value)}
        />
      );
    default:
      return (
        <input
          className="nodrag w-text"
          type="text"
          name={input.name}
          maxLength={input.widget?.max_length ?? undefined}
          value={String(value ?? "")}
          onChange={(e) => onChange(e.target.value)}
        />
      );
  }
}
