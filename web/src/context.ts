// What every node component reads: the schema, run state, validation issues and actions.
import { createContext, useContext } from "react";
import type { NodeRunState, Schema, ValidationIssue } from "./types";

export type CanvasContext = {
  schema: Schema;
  runState: Record<string, NodeRunState>;
  issues: Record<string, ValidationIssue[]>;
  setInput: (nodeId: string, name: string, value: unknown) => void;
  setSeedControl: (nodeId: string, name: string, on: boolean) => void;
  openImage: (url: string) => void;
  /** Seeds of the last submitted run (node -> input -> value) and their label. */
  lastRun: { seeds: Record<string, Record<string, unknown>>; label: string };
};

export const Ctx = createContext<CanvasContext | null>(null);

export function useCanvas(): CanvasContext {
  const c = useContext(Ctx);
  if (!c) throw new Error("canvas context missing");
  return c;
}
