// Loads the node schema, then shows the editor (or says why it cannot).
import { ReactFlowProvider } from "@xyflow/react";
import { useCallback, useEffect, useState } from "react";
import { api } from "./api";
import { Editor } from "./Editor";
import type { Schema } from "./types";

export function App() {
  const [schema, setSchema] = useState<Schema | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(() => {
    api
      .nodes()
      .then((s) => {
        setSchema(s);
        setError(null);
      })
      .catch((e) => setError(String(e.message ?? e)));
  }, []);
  useEffect(reload, [reload]);
  if (!schema) {
    return (
      <div className="loading">
        {error ? `Could not reach the server: ${error}` : "Loading node types…"}
        {error && <button onClick={reload}>Retry</button>}
      </div>
    );
  }
  return (
    <ReactFlowProvider>
      <Editor schema={schema} reloadSchema={reload} />
    </ReactFlowProvider>
  );
}
