"""Request guards, outermost first: JSON errors, Host allowlist (DNS rebinding),
token authentication, and Origin checks on state-changing requests and the
websocket (CSRF, including ``Origin: null``)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from service.config import ServerConfig, is_loopback, is_wildcard
from service.errors import STATUS_TYPES, ApiError, error_response

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOKEN_COOKIE = "sdgraph_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as ``{"error": {type, message, details}}``."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = STATUS_TYPES.get(exc.status, "http_error")
        return error_response(exc.status, kind, exc.reason, headers=_passthrough(exc))
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal server error")


def _passthrough(exc: web.HTTPException) -> dict[str, str]:
    keep = ("Allow", "WWW-Authenticate", "Retry-After")
    return {k: v for k, v in exc.headers.items() if k in keep}


@web.middleware
async def safe_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def host_name(host_header: str) -> str:
    """The name part of a Host header ("[::1]:8188" -> "::1", "a:80" -> "a")."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.rsplit(":", 1)[0]
    return host


def host_allowed(host_header: str, config: ServerConfig) -> bool:
    name = host_name(host_header)
    if not name:
        return False
    if name in {h.lower() for h in config.allowed_hosts}:
        return True
    if is_loopback(name):
        return True
    if is_wildcard(config.host):
        # Listening everywhere: Host names cannot be known in advance, so only an explicit
        # --allow-host list restricts them; the token (required for such binds) still does.
        return not config.allowed_hosts
    return name == host_name(config.host)


def origin_allowed(request: web.Request, config: ServerConfig) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        # Non-browser clients send no Origin; a browser that says cross-site is refused.
        site = request.headers.get("Sec-Fetch-Site", "").lower()
        return site != "cross-site" or bool(config.allowed_origins)
    origin = origin.strip()
    if origin.lower() == "null":
        return False
    if origin.rstrip("/") in {o.rstrip("/") for o in config.allowed_origins}:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    # Same origin = same scheme and host:port; https://host:PORT is another site
    # than the http://host:PORT served here.
    return parts.scheme == request.scheme and parts.netloc.lower() == request.host.lower()


def _presented_token(request: web.Request) -> tuple[str | None, bool]:
    """(token, came from the query string)."""
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    if "token" in request.query:
        return request.query["token"], True
    return request.cookies.get(TOKEN_COOKIE), False


def make_guard(config: ServerConfig) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not host_allowed(request.host, config):
            raise ApiError(
                403,
                "bad_host",
                f"Host {request.host!r} is not served here; use --allow-host to add a name",
            )
        from_query = False
        if config.auth_token:
            token, from_query = _presented_token(request)
            if token is None or not hmac.compare_digest(token.encode(), config.auth_token.encode()):
                raise ApiError(
                    401,
                    "unauthorized",
                    "this server needs its token: send 'Authorization: Bearer "
                    "TOKEN', or open the page once with ?token=TOKEN",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if (request.method in UNSAFE_METHODS or upgrade) and not origin_allowed(request, config):
            raise ApiError(
                403,
                "cross_origin",
                f"requests from origin {request.headers.get('Origin')!r} may not "
                "change state here; use --allow-origin for a proxy",
            )
        response = await handler(request)
        if from_query and not response.prepared:
            # The canvas keeps working without the token in every URL.
            response.set_cookie(
                TOKEN_COOKIE, config.auth_token or "", httponly=True, samesite="Strict", path="/"
            )
        return response

    return guard
