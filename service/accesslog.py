"""The access log without secrets: a token given as ``?token=`` (how the canvas
is opened on a protected server) or in a header never reaches the log."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.abc import BaseRequest
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
