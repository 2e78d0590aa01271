"""Engine events as the JSON messages a websocket client receives."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from graph.events import Event, Progress


def file_url(kind: str, name: str) -> str:
    return f"/api/files/{quote(kind)}/{quote(name)}"


def with_urls(files: list[dict[str, str]]) -> list[dict[str, str]]:
    """Engine file records ``{kind, name}`` plus the URL that serves them."""
    return [
        {"kind": f["kind"], "name": f["name"], "url": file_url(f["kind"], f["name"])} for f in files
    ]


class EventEncoder:
    """Turns one job's engine events into messages; previews are throttled per job."""

    def __init__(
        self,
        job_id: str,
        encode_preview: Callable[[Any], str | None],
        preview_interval: float = 0.1,
    ) -> None:
        self.job_id = job_id
        self._encode_preview = encode_preview
        self._interval = preview_interval
        self._last_preview = float("-inf")

    def __call__(self, event: Event) -> dict[str, Any]:
        message = event.to_json()
        message.pop("run_id", None)
        message["job"] = self.job_id
        if "files" in message:
            message["files"] = with_urls(message["files"])
        if isinstance(event, Progress):
            message["preview"] = None
            now = time.monotonic()
            if event.preview is not None and now - self._last_preview >= self._interval:
                self._last_preview = now
                message["preview"] = self._encode_preview(event.preview)
        return message
