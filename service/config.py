"""Server settings: one dataclass built by server.py from the command line
(or directly by tests), so nothing reads arguments or globals at import."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from graph.cache import DEFAULT_BUDGET

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_HINT = "cd web && npm ci && npm run build"


class ConfigError(ValueError):
    """Settings that must not be started with (e.g. an open bind without a token)."""


@dataclass(frozen=True)
class Budgets:
    """Cross-field resource limits checked before a job is queued (400 budget_exceeded)."""

    max_pixels: int = 2048 * 2048 * 4  # width * height * batch of what any one node makes
    max_steps: int = 200  # steps of any one node (as the node declares them: Node.cost)
    max_nodes: int = 500
    max_prompt_chars: int = 8000  # any string input
    max_total_steps: int = 2000  # steps summed over the workflow
    max_work: int = 2048 * 2048 * 4 * 200  # pixel-steps summed over the workflow


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8188
    data_dir: Path = REPO_ROOT / "data"  # queue database, input, output and temp folders
    models_dir: Path = REPO_ROOT / "models"
    workflows_dir: Path = REPO_ROOT / "workflows"
    web_dist: Path = REPO_ROOT / "web" / "dist"
    node_packages: tuple[str, ...] = ("nodes",)  # the operator's allowlist of node code
    auth_token: str | None = None
    insecure: bool = False  # allow a non-loopback bind without a token
    allow_pickle: bool = False
    allowed_origins: tuple[str, ...] = ()  # extra origins allowed to change state (proxies)
    allowed_hosts: tuple[str, ...] = ()  # extra Host names (reverse proxies, LAN names)
    history_limit: int = 1000  # finished jobs kept in the database
    max_queue: int = 100  # queued jobs before POST /api/jobs answers 429
    max_body_bytes: int = 5 * 1024 * 1024  # JSON request bodies
    max_upload_bytes: int = 32 * 1024 * 1024
    max_upload_pixels: int = 4096 * 4096
    cache_budget: int = DEFAULT_BUDGET
    model_budgets: dict[str, int] = field(default_factory=dict)  # device -> bytes (models)
    budgets: Budgets = field(default_factory=Budgets)
    ws_queue_limit: int = 256  # pending messages per websocket before progress is dropped
    preview_size: int = 256  # longest side of progress preview images
    preview_interval: float = 0.1  # seconds between two previews of one job
    shutdown_timeout: float = 10.0  # seconds to wait for the running job on shutdown
    # Workers (service/workers/): "inprocess", "process:N", "process:cuda:0,cuda:1", "ray"
    workers: str = "inprocess"
    ray_address: str | None = None  # "auto", "ray://host:10001"; None: a local Ray
    max_attempts: int = 2  # claims of a job whose worker keeps dying, then worker_lost
    lease_seconds: float = 30.0  # a job of a server silent this long is released
    schedule_lookahead: int = 32  # queued jobs searched for a model-affinity match
    schedule_max_wait: float = 120.0  # seconds before a job may no longer be passed over
    job_timeout: float | None = 3600.0  # seconds a job may run before it is interrupted
    engine_wait: float = 120.0  # seconds an API request waits for the engine to load
    threads: int | None = None  # torch threads per job (None: nodes.sd.runtime's policy)

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "jobs.sqlite3"

    def check_bind(self) -> None:
        """Refuse to listen beyond loopback without a token unless told --insecure."""
        if not is_loopback(self.host) and not self.auth_token and not self.insecure:
            raise ConfigError(
                f"refusing to listen on {self.host}: anyone who can reach it could run jobs "
                "and read your images. Pass --auth-token TOKEN (clients then send "
                "'Authorization: Bearer TOKEN' or open the page once with ?token=TOKEN), "
                "or --insecure to allow it without authentication."
            )


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False
