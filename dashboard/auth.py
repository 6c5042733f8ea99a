"""HTTP basic authentication of the dashboard: every path but the health check asks for it.

A pure ASGI middleware, so that it guards NiceGUI's websocket (its socket.io endpoint) as well
as its pages; Starlette's BaseHTTPMiddleware sees HTTP requests only.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["REALM", "BasicAuthMiddleware"]

REALM = "ticket-pipeline dashboard"
# What a websocket refused before its handshake is closed with (policy violation).
_WEBSOCKET_POLICY_VIOLATION = 1008


class BasicAuthMiddleware:
    """Answer 401 with a Basic challenge to any request without the user and password, but on
    the `open_paths` (the probes' health check)."""

    def __init__(self, app: ASGIApp, *, user: str, password: str, open_paths: frozenset[str]) -> None:
        self._app, self._open_paths = app, open_paths
        # Compared as bytes: hmac.compare_digest refuses str with non-ASCII characters.
        self._user, self._password = user.encode(), password.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in ("http", "websocket")
            or scope["path"] in self._open_paths
            or self._authorized(Headers(scope=scope).get("authorization", ""))
        ):
            await self._app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": _WEBSOCKET_POLICY_VIOLATION})
        else:
            challenge = {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'}
            await PlainTextResponse("authentication required", 401, challenge)(scope, receive, send)

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, colon, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Both compared, whatever the first gives: the answer's time tells nothing of which failed.
        user_ok = hmac.compare_digest(user, self._user)
        password_ok = hmac.compare_digest(password, self._password)
        return bool(colon) and user_ok and password_ok
