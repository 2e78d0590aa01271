// Starting values for new nodes: the literals of the default workflow (txt2img), which uses
// the first real model (the demo model on a fresh install) at that model's own size; the
// schema's defaults are the random test model at 512 px.
import { useEffect, type RefObject } from "react";
import { api } from "./api";
import { asLink } from "./types";

export function usePresets(presets: RefObject<Record<string, Record<string, unknown>>>): void {
  useEffect(() => {
    let live = true;
    api
      .workflow("txt2img")
      .then((doc) => {
        if (!live) return;
        const out: Record<string, Record<string, unknown>> = {};
        for (const node of Object.values(doc.nodes ?? {})) {
          if (out[node.type]) continue; // the first node of each type
          out[node.type] = Object.fromEntries(
            Object.entries(node.inputs ?? {}).filter(([, v]) => !asLink(v)),
          );
        }
        presets.current = out;
      })
      .catch(() => undefined); // no default workflow: schema defaults
    return () => {
      live = false;
    };
  }, [presets]);
}
