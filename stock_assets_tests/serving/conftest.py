"""A real lake for the API tests: every table the API reads is materialized by the real Dagster
assets on a small synthetic market (two tickers, tiny models), the way the daily loop writes it,
by `stock_assets.testing.build_serving_home` (see there for what it runs).

The only hand-written files are the `crafted_*` inputs: versions of a real partition rewritten
faster than any pipeline could (cache and torn-read tests), and `probabilistic_lake`'s columns
(crafted_lake.py) where the pipeline does not write them yet; corrupt files are written in the
tests.
"""

from __future__ import annotations

import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Self

import polars as pl
import pytest

from stock_assets.lake import atomic_write_parquet, partition_path
from stock_assets.testing.serving_home import (
    REFERENCE_DATE,
    SYNTHETIC_END,
    TICKERS,
    MapeVerdict,
    build_serving_home,
    serving_home,
)

pipeline_home = serving_home  # tests reach it as `pipeline.pipeline_home`


# -- crafted inputs: rewrites of real partitions -----------------------------------------------


def write_crafted_forecast(
    lake_dir: Path,
    ticker: str,
    as_of: date,
    last_close: float,
    model_version: str,
    drift: float = 0.002,
    template: date = SYNTHETIC_END,
) -> Path:
    """daily_forecast[as_of|ticker] rewritten from the real `template` partition with another
    last close, version and a drift path: versions faster than the pipeline can write them."""
    from stock_assets.market_calendar import next_sessions

    source = partition_path(lake_dir, "daily_forecast", ticker, template.isoformat())
    frame = pl.read_parquet(source)
    steps = frame["horizon"]
    returns = (steps * drift).cast(pl.Float64)
    frame = frame.with_columns(
        as_of_date=pl.lit(as_of),
        target_date=pl.Series(next_sessions(as_of, frame.height)),
        last_close=pl.lit(float(last_close)),
        predicted_return=returns,
        predicted_close=last_close * returns.exp(),
        model_version=pl.lit(model_version),
    )
    path = partition_path(lake_dir, "daily_forecast", ticker, as_of.isoformat())
    atomic_write_parquet(frame, path)
    return path


# -- the lake, as the tests read it ---------------------------------------------------------------


@dataclass(frozen=True)
class Lake:
    home: Path
    tickers: tuple[str, ...]
    mape_verdicts: dict[str, MapeVerdict] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.home / "lake"

    def read(self, asset: str, ticker: str | None = None, day: date | None = None) -> pl.DataFrame:
        key = day.isoformat() if day is not None else None
        return pl.read_parquet(partition_path(self.dir, asset, ticker, key))

    def prices(self, ticker: str) -> pl.DataFrame:
        return self.read("raw_prices", ticker)

    def forecast(self, ticker: str, day: date) -> pl.DataFrame:
        return self.read("daily_forecast", ticker, day).sort("horizon")

    def performance(self, ticker: str, day: date) -> pl.DataFrame:
        return self.read("forecast_performance", ticker, day)


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pipeline_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """Built once per test process (~30-60 s); tests that write use `writable_lake` or
    `writable_home`."""
    root = tmp_path_factory.mktemp("serving_pipeline")
    verdicts = build_serving_home(root)
    return Lake(root / "home", TICKERS, verdicts)


@pytest.fixture(scope="session")
def probabilistic_lake(pipeline_lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The pipeline's lake with the probabilistic forecast's columns: the real ones when the
    pipeline writes them, else `add_crafted_*`'s on a copy (a lake from before them)."""
    from stock_assets.contract import ROLLING_SCORE_COLUMNS
    from stock_assets.quantiles import P_UP, QUANTILE_COLUMNS
    from stock_assets_tests.serving.crafted_lake import (
        add_crafted_distribution,
        add_crafted_scores,
        has_columns,
    )

    quantiles = has_columns(pipeline_lake.dir, "daily_forecast", (*QUANTILE_COLUMNS, P_UP))
    scores = has_columns(pipeline_lake.dir, "forecast_performance", ROLLING_SCORE_COLUMNS)
    if quantiles and scores:
        return pipeline_lake
    home = tmp_path_factory.mktemp("probabilistic") / "home"
    shutil.copytree(pipeline_lake.dir, home / "lake")
    if not quantiles:
        add_crafted_distribution(home / "lake")
    add_crafted_scores(home / "lake")
    return Lake(home, pipeline_lake.tickers, pipeline_lake.mape_verdicts)


@pytest.fixture()
def writable_lake(pipeline_lake: Lake, tmp_path: Path) -> Lake:
    """A copy of the lake only, for tests that break or rewrite files."""
    home = tmp_path / "home"
    shutil.copytree(pipeline_lake.dir, home / "lake")
    return Lake(home, pipeline_lake.tickers, pipeline_lake.mape_verdicts)


@pytest.fixture()
def writable_home(pipeline_lake: Lake, tmp_path: Path) -> Lake:
    """A copy of the whole home (lake, MLflow, Feast, Dagster storage), for tests that run the
    pipeline on: reopen it with `pipeline_home(lake.home.parent, reopen=True)`."""
    home = tmp_path / "home"
    shutil.copytree(pipeline_lake.home, home)
    return Lake(home, pipeline_lake.tickers, pipeline_lake.mape_verdicts)


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


def drop_probabilistic_columns(lake_dir: Path, asset: str) -> None:
    """`crafted_lake.drop_probabilistic_columns`, for tests (through the `pipeline` fixture)."""
    from stock_assets_tests.serving.crafted_lake import drop_probabilistic_columns as drop

    drop(lake_dir, asset)


@pytest.fixture(scope="session")
def pipeline():
    """This module: its constants, `pipeline_home` and `write_crafted_forecast`, for tests
    (test modules cannot import a conftest under --import-mode=importlib)."""
    return sys.modules[__name__]
