// Seeds: whole numbers up to 2^64-1, carried exactly (a BigInt past 2^53), randomised from
// the full range, and read back from a workflow to show which seed made a result.
import { exactInteger } from "./json";
import type { InputSchema, Schema, Workflow } from "./types";
import { asLink } from "./types";

const U64_MAX = (1n << 64n) - 1n;

const big = (v: unknown, fallback: bigint): bigint =>
  typeof v === "bigint" ? v : typeof v === "number" && Number.isFinite(v) ? BigInt(Math.trunc(v)) : fallback;

/** A uniformly random seed within the input's bounds. */
export function randomSeed(inp: InputSchema): number | bigint {
  const lo = big(inp.widget?.min, 0n);
  const hi = big(inp.widget?.max, U64_MAX);
  const span = hi - lo + 1n;
  const words = crypto.getRandomValues(new BigUint64Array(2));
  const r = ((words[0] << 64n) | words[1]) % span;
  return exactInteger(String(lo + r));
}

/** Parse what was typed into an integer field: the exact value, or why it is refused. */
export function parseWhole(text: string, inp: InputSchema): { value: number | bigint } | { error: string } {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) return { error: "whole numbers only" };
  const v = BigInt(t);
  const lo = inp.widget?.min;
  const hi = inp.widget?.max;
  if (lo !== undefined && lo !== null && v < big(lo, v)) return { error: `at least ${String(lo)}` };
  if (hi !== undefined && hi !== null && v > big(hi, v)) return { error: `at most ${String(hi)}` };
  return { value: exactInteger(t) };
}

/** Literal seed values of a workflow: node id -> input -> value. */
export function seedsOf(schema: Schema, doc: Workflow | undefined | null): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [id, node] of Object.entries(doc?.nodes ?? {})) {
    const spec = schema.nodes[node.type];
    for (const inp of spec?.inputs ?? []) {
      const v = node.inputs?.[inp.name];
      if (inp.widget?.kind === "seed" && v !== undefined && !asLink(v)) (out[id] ??= {})[inp.name] = v;
    }
  }
  return out;
}

/** The literal inputs of a workflow that shape its image, as "node.input" -> text (long
 * texts shortened), for the image viewer. */
export function literalParams(schema: Schema, doc: Workflow | undefined | null): [string, string][] {
  const out: [string, string][] = [];
  for (const [id, node] of Object.entries(doc?.nodes ?? {})) {
    const spec = schema.nodes[node.type];
    for (const inp of spec?.inputs ?? []) {
      const v = node.inputs?.[inp.name];
      if (inp.link_only || v === undefined || asLink(v)) continue;
      const text = String(v);
      out.push([`${id}.${inp.name}`, text.length > 80 ? `${text.slice(0, 77)}…` : text]);
    }
  }
  return out;
}

/** "seed 123" (or "seeds 1, 2") for a workflow; "" when it has none. */
export function seedLabel(schema: Schema, doc: Workflow | undefined | null): string {
  const all = Object.values(seedsOf(schema, doc)).flatMap((m) => Object.values(m).map(String));
  const uniq = [...new Set(all)];
  return uniq.length ? `seed${uniq.length > 1 ? "s" : ""} ${uniq.join(", ")}` : "";
}
