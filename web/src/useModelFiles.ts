// Local model files with their families (GET /api/models), for pointing a missing model at one.
import { useEffect, useState } from "react";
import { parseJson } from "./json";

export type ModelFile = {
  kind: string;
  name: string;
  size: number;
  family: string | null;
  sha256: string | null;
};

/** The model index's files, fetched once per component that asks (null while loading). */
export function useModelFiles(): ModelFile[] | null {
  const [files, setFiles] = useState<ModelFile[] | null>(null);
  useEffect(() => {
    let live = true;
    fetch("/api/models")
      .then((r) => r.text())
      .then((text) => {
        const body = parseJson(text) as { files?: ModelFile[] };
        if (live) setFiles(Array.isArray(body.files) ? body.files : []);
      })
      .catch(() => live && setFiles([]));
    return () => {
      live = false;
    };
  }, []);
  return files;
}
