"""Prometheus metrics: HTTP traffic through prometheus-fastapi-instrumentator, and the pipeline's
own gauges (data age, forecast quality, micro-cache hits) computed from the lake at scrape time.

Why the instrumentator: it is the dependency we declare, it labels requests by route template
(`handler="/forecasts/{ticker}"`, never the raw path, so label cardinality stays bounded whatever
URLs clients try) and its histogram gives the dashboard's p50/p95/p99. The pipeline gauges are
collectors that read the lake when Prometheus scrapes, so there is nothing to keep up to date and
the API stays read-only. Each app owns its registry (tests build many apps in one process).

Exported names (the Grafana dashboard's panels query these; a test checks that they exist):

| metric | labels | what |
|---|---|---|
| http_requests_total | method, handler, status | requests (the instrumentator's) |
| http_request_duration_seconds | method, handler | latency histogram, LATENCY_BUCKETS |
| stock_assets_microcache_hits_total / _misses_total | | micro-cache lookups |
| stock_assets_microcache_hit_ratio | | hits / lookups since start |
| stock_assets_data_age_days | asset | days from the stalest ticker's newest date to today |
| stock_assets_data_last_write_age_seconds | asset | seconds since the table was last written |
| stock_assets_data_tickers | asset | tickers with at least one partition |
| stock_assets_forecast_rolling_mape | ticker | latest forecast_performance rolling_mape (fraction) |
| stock_assets_forecast_rolling_coverage_80 | ticker | ...its rolling_coverage_80 (share) |
| stock_assets_forecast_rolling_n | ticker | matured forecasts behind those two |
| stock_assets_lake_unreadable | | lake files the scrape could not read (0 when all is well) |
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator, metrics

from serving.freshness import TableFreshness, table_freshness, write_age_seconds
from serving.lake_reader import FORECAST_PERFORMANCE, LakeDataError, LakeReader
from serving.settings import Settings

# Cached answers take well under a millisecond, a cold /history a few ms: the instrumentator's
# default buckets (0.1, 0.5, 1 s) would put every request in the first one.
# forecast_performance columns exported per ticker as stock_assets_forecast_<column>.
FORECAST_GAUGES = {
    "rolling_mape": "Rolling MAPE of matured forecasts (a fraction), latest forecast_performance.",
    "rolling_coverage_80": "Share of matured forecasts inside their 80 % band, latest "
    "forecast_performance.",
    "rolling_n": "Matured forecasts behind the rolling metrics.",
}
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class CacheStats:
    """Micro-cache lookups, counted by serving/microcache.py on the event loop (no lock)."""

    hits: int = 0
    misses: int = 0


class CacheCollector(Collector):
    """The micro-cache's hit and miss counters, and the hit ratio since start."""

    def __init__(self, stats: CacheStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        hits, misses = self.stats.hits, self.stats.misses
        yield CounterMetricFamily(
            "stock_assets_microcache_hits", "GETs answered from the micro-cache.", value=hits
        )
        yield CounterMetricFamily(
            "stock_assets_microcache_misses",
            "Cacheable GETs that went to the routes (first request or expired).",
            value=misses,
        )
        if hits + misses:
            yield GaugeMetricFamily(
                "stock_assets_microcache_hit_ratio",
                "Share of cacheable GETs answered from the micro-cache since the process started.",
                value=hits / (hits + misses),
            )


class PipelineCollector(Collector):
    """Data age and forecast quality, read from the lake at scrape time."""

    def __init__(self, reader: LakeReader, settings: Settings) -> None:
        self.reader = reader
        self.settings = settings

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The names without samples: registering the collector must not read the lake."""
        yield from self._families([], {}, 0)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        errors = 0
        try:
            tables = table_freshness(self.reader)
        except LakeDataError:  # a corrupt prices file: the request metrics must still be served
            tables, errors = [], errors + 1
        rows: dict[str, dict] = {}
        for ticker in self.reader.tickers():
            try:
                partition = self.reader.latest_or_none(FORECAST_PERFORMANCE, ticker)
            except LakeDataError:
                errors += 1
                continue
            if partition is not None:
                rows[ticker] = partition.frame.row(0, named=True)
        yield from self._families(tables, rows, errors)

    def _families(
        self, tables: list[TableFreshness], rows: dict[str, dict], errors: int
    ) -> Iterator[GaugeMetricFamily]:
        today, now = self.settings.today(), time.time()
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
        for table in tables:
            tickers.add_metric([table.asset], len(table.latest_by_ticker))
            age = table.age_days(today)
            if age is not None:
                age_days.add_metric([table.asset], age)
            seconds = write_age_seconds(table, now)
            if seconds is not None:
                write_age.add_metric([table.asset], seconds)
        yield from (age_days, write_age, tickers)
        for column, help_text in FORECAST_GAUGES.items():
            gauge = GaugeMetricFamily(f"stock_assets_forecast_{column}", help_text, labels=["ticker"])
            for ticker, row in rows.items():
                value = row.get(column)
                if value is not None and math.isfinite(value):
                    gauge.add_metric([ticker], float(value))
            yield gauge
        yield GaugeMetricFamily(
            "stock_assets_lake_unreadable",
            "Lake files this scrape could not read (their gauges are missing; /health names them).",
            value=errors,
        )


class Metrics:
    """The registry of one app: the instrumentator's request metrics and the pipeline gauges."""

    def __init__(self, reader: LakeReader, settings: Settings) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.cache = CacheStats()
        self.instrumentator = Instrumentator(
            should_group_status_codes=False,  # 404 and 422 are different stories
            should_group_untemplated=True,  # unknown paths share handler="none"
            registry=self.registry,
        ).add(
            metrics.default(
                latency_lowr_buckets=LATENCY_BUCKETS,
                registry=self.registry,
            )
        )
        self.registry.register(CacheCollector(self.cache))
        self.registry.register(PipelineCollector(reader, settings))

    def instrument(self, app) -> None:  # noqa: ANN001 - a FastAPI app
        """Add the instrumentator's middleware (outermost, so 401s, 429s and cached answers count)."""
        self.instrumentator.instrument(app)

    def render(self) -> bytes:
        return generate_latest(self.registry)
