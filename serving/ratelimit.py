"""Per-client, per-route rate limits: slowapi's Limiter, checked by a pure ASGI middleware.

Why not slowapi's own middleware: it finds a request's endpoint by scanning `app.routes` for a
route with an `endpoint`, and FastAPI (0.165 here) keeps included routers as `_IncludedRouter`
entries that have none, so it would find nothing and exempt every route. Its decorators would
need a module-level limiter and a `request` argument on every route, and would run after the
micro-cache had already answered. So the Limiter (storage URI, fixed-window strategy, the
`limits` items) does the counting, and this middleware resolves the route template itself (with
the instrumentator's matcher, which understands included routers) and sits outside the
micro-cache, so cached answers count too. Over the limit: 429, `Retry-After` (seconds) and the
app's JSON error body; under it, `X-RateLimit-Limit` / `-Remaining` / `-Reset` on the answer.
"""

from __future__ import annotations

import math
import time
from typing import Any

from limits import RateLimitItem, parse_many
from prometheus_fastapi_instrumentator.routing import get_route_name
from slowapi import Limiter
from starlette.requests import HTTPConnection

from serving.errors import error_response

UNMATCHED = "<unmatched>"


def client_key(scope: dict) -> str:
    """The client's address (behind a proxy, run uvicorn with --proxy-headers to get the real one)."""
    client = scope.get("client")
    return client[0] if client else "unknown"


class RateLimits:
    """Which limits apply to a route template, and the slowapi Limiter that counts hits."""

    def __init__(self, default: str, per_route: dict[str, str], storage_uri: str) -> None:
        self.default = tuple(parse_many(default))
        self.per_route = {route: tuple(parse_many(value)) for route, value in per_route.items()}
        self.limiter = Limiter(key_func=lambda request: client_key(request.scope),
                               storage_uri=storage_uri, headers_enabled=True)

    def for_route(self, route: str) -> tuple[RateLimitItem, ...]:
        return self.per_route.get(route, self.default)

    def hit(self, route: str, client: str) -> tuple[bool, RateLimitItem, int, float]:
        """Count one request: (allowed, the tightest limit, requests left, reset epoch seconds)."""
        strategy = self.limiter.limiter
        verdict: tuple[bool, RateLimitItem, int, float] | None = None
        for item in self.for_route(route):
            allowed = strategy.hit(item, client, route)
            reset, remaining = strategy.get_window_stats(item, client, route)
            candidate = (allowed, item, remaining, reset)
            if verdict is None or not allowed or (verdict[0] and remaining < verdict[2]):
                verdict = candidate
            if not allowed:
                break
        assert verdict is not None, "a route without limits"
        return verdict

    def reset(self) -> None:
        self.limiter.reset()


class RateLimitMiddleware:
    """429s for a client over its limit on a route; the limit headers on every other answer."""

    def __init__(self, app: Any, limits: RateLimits, max_paths: int = 4096) -> None:
        self.app = app
        self.limits = limits
        # path -> route template: matching every route's regex costs more than the count itself.
        self._templates: dict[str, str] = {}
        self._max_paths = max_paths

    def _template(self, scope: dict) -> str:
        path = scope["path"]
        template = self._templates.get(path)
        if template is None:
            template = get_route_name(HTTPConnection(scope), False) or UNMATCHED
            if len(self._templates) >= self._max_paths:
                self._templates.clear()
            self._templates[path] = template
        return template

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self._template(scope)
        allowed, item, remaining, reset = self.limits.hit(route, client_key(scope))
        retry_after = max(1, math.ceil(reset - time.time()))
        headers = {
            "X-RateLimit-Limit": str(item.amount),
            "X-RateLimit-Remaining": str(max(remaining, 0)),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }
        if not allowed:
            response = error_response(
                429,
                detail=f"Rate limit exceeded on {route}: {item} per client; retry in "
                f"{retry_after} s.",
                error="rate_limited",
            )
            response.headers.update({**headers, "Retry-After": str(retry_after)})
            await response(scope, receive, send)
            return

        extra = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                # A new list: the micro-cache keeps the one it captured for its replays.
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
