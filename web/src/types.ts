// Shapes of the server's API (docs/api.md) and of the workflow file format.

export type Widget = {
  kind: "number" | "seed" | "slider" | "text" | "textarea" | "select" | "toggle" | "model" | string;
  integer?: boolean;
  min?: number | bigint | null;
  max?: number | bigint | null;
  step?: number | null;
  choices?: unknown[];
  source?: string;
  max_length?: number | null;
};

export type InputSchema = {
  name: string;
  type: string;
  required: boolean;
  link_only: boolean;
  accepts?: string[];
  /** Literal inputs: the socket type a link into it carries once converted to an input. */
  link_type?: string;
  default?: unknown;
  widget?: Widget;
};

export type NodeSchema = {
  type: string;
  version: number;
  title?: string;
  category: string;
  description: string;
  output_node: boolean;
  cacheable?: boolean;
  inputs: InputSchema[];
  outputs: { name: string; type: string }[];
};

export type Schema = {
  nodes: Record<string, NodeSchema>;
  types: Record<string, { color: string }>;
  compatibility?: Record<string, string[]>;
};

export type Link = { node: string; output: string };

/** bypass: outputs pass a same-type input through; mute: not run (graph/modes.py). */
export type NodeMode = "bypass" | "mute";

export type WorkflowNode = { type: string; inputs: Record<string, unknown>; mode?: NodeMode };

export type Workflow = {
  version: 1;
  nodes: Record<string, WorkflowNode>;
  ui?: {
    positions?: Record<string, { x: number; y: number }>;
    viewport?: { x: number; y: number; zoom: number };
    [key: string]: unknown;
  } | null;
};

export type FileRef = { kind: string; name: string; url: string };

export type ValidationIssue = {
  node_id: string | null;
  field: string | null;
  code: string;
  message: string;
  // model_missing: the family the saved workflow recorded for the model
  detail?: { family?: string };
};

export type NodeRunStatus = "queued" | "running" | "cached" | "done" | "error" | "interrupted";

export type NodeRunState = {
  status: NodeRunStatus;
  fraction?: number;
  step?: number | null;
  total?: number | null;
  preview?: string | null;
  files?: FileRef[];
  error?: { error_type: string; message: string; traceback?: string };
};

export type ServerEvent = { type: string; job?: unknown; [key: string]: unknown };

/** A link is exactly {"node": str, "output": str}; anything else is a literal. */
export function asLink(value: unknown): Link | null {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const keys = Object.keys(value);
  const v = value as Record<string, unknown>;
  if (keys.length === 2 && typeof v.node === "string" && typeof v.output === "string") {
    return { node: v.node, output: v.output };
  }
  return null;
}
