"""What the server logs about requests: the access log without secrets (a token
given as ``?token=``, how the canvas is opened on a protected server, or in a header
never reaches the log), and a client's malformed request as one warning line, not
as an error with a traceback (aiohttp answers it 400 itself)."""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp.abc import BaseRequest
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_log import AccessLogger
from aiohttp.web_response import StreamResponse

REDACTED = "[redacted]"
_SECRET_PARAM = re.compile(r"(?i)([?&;](?:token|auth_token|access_token|api_key)=)[^&;#\s]*")
_SECRET_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie")
_URL_HEADERS = ("Referer", "Origin")
_SECRET_KEYS = frozenset(h.lower() for h in _SECRET_HEADERS)
_URL_KEYS = frozenset(h.lower() for h in _URL_HEADERS)
_MISSING = object()


def redact_url(url: str) -> str:
    """``url`` with the values of secret query parameters replaced."""
    return _SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, url)


class _RedactedHeaders:
    """A request's headers as the access logger reads them (``get``), secrets replaced
    on the way out: copying every header of every request cost more than the log line."""

    def __init__(self, headers: Any) -> None:
        self._headers = headers

    def get(self, name: str, default: Any = None) -> Any:
        value = self._headers.get(name, default)
        if value is default:
            return value
        key = name.lower()
        if key in _SECRET_KEYS:
            return REDACTED
        return redact_url(value) if key in _URL_KEYS else value

    def __getitem__(self, name: str) -> Any:
        value = self.get(name, _MISSING)
        if value is _MISSING:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return name in self._headers

    def __bool__(self) -> bool:
        return bool(self._headers)


class _RedactedRequest:
    """What the access logger reads of a request, with secrets replaced."""

    def __init__(self, request: BaseRequest) -> None:
        self._request = request
        self.headers = _RedactedHeaders(request.headers)
        self.path_qs = redact_url(request.path_qs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


class RedactingAccessLogger(AccessLogger):
    """aiohttp's access logger (same format) over the redacted request."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        super().log(_RedactedRequest(request), response, time)  # type: ignore[arg-type]


class ClientErrorFilter(logging.Filter):
    """Turns aiohttp's "Error handling request" record for a request it could not
    parse (a line over 8 KB, a bad header: answered 400) into a one-line warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 0) < 500:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = (
                "refused a malformed request (%s): %s",
                (exc.code, exc.message),
            )
            record.exc_info, record.exc_text = None, None
        return True


def quiet_client_errors() -> None:
    """Install `ClientErrorFilter` on aiohttp's server logger (once per process)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, ClientErrorFilter) for f in logger.filters):
        logger.addFilter(ClientErrorFilter())
