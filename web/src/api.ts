// Thin fetch wrappers over the server API; errors carry the server's error object.
import { clientHeaders } from "./clientId";
import { parseJson, stringifyJson } from "./json";
import type { Schema, ServerEvent, Workflow } from "./types";

export class ApiError extends Error {
  status: number;
  type: string;
  details: unknown;
  constructor(status: number, type: string, message: string, details: unknown) {
    super(message);
    this.status = status;
    this.type = type;
    this.details = details;
  }
}

async function call<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(path, init);
  let body: unknown = null;
  const text = await res.text();
  try {
    body = text ? parseJson(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const err = (body as { error?: { type?: string; message?: string; details?: unknown } })?.error;
    throw new ApiError(
      res.status,
      err?.type ?? "http_error",
      err?.message ?? `${res.status} ${res.statusText}`,
      err?.details ?? null,
    );
  }
  return body as T;
}

const json = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { "Content-Type": "application/json" },
  body: stringifyJson(body),
});

export const api = {
  nodes: () => call<Schema>("/api/nodes"),
  workflows: () => call<{ workflows: string[] }>("/api/workflows"),
  // each checkpoint's native image size (pixels per side), for new latents
  models: () => call<{ native_sizes?: Record<string, number> }>("/api/models"),
  workflow: (name: string) => call<Workflow>(`/api/workflows/${encodeURIComponent(name)}`),
  submit: (workflow: Workflow, clientId: string) =>
    call<{ id: string }>("/api/jobs", json("POST", { workflow, client_id: clientId })),
  // jobs are private to this tab's client id (clientId.ts)
  jobs: (limit = 30) =>
    call<{ jobs: JobSummary[]; next: string | null }>(`/api/jobs?limit=${limit}`, {
      headers: clientHeaders(),
    }),
  job: (id: string) =>
    call<JobSummary>(`/api/jobs/${encodeURIComponent(id)}`, { headers: clientHeaders() }),
  cancel: (id: string) =>
    call<{ id: string; status: string }>(`/api/jobs/${encodeURIComponent(id)}`, {
      method: "DELETE",
      headers: clientHeaders(),
    }),
  /** Convert a ComfyUI API/UI document (or check one of ours) without running it. */
  importWorkflow: (doc: unknown) =>
    call<{
      workflow: Workflow;
      source: string;
      warnings: string[];
      problems: { node_id: string | null; field: string | null; message: string }[];
    }>(
      "/api/workflows/import",
      json("POST", doc),
    ),
  /** Upload an image; with store=false the server only reads its embedded workflow. */
  upload: (file: File, store = true) => {
    const form = new FormData();
    form.append("file", file, file.name);
    return call<Upload>(`/api/files/input${store ? "" : "?store=false"}`, {
      method: "POST",
      body: form,
    });
  },
};

export type Upload = {
  name: string | null;
  workflow: Workflow | null;
  workflow_error?: string | null;
};

export type JobSummary = {
  id: string;
  status: string;
  created?: number | string | null;
  finished?: number | string | null;
  client_id?: string;
  workflow?: Workflow;
  files?: { kind: string; name: string; url: string }[];
  error?: { node_id?: string; message?: string; error_type?: string } | null;
};

/** The job id an event belongs to (`job` is an id, or an object with one). */
export function eventJob(ev: ServerEvent): string | null {
  const j = ev.job;
  if (typeof j === "string") return j;
  if (j && typeof j === "object" && typeof (j as { id?: unknown }).id === "string") {
    return (j as { id: string }).id;
  }
  return null;
}
