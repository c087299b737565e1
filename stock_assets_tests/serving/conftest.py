"""A real lake for the API tests: prices and indicators materialized by the real Dagster pipeline
(synthetic source, fixed end date), plus the forecasting/modeling/agent tables.

The tables after price_indicators (daily_forecast, forecast_performance, child_model,
model_history, agent_report) are written by the `write_contract_*` helpers below, in the exact
schema of docs/ARCHITECTURE.md, until their real assets exist. They are the ONLY place that stands
in for those assets: switch `pipeline_lake` to materialize the real ones when they land.
"""

from __future__ import annotations

import math
import shutil
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Self

import polars as pl
import pytest

from stock_assets.lake import atomic_write_parquet, partition_path

TICKERS = ("AAPL", "MSFT")
SYNTHETIC_START = "2023-01-03"
SYNTHETIC_END = date(2024, 7, 3)  # the session before Independence Day
HOLIDAY = date(2024, 7, 4)  # a weekday partition with the market closed: zero forecast rows
JUNETEENTH = date(2024, 6, 19)
HORIZON = 5
FORECAST_SESSIONS = 30  # forecast partitions per ticker (the last N sessions)
ROLLING_WINDOW = 20  # performance dates in the rolling metrics
REFERENCE_DATE = date(2024, 7, 5)  # "today" for freshness in these tests


# -- the real pipeline -----------------------------------------------------------------------


def materialize_prices(home: Path, tickers: Sequence[str], end: date, index: bool = True) -> None:
    """raw_prices + price_indicators per ticker (and market_index_prices) through Dagster."""
    import dagster as dg

    from stock_assets.features.assets import price_indicators
    from stock_assets.ingestion.assets import market_index_prices, raw_prices
    from stock_assets.ingestion.sources import PriceSourceResource
    from stock_assets.partitions import ticker_partitions
    from stock_assets.resources import build_resources

    resources = build_resources(
        home,
        price_source=PriceSourceResource(
            kind="synthetic", synthetic_start=SYNTHETIC_START, synthetic_end=end.isoformat()
        ),
    )
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ticker_partitions.name, list(tickers))
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    for ticker in tickers:
        result = dg.materialize(
            [raw_prices, price_indicators],
            partition_key=ticker,
            resources=resources,
            instance=instance,
            run_config=quiet,
        )
        assert result.success, f"materializing {ticker} failed"
    if index:
        result = dg.materialize(
            [market_index_prices], resources=resources, instance=instance, run_config=quiet
        )
        assert result.success, "materializing market_index_prices failed"


# -- stand-ins for the assets still being built (exact contract schema) ----------------------


def _created_at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 21, 5, tzinfo=UTC)


def model_name_of(ticker: str) -> str:
    return f"stock_assets_child_{ticker}"


def contract_forecast_frame(
    ticker: str,
    as_of: date,
    last_close: float,
    drift: float,
    model_version: str,
    horizon: int = HORIZON,
) -> pl.DataFrame:
    """daily_forecast rows for one (date, ticker): a drift path over the next sessions."""
    from stock_assets.calendar import next_sessions

    targets = next_sessions(as_of, horizon)
    returns = [drift * step for step in range(1, horizon + 1)]
    return pl.DataFrame(
        {
            "ticker": [ticker] * horizon,
            "as_of_date": [as_of] * horizon,
            "target_date": targets,
            "horizon": list(range(1, horizon + 1)),
            "last_close": [last_close] * horizon,
            "predicted_return": returns,
            "predicted_close": [last_close * math.exp(r) for r in returns],
            "model_name": [model_name_of(ticker)] * horizon,
            "model_version": [model_version] * horizon,
            "created_at": [_created_at(as_of)] * horizon,
        },
        schema_overrides={"created_at": pl.Datetime("us", "UTC"), "horizon": pl.Int64},
    )


def write_contract_forecast(
    lake_dir: Path,
    ticker: str,
    as_of: date,
    last_close: float,
    drift: float = 0.002,
    model_version: str = "1",
    horizon: int = HORIZON,
) -> Path:
    """Stand-in for daily_forecast[as_of|ticker]; returns the partition file."""
    frame = contract_forecast_frame(ticker, as_of, last_close, drift, model_version, horizon)
    path = partition_path(lake_dir, "daily_forecast", ticker, as_of.isoformat())
    atomic_write_parquet(frame, path)
    return path


def write_contract_market_closed(lake_dir: Path, asset: str, ticker: str, day: date) -> Path:
    """A partition for a weekday with no session: zero rows, as the real assets write."""
    template = contract_forecast_frame(ticker, SYNTHETIC_END, 1.0, 0.0, "1").head(0)
    if asset == "forecast_performance":
        template = contract_performance_frame(ticker, day, []).head(0)
    path = partition_path(lake_dir, asset, ticker, day.isoformat())
    atomic_write_parquet(template, path)
    return path


