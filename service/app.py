"""The application factory: routes, guards, and the start/stop of the job queue."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from graph.context import Resources
from graph.executor import Engine
from graph.models import ModelStore
from graph.registry import Registry
from graph.workspace import Workspace
from model_index import index_for
from service import canvas, routes_files, routes_import, routes_jobs, routes_meta, routes_ws
from service.accesslog import quiet_client_errors
from service.clients import ClientIds
from service.config import ServerConfig
from service.dispatcher import Dispatcher
from service.hub import Hub
from service.loop_mailbox import LoopMailbox
from service.scheduler import Policy, model_keys
from service.security import json_errors, make_guard, safe_headers
from service.startup import EngineLoad, make_engine_gate
from service.state import SERVICES, Services
from service.status_feed import StatusFeed
from service.store import JobStore
from service.worker import InProcessWorker, Worker
from service.workers import build_workers

log = logging.getLogger(__name__)


def make_workspace(config: ServerConfig) -> Workspace:
    """The data and models folders of the server (created when missing)."""
    return Workspace.at(
        config.data_dir, config.models_dir, allow_pickle=config.allow_pickle
    ).ensure()


def make_engine(config: ServerConfig, registry: Registry | None = None) -> Engine:
    """The one engine of the server: built-in nodes, the data and models folders."""
    workspace = make_workspace(config)
    return Engine(
        registry or load_registry(config.node_packages),
        workspace,
        cache_budget=config.cache_budget,
        resources=Resources(ModelStore(config.model_budgets)),
    )


def make_worker(config: ServerConfig, engine: Engine, name: str = "inprocess") -> InProcessWorker:
    """A worker running jobs on ``engine`` in this process (the server's own, or the one
    inside a process or Ray worker), with the per-job torch thread policy (or --threads)."""
    from functools import partial

    from nodes.sd.runtime import job_threads

    scope = partial(job_threads, override=config.threads)
    return InProcessWorker(engine, config.preview_size, config.preview_interval, scope, name)


def load_registry(packages: tuple[str, ...]) -> Registry:
    """Node types from the configured packages only (extension code is full trust)."""
    merged = Registry()
    for package in packages:
        found = Registry.from_package(package)
        for spec in found.nodes.values():
            merged.add(spec.cls)
        merged.choice_sources.update(found.choice_sources)
    return merged


def make_app(
    config: ServerConfig | None = None,
    *,
    engine: Engine | None = None,
    registry: Registry | None = None,
    worker: Worker | None = None,
    background: bool = False,
) -> web.Application:
    """Build the server. Tests inject an engine (or a registry of test nodes); the
    queue database opens and the worker thread starts when the app starts. With
    ``background`` (server.py) and nothing injected, the engine (torch, diffusers, node
    types) loads in a thread once the app starts, and API requests wait for it
    (`service.startup`); otherwise it is built here."""
    config = config or ServerConfig()
    quiet_client_errors()
    load = EngineLoad()
    workers: list[Worker] = []
    if not background or engine is not None or registry is not None or worker is not None:
        engine = engine or make_engine(config, registry)
        engine.workspace.ensure()
        workers = [worker] if worker is not None else build_workers(config, engine)
        worker = workers[0]
        load.mark_ready()
    app = web.Application(
        middlewares=[
            safe_headers,
            json_errors,
            make_guard(config),
            make_engine_gate(load, config.engine_wait),
        ],
        client_max_size=config.max_upload_bytes + (1 << 20),
    )
    # engine and worker stay None until the background load has finished
    app[SERVICES] = Services(
        config,
        engine,  # type: ignore[arg-type]
        worker,  # type: ignore[arg-type]
        Hub(config.ws_queue_limit),
        ClientIds.at(config.data_dir),
        load=load,
        workers=workers,
    )
    for table in (
        routes_jobs.routes,
        routes_import.routes,
        routes_files.routes,
        routes_meta.routes,
        routes_ws.routes,
        canvas.routes,
    ):  # the canvas catch-all comes last
        app.add_routes(table)
    app.on_startup.append(_start)
    app.on_shutdown.append(_close_sockets)
    app.on_cleanup.append(_stop)
    return app


async def _start(app: web.Application) -> None:
    svc = app[SERVICES]
    loop = asyncio.get_running_loop()
    cfg = svc.config
    svc.store = JobStore(
        cfg.db_path,
        cfg.history_limit,
        max_attempts=cfg.max_attempts,
        lease_seconds=cfg.lease_seconds,
    )
    # the engine may still be loading: the temp folder comes from the same settings
    workspace = svc.engine.workspace if svc.load.ready else make_workspace(svc.config)
    cleared = await asyncio.to_thread(workspace.clear_temp)
    if cleared:
        log.info("cleared %d preview file(s) of an earlier run from the temp folder", cleared)
    if svc.store.recovered:
        log.warning(
            "jobs left running by a stopped server: %s",
            ", ".join(f"{k} -> {v}" for k, v in svc.store.recovered.items()),
        )

    mailbox = LoopMailbox(loop)  # a job's messages wake the loop once, not each

    def notify(client_id: str, message: dict[str, Any]) -> None:
        mailbox.call(svc.hub.send, client_id, message)

    def notify_all(message: dict[str, Any]) -> None:
        mailbox.call(svc.hub.broadcast, message)

    # one status message per 50 ms at most, however many jobs change state
    svc.status = status = StatusFeed(
        loop, lambda: svc.queue.snapshot(), svc.hub.broadcast, mailbox.call
    )

    # first sight of the model files: hash them in the background
    loop.run_in_executor(None, index_for(workspace).scan)

    def start_dispatcher(engine: Engine, workers: Worker | list[Worker]) -> None:
        listed = workers if isinstance(workers, list) else [workers]
        svc.engine, svc.worker, svc.workers = engine, listed[0], listed
        cfg = svc.config
        registry = engine.registry
        svc.dispatcher = Dispatcher(
            svc.store,
            listed,
            notify,
            notify_all,
            models_of=lambda workflow: model_keys(workflow, registry),
            policy=Policy(cfg.schedule_lookahead, cfg.schedule_max_wait),
            job_timeout=cfg.job_timeout,
            status_changed=status.request,
        )
        svc.dispatcher.start()

    if svc.load.ready:
        start_dispatcher(svc.engine, svc.workers or [svc.worker])
    else:
        config = svc.config

        def build() -> tuple[Engine, list[Worker]]:
            engine = make_engine(config)
            return engine, build_workers(config, engine)

        svc.load.start(build, start_dispatcher)


async def _close_sockets(app: web.Application) -> None:
    await app[SERVICES].hub.close_all()


async def _stop(app: web.Application) -> None:
    svc = app[SERVICES]
    svc.load.abandon()
    if svc.dispatcher is not None:
        done = await asyncio.to_thread(svc.dispatcher.stop, svc.config.shutdown_timeout)
        if not done:
            log.warning(
                "a running job did not stop in time; the next start queues it again "
                "(or fails it once out of attempts)"
            )
    if svc.status is not None:
        svc.status.close()  # a status message still due would read a closed store
    if svc.store is not None:
        svc.store.close()
