// A/B compare of two history images: pick A and B from the history, then a split slider (A on
// the left, B on the right) or the A/B toggle. All of it works from the keyboard (the pickers,
// the slider's arrows/Home/End, T toggles, Esc closes); the mouse drags the split on the image.
import { useEffect, useRef, useState } from "react";
import type { ShownImage } from "./useLightbox";
import "./canvas-layout.css";

type Props = { list: ShownImage[]; a: number; onClose: () => void };

function label(img: ShownImage, i: number): string {
  const file = img.url.split("/").pop()?.split("?")[0] ?? "";
  return `#${i + 1} ${img.job ? img.job.id.slice(0, 8) : ""} ${decodeURIComponent(file)}`.trim();
}

export function Compare({ list, a: firstA, onClose }: Props) {
  const [a, setA] = useState(firstA);
  const [b, setB] = useState(firstA + 1 < list.length ? firstA + 1 : Math.max(0, firstA - 1));
  const [split, setSplit] = useState(50);
  const [only, setOnly] = useState<"A" | "B" | null>(null); // the toggle: one image whole
  const slider = useRef<HTMLInputElement>(null);
  const stage = useRef<HTMLDivElement>(null);
  useEffect(() => slider.current?.focus(), []);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        e.preventDefault();
        onClose();
      } else if (e.key.toLowerCase() === "t" && (e.target as HTMLElement)?.tagName !== "SELECT") {
        e.preventDefault();
        setOnly((o) => (o === "A" ? "B" : "A"));
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);

  const splitAt = (clientX: number) => {
    const r = stage.current?.getBoundingClientRect();
    if (r && r.width) setSplit(Math.round(Math.max(0, Math.min(100, ((clientX - r.left) / r.width) * 100))));
  };
  const shownSplit = only === "A" ? 100 : only === "B" ? 0 : split;
  const picker = (name: "A" | "B", value: number, set: (i: number) => void) => (
    <label className="compare-pick">
      {name}
      <select aria-label={`Image ${name}`} value={value} onChange={(e) => set(Number(e.target.value))}>
        {list.map((img, i) => (
          <option key={`${img.url}-${i}`} value={i}>
            {label(img, i)}
          </option>
        ))}
      </select>
    </label>
  );

  return (
    <div className="compare" role="dialog" aria-modal="true" aria-label="Compare images A and B">
      <div className="compare-bar">
        {picker("A", a, setA)}
        {picker("B", b, setB)}
        <button
          aria-pressed={only !== null}
          title="Show one image whole (T)"
          onClick={() => setOnly((o) => (o === "A" ? "B" : "A"))}
        >
          {only ? `Showing ${only}` : "Toggle A/B"}
        </button>
        {only && <button onClick={() => setOnly(null)}>Split</button>}
        <button className="compare-close" aria-label="Close" title="Close (Esc)" onClick={onClose}>
          ✕
        </button>
      </div>
      <div
        className="compare-stage"
        ref={stage}
        onPointerDown={(e) => {
          setOnly(null);
          splitAt(e.clientX);
          e.currentTarget.setPointerCapture(e.pointerId);
        }}
        onPointerMove={(e) => e.buttons === 1 && splitAt(e.clientX)}
      >
        <img className="compare-a" src={list[a]?.url} alt={`A: ${label(list[a], a)}`} draggable={false} />
        <img
          className="compare-b"
          src={list[b]?.url}
          alt={`B: ${label(list[b], b)}`}
          draggable={false}
          style={{ clipPath: `inset(0 0 0 ${shownSplit}%)` }}
        />
        <div className="compare-line" style={{ left: `${shownSplit}%` }} />
        <span className="compare-tag left">A</span>
        <span className="compare-tag right">B</span>
      </div>
      <input
        ref={slider}
        className="compare-slider"
        type="range"
        min={0}
        max={100}
        value={shownSplit}
        aria-label="Split between A (left) and B (right)"
        aria-valuetext={`A ${shownSplit}%, B ${100 - shownSplit}%`}
        onChange={(e) => {
          setOnly(null);
          setSplit(Number(e.target.value));
        }}
      />
    </div>
  );
}
