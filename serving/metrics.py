"""Prometheus metrics: request counts, latency histograms per route, and the age of the data.

A pure ASGI middleware (not `BaseHTTPMiddleware`, which costs a task per request) labels requests
by route template (`/forecasts/{ticker}`), never by raw path, so label cardinality stays bounded
whatever URLs clients try. Counts are plain integers updated on the event loop and exposed by a
collector at scrape time: prometheus_client's own Counter/Histogram take several locks per
observation, a noticeable share of a cached request. Each app owns its registry.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from serving.freshness import table_freshness, write_age_seconds
from serving.lake_reader import LakeReader
from serving.settings import Settings

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNMATCHED = "<unmatched>"


class _RouteStats:
    """Latency histogram of one (method, route): bucket counts (the last is +Inf) and the sum."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0


class RequestMetrics(Collector):
    """Request counts and latencies, recorded by the middleware, exported at scrape time."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        self.latency: dict[tuple[str, str], _RouteStats] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        stats = self.latency.get((method, route))
        if stats is None:
            stats = self.latency[(method, route)] = _RouteStats()
        stats.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        stats.total += seconds

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "http_requests", "HTTP requests by method, route template and status code.",
            labels=["method", "route", "status"],
        )  # fmt: skip
        for (method, route, status), count in sorted(self.counts.items()):
            requests.add_metric([method, route, str(status)], count)
        latency = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Time from request start to the last body byte, by method and route template.",
            labels=["method", "route"],
        )
        for (method, route), stats in sorted(self.latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), stats.buckets, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            latency.add_metric([method, route], buckets, stats.total)
        yield from (requests, latency)


class DataAgeCollector(Collector):
    """Data-age gauges computed from the lake at scrape time (nothing to keep up to date)."""

    def __init__(self, reader: LakeReader, settings: Settings) -> None:
        self.reader = reader
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        today = self.settings.today()
        age_days = GaugeMetricFamily(
            "stock_assets_data_age_days",
            "Calendar days from the stalest ticker's newest date to today, per table.",
            labels=["asset"],
        )
        write_age = GaugeMetricFamily(
            "stock_assets_data_last_write_age_seconds",
            "Seconds since the pipeline last wrote a partition of the table.",
            labels=["asset"],
        )
        tickers = GaugeMetricFamily(
            "stock_assets_data_tickers", "Tickers with at least one partition.", labels=["asset"]
        )
        now = time.time()
        for table in table_freshness(self.reader):
            tickers.add_metric([table.asset], len(table.latest_by_ticker))
            age = table.age_days(today)
            if age is not None:
                age_days.add_metric([table.asset], age)
            seconds = write_age_seconds(table, now)
            if seconds is not None:
                write_age.add_metric([table.asset], seconds)
        yield from (age_days, write_age, tickers)


class Metrics:
    """The registry of one app: request metrics and data age."""

    def __init__(self, reader: LakeReader, settings: Settings) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = RequestMetrics()
        self.registry.register(self.requests)
        self.registry.register(DataAgeCollector(reader, settings))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Times each HTTP request and records it under its route template."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.observe = metrics.requests.observe

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            self.observe(scope["method"], template, status, time.perf_counter() - started)
