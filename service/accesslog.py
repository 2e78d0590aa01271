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
from multidict import CIMultiDict

REDACTED = "[redacted]"
_SECRET_PARAM = re.compile(r"(?i)([?&;](?:token|auth_token|access_token|api_key)=)[^&;#\s]*")
_SECRET_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie")
_URL_HEADERS = ("Referer", "Origin")


def redact_url(url: str) -> str:
    """``url`` with the values of secret query parameters replaced."""
    return _SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, url)


class _RedactedRequest:
    """What the access logger reads of a request, with secrets replaced."""

    def __init__(self, request: BaseRequest) -> None:
        self._request = request
        headers = CIMultiDict(request.headers)
        for name in _SECRET_HEADERS:
            if name in headers:
                headers[name] = REDACTED
        for name in _URL_HEADERS:
            if name in headers:
                headers[name] = redact_url(headers[name])
        self.headers = headers
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
