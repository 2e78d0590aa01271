// Dropping onto the canvas: a palette entry adds that node where it lands; a file is opened
// (a workflow .json, or an image that may embed one).
import { useReactFlow } from "@xyflow/react";
import { useCallback } from "react";
import { DRAG_MIME } from "./Palette";

export type CanvasDrop = {
  onDragOver: (e: React.DragEvent) => void;
  onDrop: (e: React.DragEvent) => void;
};

export function useCanvasDrop(
  addNode: (type: string, at?: { x: number; y: number }) => unknown,
  openFile: (file: File) => Promise<void>,
): CanvasDrop {
  const rf = useReactFlow();

  const onDragOver = useCallback((e: React.DragEvent) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  }, []);

  const onDrop = useCallback(
    (e: React.DragEvent) => {
      e.preventDefault();
      const type = e.dataTransfer.getData(DRAG_MIME);
      if (type) {
        const at = rf.screenToFlowPosition({ x: e.clientX, y: e.clientY });
        addNode(type, at);
        return;
      }
      const file = e.dataTransfer.files?.[0];
      if (file) void openFile(file);
    },
    [rf, addNode, openFile],
  );

  return { onDragOver, onDrop };
}
