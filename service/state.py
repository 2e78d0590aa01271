"""The long-lived objects of one server, reachable from every handler."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from graph.executor import Engine
from service.clients import ClientIds
from service.config import ServerConfig
from service.dispatcher import Dispatcher
from service.hub import Hub
from service.startup import EngineLoad
from service.status_feed import StatusFeed
from service.store import JobStore
from service.submission_memo import SubmissionMemo
from service.worker import Worker


@dataclass
class Services:
    config: ServerConfig
    engine: Engine
    worker: Worker  # the first of `workers` (the only one in process)
    hub: Hub
    clients: ClientIds  # issues and verifies client ids (job ownership)
    workers: list[Worker] = field(default_factory=list)
    store: JobStore | None = None  # opened on start-up
    dispatcher: Dispatcher | None = None
    load: EngineLoad = field(default_factory=EngineLoad)  # the engine's background load
    status: StatusFeed | None = None  # queue status for every websocket (opened on start-up)
    submissions: SubmissionMemo = field(default_factory=SubmissionMemo)  # resubmissions

    @property
    def jobs(self) -> JobStore:
        assert self.store is not None, "the app has not started"
        return self.store

    @property
    def queue(self) -> Dispatcher:
        assert self.dispatcher is not None, "the app has not started"
        return self.dispatcher


SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]
