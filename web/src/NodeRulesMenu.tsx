// The node menu's entries for node modes and converted widgets (see useNodeRules).
import { convertibleInputs, isConverted } from "./nodeRules";
import type { NodeSchema } from "./types";
import type { NodeRules } from "./useNodeRules";
import type { FlowNode } from "./workflow";

type Props = { node: FlowNode; spec: NodeSchema | undefined; rules: NodeRules; onClose: () => void };

export function NodeRulesMenu({ node, spec, rules, onClose }: Props) {
  const act = (fn: () => void) => () => {
    fn();
    onClose();
  };
  return (
    <>
      <button role="menuitem" onClick={act(() => rules.toggleMode("bypass", [node.id]))}>
        {node.data.mode === "bypass" ? "Stop bypassing" : "Bypass"} <kbd>Ctrl+B</kbd>
      </button>
      <button role="menuitem" onClick={act(() => rules.toggleMode("mute", [node.id]))}>
        {node.data.mode === "mute" ? "Unmute" : "Mute"} <kbd>Ctrl+M</kbd>
      </button>
      {convertibleInputs(spec).map((inp) => {
        const on = isConverted(node, inp);
        return (
          <button
            key={inp.name}
            role="menuitem"
            onClick={act(() => rules.setConverted(node.id, inp.name, !on))}
          >
            {on ? `Convert ${inp.name} to widget` : `Convert ${inp.name} to input`}
          </button>
        );
      })}
    </>
  );
}
