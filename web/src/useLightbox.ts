// The full-size image view: which image is open, and the job it came from (fetched in full
// when opened, since job lists carry no workflow).
import { useEffect, useState, type Dispatch, type SetStateAction } from "react";
import { api, type JobSummary } from "./api";

/** One image of the history, with the job that made it. */
export type ShownImage = { url: string; job?: JobSummary };
/** The open image; `list`/`index` when it came from the history (arrows step through it). */
export type LightboxState = (ShownImage & { list?: ShownImage[]; index?: number }) | null;

export function useLightbox(): [LightboxState, Dispatch<SetStateAction<LightboxState>>] {
  const [lightbox, setLightbox] = useState<LightboxState>(null);

  // Job lists carry no workflow: fetch the job's detail when its image is opened.
  useEffect(() => {
    const job = lightbox?.job;
    if (!job || job.workflow) return;
    let live = true;
    api
      .job(job.id)
      .then((d) => live && setLightbox((l) => (l && l.job?.id === d.id ? { ...l, job: d } : l)))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [lightbox]);

  return [lightbox, setLightbox];
}
