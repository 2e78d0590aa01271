"""Client ids: issued and signed by the server, so a job belongs to whoever holds its id.

An id is 16 random bytes plus an HMAC of them under a secret kept in the data folder
(``client_secret``, created on first start, mode 0600): the server verifies any id it
issued without storing ids, and nobody can pick, guess or forge one. Job listings,
job reads, cancels and websocket events are scoped to the id; a request carrying the
operator token (``--auth-token``) in its Authorization header sees every job."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from graph.workspace import open_regular
from service.errors import ApiError

SECRET_FILE = "client_secret"
SECRET_BYTES = 32
_NONCE_BYTES = _MAC_BYTES = 16
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{44}$")  # the one format, for POST and the websocket
HEADER = "X-Client-Id"
KEEP_VERIFIED = 4096  # verified ids remembered (then forgotten all at once and verified again)
RULE = "client ids are issued by this server: POST /api/clients gives one"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class ClientIds:
    """Issues and verifies signed client ids."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the client-id secret is too short")
        self._secret = secret
        self._verified: set[str] = set()  # ids whose signature held (it always will)

    @classmethod
    def at(cls, data_dir: Path) -> ClientIds:
        """The secret of ``data_dir``, created there (0600) on first use."""
        path = Path(data_dir) / SECRET_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            with open_regular(path) as fh:
                secret = fh.read(4096)
            if len(secret) < 16:
                raise ValueError(
                    f"{path} holds no usable secret ({len(secret)} bytes): delete it and a new "
                    "one is made at the next start (client ids issued so far stop working)"
                ) from None
            return cls(secret)
        secret = secrets.token_bytes(SECRET_BYTES)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secret)
        return cls(secret)

    def _mac(self, nonce: str) -> str:
        digest = hmac.new(self._secret, nonce.encode(), hashlib.sha256).digest()
        return _b64(digest[:_MAC_BYTES])

    def issue(self) -> str:
        nonce = _b64(secrets.token_bytes(_NONCE_BYTES))
        return nonce + self._mac(nonce)

    def valid(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if value in self._verified:  # every request of a client sends its id: HMAC once
            return True
        if not CLIENT_ID.match(value):
            return False
        nonce, mac = value[:22], value[22:]
        if not hmac.compare_digest(mac, self._mac(nonce)):
            return False
        if len(self._verified) >= KEEP_VERIFIED:
            self._verified.clear()
        self._verified.add(value)
        return True

    def check(self, value: object) -> str:
        """``value`` if this server issued it; 400 ``bad_client_id`` otherwise."""
        if not self.valid(value):
            raise ApiError(400, "bad_client_id", f"unknown client_id: {RULE}")
        return str(value)


@dataclass(frozen=True)
class Caller:
    """Who is asking: a client (by its verified id, if it sent one) or the operator."""

    client_id: str | None
    operator: bool = False

    def owns(self, owner: str) -> bool:
        return self.operator or (self.client_id is not None and owner == self.client_id)


def is_operator(request: web.Request, auth_token: str | None) -> bool:
    """The operator token in the Authorization header (not the browser cookie, which
    every canvas user of a token-protected server shares)."""
    auth = request.headers.get("Authorization", "")
    if not auth_token or not auth.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(auth[7:].strip().encode(), auth_token.encode())


def caller(request: web.Request, ids: ClientIds, auth_token: str | None) -> Caller:
    """The caller of a job request: ``X-Client-Id`` header or ``client_id`` query."""
    presented = request.headers.get(HEADER) or request.query.get("client_id")
    operator = is_operator(request, auth_token)
    if presented is None:
        return Caller(None, operator)
    if operator and not ids.valid(presented):
        return Caller(None, True)  # the operator may filter by any stored id
    return Caller(ids.check(presented), operator)
