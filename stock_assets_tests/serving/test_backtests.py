"""GET /backtests/{ticker} over the tables strategy_backtest wrote on a real instance: the metrics
vs buy-and-hold and the equity curve as stored, and a 404 naming why for every absent case."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from fastapi.testclient import TestClient

from serving.main import create_app
from serving.settings import Settings
from stock_assets.lake import atomic_write_parquet, partition_path
from stock_assets.strategy.definitions import defs as strategy_defs
from stock_assets_tests.strategy.crafted_log import CLOSES, crafted_log, perfect, sessions
from stock_assets_tests.strategy.test_strategy_asset import write_log


@pytest.fixture
def backtest_lake(project_home: Path, materialize, resources) -> Path:
    """AAPL back-tested on a crafted log, GOOGL back-tested on none, MSFT not back-tested."""
    lake = project_home / "lake"
    for ticker in ("AAPL", "MSFT", "GOOGL"):  # prices make a ticker known to the API
        prices = pl.DataFrame({"date": sessions(len(CLOSES)), "close": list(CLOSES)})
        atomic_write_parquet(prices.with_columns(ticker=pl.lit(ticker)),
                             partition_path(lake, "raw_prices", ticker))
    write_log(lake, crafted_log(CLOSES, perfect(CLOSES)))
    for ticker in ("AAPL", "GOOGL"):
        materialize.register(ticker)
        dg.materialize(
            list(strategy_defs.assets), partition_key=ticker, resources=resources(),
            instance=materialize.instance, raise_on_error=True,
            run_config={"ops": {"strategy_backtest": {"config": {"horizon": 2}}}},
        )  # fmt: skip
    return lake


@pytest.fixture
def api(backtest_lake: Path) -> TestClient:
    return TestClient(create_app(Settings(lake_dir=backtest_lake, revalidate_seconds=0)))


def test_backtest_answers_the_stored_metrics_and_equity(api: TestClient, backtest_lake: Path) -> None:
    response = api.get("/backtests/AAPL")
    assert response.status_code == 200, response.text
    body = response.json()
    metrics = pl.read_parquet(partition_path(backtest_lake, "strategy_metrics", "AAPL"))
    series = pl.read_parquet(partition_path(backtest_lake, "strategy_backtest", "AAPL"))
    assert (body["first_date"], body["last_date"], body["sessions"]) == (
        str(series["date"].min()), str(series["date"].max()), 10,
    )  # fmt: skip
    assert body["rule"] == {"rebalance": "horizon", "horizon": 2, "cost_bps": 5.0, "p_up_threshold": 0.5}
    by_name = {row["strategy"]: row for row in body["metrics"]}
    assert list(by_name) == ["strategy", "buy_and_hold", "always_flat"]
    for row in metrics.iter_rows(named=True):
        answered = by_name[row["strategy"]]
        assert answered["total_return"] == pytest.approx(row["total_return"])
        assert answered["trades"] == row["trades"]
    assert by_name["strategy"]["sharpe"] == pytest.approx(metrics["sharpe"][0])
    assert by_name["always_flat"]["sharpe"] is None  # undefined, not NaN
    # perfect foresight beats buy-and-hold on the same sessions, after costs
    assert by_name["strategy"]["total_return"] > by_name["buy_and_hold"]["total_return"]
    assert [p["position"] for p in body["equity"]] == [1, 1, 0, 0, 0, 0, 1, 1, 1, 1]
    assert body["equity"][-1]["equity"] == pytest.approx(series["equity"][-1])


@pytest.mark.parametrize(
    ("ticker", "error", "fragment"),
    [
        ("ZZZZ", "unknown_ticker", "Unknown ticker 'ZZZZ'"),
        ("MSFT", "not_materialized", "No strategy_metrics for MSFT yet"),
        ("GOOGL", "not_materialized", "has no sessions"),
    ],
)
def test_absent_backtests_are_404s_naming_why(
    api: TestClient, ticker: str, error: str, fragment: str
) -> None:
    response = api.get(f"/backtests/{ticker}")
    assert response.status_code == 404, response.text
    assert response.json()["error"] == error
    assert fragment in response.json()["detail"]


def test_openapi_documents_the_route_like_the_others(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    operation = schema["paths"]["/backtests/{ticker}"]["get"]
    reference = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert schema["components"]["schemas"][reference.rsplit("/", 1)[-1]].get("examples")
    assert {"404", "422"} <= set(operation["responses"])
    ticker = next(p for p in operation["parameters"] if p["name"] == "ticker")
    assert ticker["schema"]["examples"] == ["AAPL"]
    script = api.get("/static/backtests.js")
    assert script.status_code == 200 and "/backtests/" in script.text
    assert '<div id="backtests"' in api.get("/").text
