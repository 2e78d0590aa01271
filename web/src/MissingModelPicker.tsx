// Shown under a model input that validation reported as model_missing: the local files of
// the same kind and family (the family the saved workflow recorded, else that of the file
// the name still points at), grouped by family; a click points the input at that file.
import { useModelFiles, type ModelFile } from "./useModelFiles";

// choice sources of model inputs -> the models sub-folder (model_index/resolve.py)
const KINDS: Record<string, string> = {
  checkpoints: "checkpoints",
  loras: "loras",
  vae: "vae",
  vaes: "vae",
  embeddings: "embeddings",
};

type Props = {
  source: string;
  field: string;
  value: unknown;
  family?: string; // recorded in the workflow's models section when it was saved
  onPick: (name: string) => void;
};

export function MissingModelPicker({ source, field, value, family: recorded, onPick }: Props) {
  const files = useModelFiles();
  const kind = KINDS[source];
  if (!kind) return null;
  const ofKind = (files ?? []).filter((f) => f.kind === kind);
  // the file now under that name has other content, but its family says what fits
  const family = recorded ?? ofKind.find((f) => f.name === value)?.family;
  const fitting = family ? ofKind.filter((f) => f.family === family && f.name !== value) : ofKind;
  const groups: Record<string, ModelFile[]> = {};
  for (const f of fitting) (groups[f.family ?? "unknown family"] ??= []).push(f);
  return (
    <div className="gnode-pick nodrag nowheel" data-pick-for={field}>
      <div className="gnode-pick-head">
        {files === null
          ? "looking for local files…"
          : fitting.length
            ? `use a local ${family ? `${family} ` : ""}file instead:`
            : `no local ${kind} file to use instead`}
      </div>
      {Object.entries(groups).map(([fam, list]) => (
        <div className="gnode-pick-group" key={fam} role="group" aria-label={fam}>
          <span className="gnode-pick-family">{fam}</span>
          {list.map((f) => (
            <button
              type="button"
              key={f.name}
              className="gnode-pick-file"
              title={f.sha256 ? `sha256 ${f.sha256}` : "hashing…"}
              onClick={() => onPick(f.name)}
            >
              {f.name}
            </button>
          ))}
        </div>
      ))}
    </div>
  );
}
