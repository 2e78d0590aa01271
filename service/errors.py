"""The one error shape of the API: ``{"error": {"type", "message", "details"}}``."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class ApiError(Exception):
    """Raised by handlers; turned into a JSON response by the error middleware."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.details = details
        self.headers = headers or {}

    def response(self) -> web.Response:
        return error_response(self.status, self.type, self.message, self.details, self.headers)


def error_response(
    status: int,
    type: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"type": type, "message": message, "details": details}}
    return web.json_response(body, status=status, headers=headers)


# How aiohttp's own HTTP exceptions are named in the error body.
STATUS_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "queue_full",
    500: "internal_error",
}
