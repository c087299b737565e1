"""strategy_backtest on a real Dagster instance over a crafted lake: the tables it writes, the
metadata a person sees, and a clear message (not a crash) for an empty performance log."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from stock_assets.lake import atomic_write_parquet, partition_path
from stock_assets.strategy.definitions import defs as strategy_defs
from stock_assets_tests.strategy.crafted_log import CLOSES, crafted_log, perfect


def write_log(lake_dir: Path, log: pl.DataFrame, ticker: str = "AAPL") -> None:
    """One forecast_performance file per target date, as the pipeline lays the log out."""
    for (day,), rows in log.group_by("target_date"):
        atomic_write_parquet(rows, partition_path(lake_dir, "forecast_performance", ticker, str(day)))


def run(materialize, resources, config: dict | None = None, ticker: str = "AAPL"):
    """Both assets of one ticker partition, on the test's instance, with the rule's config."""
    materialize.register(ticker)
    return dg.materialize(
        list(strategy_defs.assets), partition_key=ticker, resources=resources(),
        instance=materialize.instance, raise_on_error=True,
        run_config={"ops": {"strategy_backtest": {"config": config or {}}}},
    )


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = [m for m in result.get_asset_materialization_events() if m.asset_key.path[-1] == asset]
    return event.materialization.metadata


def test_backtest_writes_the_series_the_metrics_and_the_ui_metadata(
    project_home: Path, materialize, resources
) -> None:
    lake = project_home / "lake"
    log = crafted_log(CLOSES, perfect(CLOSES))
    # one in-sample row: left out by default, so the h=1 decision of session 3 is flat
    log = log.with_columns(
        in_sample=(pl.col("as_of_date") == sorted(set(log["as_of_date"]))[3]) & (pl.col("horizon") == 1)
    )
    write_log(lake, log)
    result = run(materialize, resources, {"rebalance": "daily", "cost_bps": 5.0})
    assert result.success
    series = pl.read_parquet(partition_path(lake, "strategy_backtest", "AAPL"))
    assert series["position"].to_list() == [1, 1, 0, 0, 0, 0, 1, 1, 1, 0]
    assert series["ticker"].unique().to_list() == ["AAPL"]
    assert {"date", "position", "strategy_return", "buy_hold_return", "equity", "buy_hold_equity",
            "drawdown", "turnover", "cost"} <= set(series.columns)  # fmt: skip
    metrics = pl.read_parquet(partition_path(lake, "strategy_metrics", "AAPL"))
    assert metrics["strategy"].to_list() == ["strategy", "buy_and_hold", "always_flat"]
    row = metrics.row(0, named=True)
    assert (row["trades"], row["turnover"], row["cost_bps"], row["rebalance"]) == (2, 4.0, 5.0, "daily")
    assert row["total_return"] == pytest.approx(series["equity"][-1] - 1)
    shown = metadata(result, "strategy_backtest")
    assert shown["window"].value == f"{series['date'].min()}..{series['date'].max()} (10 sessions)"
    assert shown["equity_curve"].value.startswith("![chart](data:image/png;base64,")
    assert "| buy_and_hold |" in shown["metrics"].value
    assert shown["in_sample_forecasts_skipped"].value == 1
    assert "sharpe" in metadata(result, "strategy_metrics")["metrics"].value


def test_the_default_rule_holds_for_the_horizon(project_home: Path, materialize, resources) -> None:
    lake = project_home / "lake"
    write_log(lake, crafted_log(CLOSES, perfect(CLOSES), horizons=(1, 2, 3, 4, 5)))
    result = run(materialize, resources)
    assert result.success
    series = pl.read_parquet(partition_path(lake, "strategy_backtest", "AAPL"))
    # decisions at sessions 0 (98/100: down, flat) and 5 (102/98: up, long), one trade
    assert series["position"].to_list() == [0.0] * 5 + [1.0] * 5
    assert series["decision_date"].n_unique() == 2
    assert pl.read_parquet(partition_path(lake, "strategy_metrics", "AAPL"))["trades"][0] == 1


def test_an_empty_performance_log_gets_a_message(project_home: Path, materialize, resources) -> None:
    result = run(materialize, resources, ticker="MSFT")
    assert result.success
    shown = metadata(result, "strategy_backtest")
    assert "No back-test for MSFT" in shown["message"].value
    assert "window" not in shown
    lake = project_home / "lake"
    assert pl.read_parquet(partition_path(lake, "strategy_backtest", "MSFT")).is_empty()
    assert pl.read_parquet(partition_path(lake, "strategy_metrics", "MSFT")).is_empty()
