"""A micro-cache in front of the read routes: a URL answered 200 in the last `revalidate_seconds`
is answered again with the same bytes, without routing or parameter validation.

Why: the routes already keep each answer for that long (LakeReader.answer), so a repeated URL
costs nothing but FastAPI's per-request work: routing, dependency solving and validating the
path and query parameters, about a third of the CPU of `GET /forecasts/{ticker}` under load.
Only successful GETs are kept (an error is recomputed on every request, so data that appears
after a 404 is served at once), keyed by the exact path and query string, for the same window as
the lake checks, so freshness does not change. Hits and misses are counted in `stats` for the
`stock_assets_microcache_*` metrics; the instrumentator outside matches the route template itself,
so cached answers are still counted under it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from serving.metrics import CacheStats

CACHED_PREFIXES = ("/forecasts", "/tickers", "/history/", "/models/", "/reports/")


class MicroCache:
    """Pure ASGI middleware; `seconds` 0 turns it off."""

    def __init__(self, app: Any, seconds: float, prefixes: tuple[str, ...] = CACHED_PREFIXES,
                 max_entries: int = 1024, stats: CacheStats | None = None) -> None:
        self.app = app
        self.stats = stats if stats is not None else CacheStats()
        self.ttl_ns = int(seconds * 1e9)
        self.prefixes = prefixes
        self.max_entries = max_entries
        # Touched only on the event loop (no await between a read and its write): no lock needed.
        self._entries: OrderedDict[tuple[str, bytes], tuple[int, Any, list, bytes]] = OrderedDict()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (
            not self.ttl_ns
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or not scope["path"].startswith(self.prefixes)
        ):
            await self.app(scope, receive, send)
            return
        key = (scope["path"], scope.get("query_string", b""))
        now = time.monotonic_ns()
        hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self.ttl_ns:
            _, route, headers, body = hit
            scope["route"] = route
            self.stats.hits += 1
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return

        self.stats.misses += 1
        start: dict = {}
        chunks: list[bytes] = []
        complete = False

        async def capture(message: dict) -> None:
            nonlocal complete
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        await self.app(scope, receive, capture)
        if start.get("status") == 200 and complete:
            entry = (now, scope.get("route"), list(start.get("headers", [])), b"".join(chunks))
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
