"""Per-client, per-route rate limits: slowapi's Limiter, checked by a pure ASGI middleware.

Why not slowapi's own middleware: it finds a request's endpoint by scanning `app.routes` for a
route with an `endpoint`, and FastAPI (0.165 here) keeps included routers as `_IncludedRouter`
entries that have none, so it would find nothing and exempt every route. Its decorators would
need a module-level limiter and a `request` argument on every route, and would run after the
micro-cache had already answered. So the Limiter (storage URI, fixed-window strategy, the
`limits` items) does the counting, and this middleware resolves the route template itself (with
the instrumentator's matcher, which understands included routers) and sits outside the
micro-cache, so cached answers count too. Over the limit: 429, `Retry-After` (seconds) and the
app's JSON error body, with `X-RateLimit-Limit` and `-Reset`. Allowed requests get no headers:
reading each window back for them doubled the limiter's CPU per request (benchmarks/bench_serving.py).
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

    def hit(self, route: str, client: str) -> RateLimitItem | None:
        """Count one request; the limit it broke, or None when it is allowed."""
        strategy = self.limiter.limiter
        for item in self.for_route(route):
            if not strategy.hit(item, client, route):
                return item
        return None

    def reset_at(self, item: RateLimitItem, route: str, client: str) -> float:
        """Epoch seconds when the client's window on the route ends."""
        return self.limiter.limiter.get_window_stats(item, client, route)[0]

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
        client = client_key(scope)
        broken = self.limits.hit(route, client)
        if broken is None:  # the common case costs one counter increment, no header work
            await self.app(scope, receive, send)
            return
        reset = self.limits.reset_at(broken, route, client)
        retry_after = max(1, math.ceil(reset - time.time()))
        response = error_response(
            429,
            detail=f"Rate limit exceeded on {route}: {broken} per client; retry in {retry_after} s.",
            error="rate_limited",
        )
        response.headers.update({
            "Retry-After": str(retry_after),
            "X-RateLimit-Limit": str(broken.amount),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        })  # fmt: skip
        await response(scope, receive, send)