def contract_performance_frame(ticker: str, day: date, rows: list[dict]) -> pl.DataFrame:
    schema = {
        "ticker": pl.String, "as_of_date": pl.Date, "target_date": pl.Date, "horizon": pl.Int64,
        "predicted_close": pl.Float64, "actual_close": pl.Float64, "naive_close": pl.Float64,
        "ape": pl.Float64, "naive_ape": pl.Float64, "error": pl.Float64,
        "direction_hit": pl.Boolean, "in_sample": pl.Boolean, "model_version": pl.String,
        "rolling_mape": pl.Float64, "rolling_naive_mape": pl.Float64,
        "rolling_directional_accuracy": pl.Float64, "rolling_n": pl.Int64,
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def write_contract_performance(
    lake_dir: Path, ticker: str, prices: pl.DataFrame, forecasts: Sequence[pl.DataFrame]
) -> dict[date, pl.DataFrame]:
    """Stand-in for forecast_performance: per target date, the matured forecasts and the
    rolling metrics over the last ROLLING_WINDOW performance dates."""
    closes = dict(zip(prices["date"].to_list(), prices["close"].to_list(), strict=True))
    matured = pl.concat(list(forecasts)).filter(pl.col("target_date").is_in(list(closes)))
    by_date: dict[date, list[dict]] = {}
    for row in matured.sort("target_date", "as_of_date", "horizon").iter_rows(named=True):
        actual = closes[row["target_date"]]
        predicted, naive = row["predicted_close"], row["last_close"]
        by_date.setdefault(row["target_date"], []).append(
            {
                "ticker": ticker,
                "as_of_date": row["as_of_date"],
                "target_date": row["target_date"],
                "horizon": row["horizon"],
                "predicted_close": predicted,
                "actual_close": actual,
                "naive_close": naive,
                "ape": abs(predicted - actual) / actual,
                "naive_ape": abs(naive - actual) / actual,
                "error": predicted - actual,
                "direction_hit": (predicted >= naive) == (actual >= naive),
                "in_sample": False,
                "model_version": row["model_version"],
            }
        )
    written: dict[date, pl.DataFrame] = {}
    days = sorted(by_date)
    for index, day in enumerate(days):
        window = [
            r for d in days[max(0, index - ROLLING_WINDOW + 1) : index + 1] for r in by_date[d]
        ]
        rolling = {
            "rolling_mape": sum(r["ape"] for r in window) / len(window),
            "rolling_naive_mape": sum(r["naive_ape"] for r in window) / len(window),
            "rolling_directional_accuracy": sum(r["direction_hit"] for r in window) / len(window),
            "rolling_n": len(window),
        }
        frame = contract_performance_frame(ticker, day, [{**r, **rolling} for r in by_date[day]])
        atomic_write_parquet(
            frame, partition_path(lake_dir, "forecast_performance", ticker, day.isoformat())
        )
        written[day] = frame
    return written


def contract_model_card(
    ticker: str, version: str, trained_on: date, promoted: bool, production: str | None
) -> dict:
    return {
        "ticker": ticker,
        "model_name": model_name_of(ticker),
        "model_version": version,
        "run_id": f"run-{ticker}-{version}",
        "strategy": "transfer",
        "architecture": "lstm-2x32",
        "trained_at": datetime(trained_on.year, trained_on.month, trained_on.day, 20, tzinfo=UTC),
        "train_start": date(2023, 3, 1),
        "train_end": trained_on - timedelta(days=60),
        "test_mape_h1": 0.011 + 0.001 * int(version),
        "test_mape_h5": 0.025 + 0.001 * int(version),
        "naive_mape_h5": 0.028,
        "directional_accuracy_h5": 0.55,
        "promoted": promoted,
        "production_version": production,
        "decision_reason": "beats production on test MAPE h5"
        if promoted
        else "worse than production",
    }


def write_contract_models(lake_dir: Path, ticker: str, cards: Sequence[dict]) -> None:
    """Stand-in for child_model (the newest card) and model_history (every card)."""
    frame = pl.DataFrame(list(cards)).with_columns(pl.col("trained_at").dt.cast_time_unit("us"))
    atomic_write_parquet(frame.tail(1), partition_path(lake_dir, "child_model", ticker))
    atomic_write_parquet(frame, partition_path(lake_dir, "model_history", ticker))


def write_contract_report(
    lake_dir: Path, ticker: str, as_of: date, stance: str = "BULLISH"
) -> Path:
    """Stand-in for agent_report[as_of|ticker]."""
    frame = pl.DataFrame(
        {
            "ticker": [ticker],
            "as_of_date": [as_of],
            "stance": [stance],
            "confidence": ["Medium"],
            "rationale": [
                f"{ticker}: the 5-day path rises and the model beats the naive baseline."
            ],
            "markdown": [f"# {ticker} on {as_of}\n\nStance: **{stance}**."],
            "author": ["deterministic-analyst"],
            "cache_hit": [False],
            "created_at": [_created_at(as_of)],
        },
        schema_overrides={"created_at": pl.Datetime("us", "UTC")},
    )
    path = partition_path(lake_dir, "agent_report", ticker, as_of.isoformat())
    atomic_write_parquet(frame, path)
    return path


def drift_of(prices: pl.DataFrame, as_of: date) -> float:
    """A deterministic 'model': the mean log return of the 20 sessions up to as_of."""
    closes = prices.filter(pl.col("date") <= as_of)["close"].tail(21).to_list()
    return (math.log(closes[-1]) - math.log(closes[0])) / (len(closes) - 1)


@dataclass(frozen=True)
class Lake:
    home: Path
    tickers: tuple[str, ...]

    @property
    def dir(self) -> Path:
        return self.home / "lake"

    def prices(self, ticker: str) -> pl.DataFrame:
        return pl.read_parquet(partition_path(self.dir, "raw_prices", ticker))

    def forecast(self, ticker: str, day: date) -> pl.DataFrame:
        return pl.read_parquet(partition_path(self.dir, "daily_forecast", ticker, day.isoformat()))


def write_contract_tables(lake_dir: Path, tickers: Sequence[str]) -> None:
    """Forecasts for the last FORECAST_SESSIONS sessions, their performance, model cards for
    every ticker (AAPL: v1 in production, v2 rejected), an agent report for AAPL only, and
    market-closed partitions on Juneteenth and the Fourth of July."""
    for ticker in tickers:
        prices = pl.read_parquet(partition_path(lake_dir, "raw_prices", ticker))
        sessions = prices["date"].tail(FORECAST_SESSIONS).to_list()
        closes = dict(zip(prices["date"].to_list(), prices["close"].to_list(), strict=True))
        frames = []
        for day in sessions:
            write_contract_forecast(lake_dir, ticker, day, closes[day], drift_of(prices, day))
            frames.append(
                pl.read_parquet(partition_path(lake_dir, "daily_forecast", ticker, day.isoformat()))
            )
        for closed in (JUNETEENTH, HOLIDAY):
            write_contract_market_closed(lake_dir, "daily_forecast", ticker, closed)
        write_contract_performance(lake_dir, ticker, prices, frames)
        write_contract_market_closed(lake_dir, "forecast_performance", ticker, HOLIDAY)
        if ticker == "AAPL":
            cards = [
                contract_model_card(ticker, "1", date(2024, 5, 1), promoted=True, production="1"),
                contract_model_card(ticker, "2", date(2024, 6, 3), promoted=False, production="1"),
            ]
        else:
            cards = [
                contract_model_card(ticker, "1", date(2024, 5, 1), promoted=True, production="1")
            ]
        write_contract_models(lake_dir, ticker, cards)
    write_contract_report(lake_dir, "AAPL", SYNTHETIC_END - timedelta(days=1), stance="NEUTRAL")
    write_contract_report(lake_dir, "AAPL", SYNTHETIC_END, stance="BULLISH")


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pipeline_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """Built once per test process; tests that write to the lake use `writable_lake`."""
    home = tmp_path_factory.mktemp("serving_home")
    materialize_prices(home, TICKERS, SYNTHETIC_END)
    write_contract_tables(home / "lake", TICKERS)
    return Lake(home, TICKERS)


@pytest.fixture()
def writable_lake(pipeline_lake: Lake, tmp_path: Path) -> Lake:
    home = tmp_path / "home"
    shutil.copytree(pipeline_lake.home / "lake", home / "lake")
    return Lake(home, pipeline_lake.tickers)


def make_settings(lake: Lake, **overrides):
    from serving.settings import Settings

    return Settings(lake_dir=lake.dir, reference_date=REFERENCE_DATE, **overrides)


@pytest.fixture(scope="session")
def app(pipeline_lake: Lake):
    from serving.main import create_app

    return create_app(make_settings(pipeline_lake))


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


# -- a real server on loopback -----------------------------------------------------------------


class LiveServer:
    """uvicorn serving an app in a background thread, on a free loopback port."""

    def __init__(self, app) -> None:
        import uvicorn

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@pytest.fixture()
def live_server_for():
    """Start a real server for an app; stopped at the end of the test."""
    servers: list[LiveServer] = []

    def start(app) -> LiveServer:
        server = LiveServer(app).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def contract():
    """This module: its constants and `write_contract_*` helpers, for tests that write the lake
    (test modules cannot import a conftest under --import-mode=importlib)."""
    return sys.modules[__name__]
