// The right-click menu of a node: rename, collapse, header colour, delete. What it changes is
// layout only (stored under the workflow's `ui.nodes`), so runs are unaffected.
import { useEffect, useRef, useState, type ReactNode } from "react";
import { ColourSwatches, useEscape } from "./menuParts";
import type { NodeUi } from "./workflow";

type Props = {
  x: number;
  y: number;
  nodeId: string;
  ui: NodeUi;
  defaultTitle: string;
  onChange: (patch: NodeUi) => void;
  onDelete: () => void;
  onClose: () => void;
  /** Put the selected nodes (or this one) in a new group. */
  onGroup?: () => void;
  /** More entries (node modes, converted widgets: NodeRulesMenu), above Delete. */
  children?: ReactNode;
};

export function NodeMenu({
  x,
  y,
  nodeId,
  ui,
  defaultTitle,
  onChange,
  onDelete,
  onClose,
  onGroup,
  children,
}: Props) {
  const [renaming, setRenaming] = useState(false);
  const [title, setTitle] = useState(ui.title ?? defaultTitle);
  const first = useRef<HTMLButtonElement>(null);
  useEffect(() => first.current?.focus(), []);
  useEscape(onClose);
  const left = Math.min(x, window.innerWidth - 210);
  const top = Math.min(y, window.innerHeight - 230);
  return (
    <div className="node-search-backdrop" onMouseDown={onClose} onContextMenu={(e) => e.preventDefault()}>
      <div
        className="node-menu"
        role="menu"
        aria-label={`Node ${nodeId}`}
        style={{ left, top }}
        onMouseDown={(e) => e.stopPropagation()}
      >
        {renaming ? (
          <input
            autoFocus
            aria-label="Node title"
            value={title}
            onChange={(e) => setTitle(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter") {
                onChange({ title: title.trim() && title.trim() !== defaultTitle ? title.trim() : undefined });
                onClose();
              }
            }}
          />
        ) : (
          <button ref={first} role="menuitem" onClick={() => setRenaming(true)}>
            Rename…
          </button>
        )}
        <button
          role="menuitem"
          onClick={() => {
            onChange({ collapsed: ui.collapsed ? undefined : true });
            onClose();
          }}
        >
          {ui.collapsed ? "Expand" : "Collapse"}
        </button>
        <ColourSwatches
          label="Header colour"
          onPick={(color) => {
            onChange({ color });
            onClose();
          }}
        />
        {onGroup && (
          <button
            role="menuitem"
            onClick={() => {
              onGroup();
              onClose();
            }}
          >
            Group selected nodes
          </button>
        )}
        {children}
        <button
          role="menuitem"
          onClick={() => {
            onDelete();
            onClose();
          }}
        >
          Delete
        </button>
      </div>
    </div>
  );
}
