"""Serve the API and the web canvas: ``python server.py`` then open http://127.0.0.1:8188.

Options mirror `service.ServerConfig`; see docs/api.md for the API."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from graph.memory import add_memory_options, memory_budgets
from graph.node import NodeDeclarationError
from nodes.sd.runtime import configure_process
from service import make_app
from service.accesslog import RedactingAccessLogger
from service.config import BUILD_HINT, Budgets, ConfigError, ServerConfig
from service.store_file import StoreUnusable, check_database_file
from service.workers import parse_spec

__all__ = ["ServerConfig", "main", "make_app"]  # tests may use server.make_app(config)

configure_process()  # before torch loads: offline hub, passive OpenMP waits


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    d, b = ServerConfig(), Budgets()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default=d.host, help="address to listen on (default: loopback)")
    p.add_argument("--port", type=int, default=d.port)
    p.add_argument(
        "--data",
        type=Path,
        default=d.data_dir,
        help="queue database, input, output and temp folders",
    )
    p.add_argument(
        "--models",
        type=Path,
        default=d.models_dir,
        help="models folder (checkpoints in its checkpoints/)",
    )
    p.add_argument("--workflows", type=Path, default=d.workflows_dir)
    p.add_argument("--web-dist", type=Path, default=d.web_dist, help="built canvas folder")
    p.add_argument(
        "--nodes",
        action="append",
        default=[],
        metavar="PACKAGE",
        help="Python package of node types to load (default: nodes); repeatable",
    )
    p.add_argument(
        "--auth-token",
        default=os.environ.get("SDGRAPH_TOKEN"),
        help="require this bearer token on every request (env SDGRAPH_TOKEN)",
    )
    p.add_argument(
        "--insecure", action="store_true", help="allow a non-loopback address without --auth-token"
    )
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="also load pickle checkpoints (weights_only=True); default: safetensors",
    )
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        help="extra Origin allowed to change state (e.g. a dev proxy); repeatable",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        help="extra Host name to answer to (LAN name, proxy); repeatable",
    )
    p.add_argument(
        "--history-limit",
        type=int,
        default=d.history_limit,
        help="finished jobs kept in the history",
    )
    p.add_argument("--max-queue", type=int, default=d.max_queue)
    p.add_argument(
        "--cache-gb",
        type=float,
        default=d.cache_budget / 1024**3,
        help="node-output cache budget in GiB",
    )
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_bytes / 1024**2)
    p.add_argument(
        "--max-pixels",
        type=int,
        default=b.max_pixels,
        help="budget: width*height*batch of what any one node makes",
    )
    p.add_argument("--max-steps", type=int, default=b.max_steps)
    p.add_argument("--max-nodes", type=int, default=b.max_nodes)
    p.add_argument("--max-prompt-chars", type=int, default=b.max_prompt_chars)
    p.add_argument(
        "--max-total-steps",
        type=int,
        default=b.max_total_steps,
        help="budget: sampling steps summed over a workflow",
    )
    p.add_argument(
        "--max-work",
        type=int,
        default=b.max_work,
        help="budget: steps x width x height x batch summed over a workflow",
    )
    p.add_argument(
        "--job-timeout",
        type=float,
        default=d.job_timeout,
        metavar="SECONDS",
        help="interrupt and fail a job running longer than this (0: no limit)",
    )
    p.add_argument(
        "--threads", type=int, help="torch CPU threads per job (default: 1 for small images)"
    )
    p.add_argument(
        "--workers",
        default=d.workers,
        help="inprocess (default), process:N, process:cuda:0,cuda:1 (one child process per "
        "device), ray or ray:N (Ray actors; see README)",
    )
    p.add_argument(
        "--ray-address", help="Ray cluster to join (auto, ray://HOST:10001); default: start one"
    )
    p.add_argument(
        "--max-attempts",
        type=int,
        default=d.max_attempts,
        help="runs of a job whose worker keeps dying before it fails with worker_lost",
    )
    add_memory_options(p)
    a = p.parse_args(argv)
    try:
        model_budgets = memory_budgets(a.model_memory, a.gpu_memory)
    except ValueError as exc:
        p.error(str(exc))
    return ServerConfig(
        host=a.host,
        port=a.port,
        data_dir=a.data,
        models_dir=a.models,
        workflows_dir=a.workflows,
        web_dist=a.web_dist,
        node_packages=tuple(a.nodes) or d.node_packages,
        auth_token=a.auth_token or None,
        insecure=a.insecure,
        allow_pickle=a.allow_pickle,
        allowed_origins=tuple(a.allow_origin),
        allowed_hosts=tuple(a.allow_host),
        history_limit=a.history_limit,
        max_queue=a.max_queue,
        cache_budget=int(a.cache_gb * 1024**3),
        model_budgets=model_budgets,
        max_upload_bytes=int(a.max_upload_mb * 1024**2),
        job_timeout=a.job_timeout or None,
        budgets=Budgets(
            a.max_pixels,
            a.max_steps,
            a.max_nodes,
            a.max_prompt_chars,
            a.max_total_steps,
            a.max_work,
        ),
        threads=a.threads,
        workers=a.workers,
        ray_address=a.ray_address,
        max_attempts=a.max_attempts,
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = parse_args(argv)
    try:
        config.check_bind()
        parse_spec(config.workers)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from aiohttp import web

    try:
        # The project's own nodes load behind an open socket (start-up answers at once);
        # extension packages load first, so a bad declaration refuses to start.
        background = config.node_packages == ServerConfig().node_packages
        app = make_app(config, background=background)
    except (ConfigError, NodeDeclarationError) as exc:  # bad nodes; --workers ray, no Ray
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not (config.web_dist / "index.html").is_file():
        print(
            f"note: the canvas is not built ({config.web_dist} is missing); the API runs, "
            f"and / says how to build it: {BUILD_HINT}",
            file=sys.stderr,
        )
    host = f"[{config.host}]" if ":" in config.host else config.host
    try:
        if config.db_path.exists():  # the quick checks before saying "serving"
            check_database_file(config.db_path)
        print(f"serving on http://{host}:{config.port}/ (data: {config.data_dir})", flush=True)
        web.run_app(
            app,
            host=config.host,
            port=config.port,
            print=None,
            access_log_class=RedactingAccessLogger,
        )
    except StoreUnusable as exc:  # found at start-up: say what to do, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
