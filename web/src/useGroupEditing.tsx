// What the editor does with groups: create one around the selection (Ctrl+G or a node's
// right-click menu), the group menu (rename, colour, delete), and the frames' drag and resize;
// each change is one undo step.
import { useCallback, useState, type ReactNode } from "react";
import { GroupMenu, useGroupShortcut } from "./Groups";
import { frameAround, freshGroupId, type Group } from "./groups";
import type { GraphState } from "./useGraphState";

export function useGroupEditing(graph: Pick<GraphState, "groups" | "nodesRef" | "setNodes">, commit: () => void) {
  const { groups, groupsRef, setGroups } = graph.groups;
  const [menu, setMenu] = useState<{ id: string; x: number; y: number } | null>(null);

  /** A new group around the selected nodes; from a node's menu, around that node unless it
   * is part of the selection. */
  const groupSelected = useCallback(
    (nodeId?: string) => {
      const nodes = graph.nodesRef.current;
      let picked = nodes.filter((n) => n.selected);
      if (nodeId && !picked.some((n) => n.id === nodeId)) picked = nodes.filter((n) => n.id === nodeId);
      const frame = frameAround(picked, freshGroupId(groupsRef.current));
      if (!frame) return;
      setGroups((gs) => [...gs, frame]);
      commit();
    },
    [graph.nodesRef, groupsRef, setGroups, commit],
  );
  useGroupShortcut(groupSelected);

  const change = (id: string, patch: Partial<Group>) => {
    setGroups((gs) => gs.map((g) => (g.id === id ? { ...g, ...patch } : g)));
    commit();
  };
  const open = menu && groups.find((g) => g.id === menu.id);
  const menuNode: ReactNode = open ? (
    <GroupMenu
      x={menu.x}
      y={menu.y}
      group={open}
      onChange={(patch) => change(open.id, patch)}
      onDelete={() => {
        setGroups((gs) => gs.filter((g) => g.id !== open.id));
        commit();
      }}
      onClose={() => setMenu(null)}
    />
  ) : null;

  return {
    groupSelected,
    menu: menuNode,
    layer: {
      groups,
      setGroups,
      nodesRef: graph.nodesRef,
      setNodes: graph.setNodes,
      onMenu: (id: string, x: number, y: number) => setMenu({ id, x, y }),
      onChanged: commit,
    },
  };
}
