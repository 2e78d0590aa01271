// Starting values for new nodes: the literals of the default workflow (txt2img), which uses
// the first real model (the demo model on a fresh install) at that model's own size; the
// schema's defaults are the random test model at 512 px. Also each checkpoint's native size
// (nativeSize.ts), fetched again when the schema is reloaded or the window regains focus (a
// checkpoint copied into the models folder meanwhile).
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

export function useNativeSizes(sizes: RefObject<Record<string, number>>, schemaVersion: unknown): void {
  useEffect(() => {
    let live = true;
    const load = () =>
      api
        .models()
        .then((m) => {
          if (live) sizes.current = m.native_sizes ?? {};
        })
        .catch(() => undefined); // unknown sizes: the presets' size
    void load();
    window.addEventListener("focus", load);
    return () => {
      live = false;
      window.removeEventListener("focus", load);
    };
  }, [sizes, schemaVersion]);
}
