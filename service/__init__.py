"""The HTTP and websocket server: job queue, worker, files, canvas (see docs/api.md)."""

from service.app import make_app, make_engine
from service.config import Budgets, ConfigError, ServerConfig

__all__ = ["Budgets", "ConfigError", "ServerConfig", "make_app", "make_engine"]
