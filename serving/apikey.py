"""An optional API key: when STOCK_ASSETS_API_KEY is set, requests must carry it.

Why these exemptions: `/health` is what container health checks and load balancers probe, and
the dashboard page (`/`, `/static/...`) holds no data, only the code that asks for it; every data
route, `/metrics`, `/drift/...` and the OpenAPI docs need the key. The dashboard sends the key it
was given in the URL fragment (`/#key=...`, never sent to the server or written to its logs) on
each of its data calls, keeping it in the tab's sessionStorage. Prometheus cannot set arbitrary
headers, so `Authorization: Bearer <key>` is accepted as well as `X-API-Key: <key>`. Keys are
compared in constant time; a 401 says which header to send, never what the key is.
"""

from __future__ import annotations

import hmac
from typing import Any

from serving.errors import error_response

API_KEY_HEADER = "X-API-Key"
OPEN_PATHS = frozenset({"/health", "/"})
OPEN_PREFIXES = ("/static/",)


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def presented_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The key in X-API-Key, else in `Authorization: Bearer ...`."""
    bearer = None
    for name, value in headers:
        if name == b"x-api-key":
            return value.strip()
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            bearer = value[7:].strip()
    return bearer


class ApiKeyMiddleware:
    """401 with the app's JSON error for a missing or wrong key; `key` None turns it off."""

    def __init__(self, app: Any, key: str | None) -> None:
        self.app = app
        self.key = key.encode() if key else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self.key is None or scope["type"] != "http" or is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        given = presented_key(scope.get("headers", []))
        if given is not None and hmac.compare_digest(given, self.key):
            await self.app(scope, receive, send)
            return
        reason = "is missing" if given is None else "is wrong"
        response = error_response(
            401,
            detail=f"This API needs a key and the request's key {reason}: send it in the "
            f"{API_KEY_HEADER} header (or Authorization: Bearer <key>).",
            error="unauthorized",
        )
        response.headers["WWW-Authenticate"] = "Bearer"
        await response(scope, receive, send)
