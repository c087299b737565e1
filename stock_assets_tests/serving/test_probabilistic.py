"""The probabilistic forecast through the API: each step's quantiles and p_up, the performance
log's coverage / pinball / Winkler / Brier scores, the model card's interval metrics, and a lake
written before any of them still serving (null, never a 503).

`probabilistic_lake` is the real pipeline's lake, with conftest's crafted columns only where the
pipeline does not write them yet; the old-lake tests drop the columns from a copy.
"""

from __future__ import annotations

import math
import shutil
from datetime import date

import polars as pl
import pytest
from fastapi.testclient import TestClient

from serving.main import create_app
from serving.schemas_forecasts import StepDistribution
from serving.settings import Settings
from stock_assets.contract import (
    CARD_INTERVAL_COLUMNS,
    COVERAGE_ROW_COLUMNS,
    OPTIONAL_COLUMNS,
    ROLLING_SCORE_COLUMNS,
    SCORE_ROW_COLUMNS,
    with_optional_columns,
)
from stock_assets.lake import partition_path
from stock_assets.quantiles import INTERVALS, P_UP, QUANTILE_COLUMNS

LAST_SESSION = date(2024, 7, 3)
DISTRIBUTION = (*QUANTILE_COLUMNS, P_UP)


def client_for(lake) -> TestClient:
    return TestClient(create_app(Settings(lake_dir=lake.dir, revalidate_seconds=0)))


@pytest.fixture(scope="module")
def client(probabilistic_lake):
    with client_for(probabilistic_lake) as test_client:
        yield test_client


def assert_same(served: float | None, stored: float | None, name: str) -> None:
    """The lake's value, null where it is null (or NaN: JSON has none)."""
    if stored is None or math.isnan(stored):
        assert served is None, name
    else:
        assert served == pytest.approx(stored, rel=1e-12), name


def assert_distribution(step: dict, stored: dict | None = None) -> None:
    """Monotone quantiles around the median, p_up a probability; equal to the lake's row."""
    values = [step[c] for c in QUANTILE_COLUMNS]
    assert all(isinstance(v, float) and math.isfinite(v) for v in values), step
    assert values == sorted(values), f"quantiles not monotone: {values}"
    assert 0.0 <= step[P_UP] <= 1.0
    if stored is not None:
        assert [step[c] for c in DISTRIBUTION] == pytest.approx(
            [stored[c] for c in DISTRIBUTION], rel=1e-12
        )


# -- the contract ------------------------------------------------------------------------------


def test_step_fields_are_the_lakes_distribution_columns():
    assert tuple(StepDistribution.model_fields) == DISTRIBUTION
    assert set(DISTRIBUTION) <= set(OPTIONAL_COLUMNS["daily_forecast"])


def test_absent_optional_columns_are_added_as_typed_nulls_and_present_ones_kept():
    frame = pl.DataFrame({"horizon": [1, 2], "close_q50": [10.0, 11.0]})
    filled = with_optional_columns("forecast_performance", frame)
    assert filled.columns[:2] == ["horizon", "close_q50"]
    assert filled.schema["covered_80"] == pl.Boolean and filled.schema["rolling_mase"] == pl.Float64
    assert filled["rolling_coverage_80"].null_count() == 2
    forecast = with_optional_columns("daily_forecast", frame)
    assert forecast["close_q50"].to_list() == [10.0, 11.0]  # kept, not overwritten
    assert forecast["close_q05"].null_count() == 2
    assert with_optional_columns("raw_prices", frame) is frame


# -- forecasts and history ---------------------------------------------------------------------


def test_forecast_steps_carry_monotone_quantiles_and_p_up(client, probabilistic_lake):
    for ticker in probabilistic_lake.tickers:
        body = client.get(f"/forecasts/{ticker}").json()
        stored = probabilistic_lake.forecast(ticker, LAST_SESSION)
        assert len(body["points"]) == stored.height == 5
        for step, row in zip(body["points"], stored.iter_rows(named=True), strict=True):
            assert_distribution(step, row)
            lower, upper = INTERVALS[80]
            assert step[lower] <= step["close_q50"] <= step[upper]
        # The bands widen with the horizon.
        widths = [p["close_q95"] - p["close_q05"] for p in body["points"]]
        assert widths[-1] > widths[0]


def test_a_past_forecast_serves_its_own_distribution(client, probabilistic_lake):
    body = client.get("/forecasts/MSFT", params={"as_of": "2024-06-20"}).json()
    stored = probabilistic_lake.forecast("MSFT", date(2024, 6, 20))
    for step, row in zip(body["points"], stored.iter_rows(named=True), strict=True):
        assert_distribution(step, row)


def test_latest_forecasts_carry_the_last_steps_distribution(client, probabilistic_lake):
    body = client.get("/forecasts/latest").json()
    assert body["count"] == 2
    for row in body["forecasts"]:
        last = probabilistic_lake.forecast(row["ticker"], LAST_SESSION).row(-1, named=True)
        assert row["horizon"] == last["horizon"] == 5
        assert_distribution(row, last)


def test_history_forecast_path_has_quantiles_and_matured_rows_their_coverage(
    client, probabilistic_lake
):
    body = client.get("/history/AAPL", params={"days": 10}).json()
    stored = probabilistic_lake.forecast("AAPL", LAST_SESSION)
    for step, row in zip(body["forecast"]["points"], stored.iter_rows(named=True), strict=True):
        assert_distribution(step, row)
    assert len(body["matured"]) == 10
    for matured in body["matured"]:
        day = date.fromisoformat(matured["target_date"])
        row = probabilistic_lake.performance("AAPL", day).filter(pl.col("horizon") == 1)
        assert matured["covered_80"] is row["covered_80"][0]


# -- performance -------------------------------------------------------------------------------


def test_performance_returns_the_rolling_probabilistic_scores(client, probabilistic_lake):
    body = client.get("/performance/AAPL", params={"days": 5}).json()
    stored = probabilistic_lake.performance("AAPL", LAST_SESSION).sort("horizon", "as_of_date")
    first = stored.row(0, named=True)
    for name in ROLLING_SCORE_COLUMNS:
        assert_same(body[name], first[name], name)
        assert_same(body["series"][-1][name], first[name], name)
    for name in ("rolling_coverage_50", "rolling_coverage_80", "rolling_coverage_90"):
        assert 0.0 <= body[name] <= 1.0
    assert body["rolling_pinball"] > 0 and body["rolling_winkler_90"] > 0
    assert body["brier_skill"] == pytest.approx(
        1 - first["rolling_brier"] / first["rolling_brier_climatology"]
    )
    assert len(body["series"]) == 5
    for point in body["series"]:
        stored_point = probabilistic_lake.performance("AAPL", date.fromisoformat(point["date"]))
        assert point["rolling_coverage_80"] == pytest.approx(stored_point["rolling_coverage_80"][0])


def test_matured_rows_carry_their_scores_and_no_hit_without_a_call(client, probabilistic_lake):
    body = client.get("/performance/MSFT").json()
    stored = probabilistic_lake.performance("MSFT", LAST_SESSION).sort("horizon", "as_of_date")
    assert len(body["matured"]) == stored.height == 5
    for served, row in zip(body["matured"], stored.iter_rows(named=True), strict=True):
        for name in (*COVERAGE_ROW_COLUMNS, "called"):
            assert served[name] is row[name], name
        for name in SCORE_ROW_COLUMNS:
            assert_same(served[name], row[name], name)
        if row["called"] is False:
            assert served["direction_hit"] is None
        else:
            assert served["direction_hit"] is row["direction_hit"]


def test_a_flat_forecast_makes_no_call_and_has_no_hit(writable_lake):
    path = partition_path(
        writable_lake.dir, "forecast_performance", "AAPL", LAST_SESSION.isoformat()
    )
    pl.read_parquet(path).with_columns(
        called=pl.lit(False), direction_hit=pl.lit(None, dtype=pl.Boolean)
    ).write_parquet(path)
    body = client_for(writable_lake).get("/performance/AAPL").json()
    assert {(m["called"], m["direction_hit"]) for m in body["matured"]} == {(False, None)}


# -- the model card ----------------------------------------------------------------------------


def test_model_card_interval_metrics_are_served_as_fractions(writable_lake):
    path = partition_path(writable_lake.dir, "child_model", "AAPL")
    values = {"test_coverage_80_h5": 0.78, "test_winkler_80_h5": 0.061,
              "baseline_winkler_80_h5": 0.066}  # fmt: skip
    pl.read_parquet(path).with_columns(
        **{name: pl.lit(value, dtype=pl.Float64) for name, value in values.items()},
        best_vol_baseline=pl.lit("rw_ewma"),
    ).write_parquet(path)
    metrics = client_for(writable_lake).get("/models/AAPL").json()["latest"]["metrics"]
    assert {name: metrics[name] for name in CARD_INTERVAL_COLUMNS} == pytest.approx(values)
    assert metrics["best_vol_baseline"] == "rw_ewma"


# -- a lake from before the probabilistic forecast ---------------------------------------------


def test_a_lake_without_the_new_columns_still_serves_them_as_null(
    probabilistic_lake, pipeline, tmp_path
):
    lake_dir = tmp_path / "home" / "lake"
    shutil.copytree(probabilistic_lake.dir, lake_dir)
    for asset in OPTIONAL_COLUMNS:
        pipeline.drop_probabilistic_columns(lake_dir, asset)
    assert "close_q50" not in pl.read_parquet(
        partition_path(lake_dir, "daily_forecast", "AAPL", LAST_SESSION.isoformat())
    ).columns
    client = TestClient(create_app(Settings(lake_dir=lake_dir, revalidate_seconds=0)))

    forecast = client.get("/forecasts/AAPL")
    assert forecast.status_code == 200, forecast.text
    for step in forecast.json()["points"]:
        assert {step[c] for c in DISTRIBUTION} == {None}
        assert isinstance(step["predicted_close"], float)
    latest = client.get("/forecasts/latest").json()
    assert all(row[c] is None for row in latest["forecasts"] for c in DISTRIBUTION)
    history = client.get("/history/AAPL", params={"days": 10}).json()
    assert {m["covered_80"] for m in history["matured"]} == {None}
    assert {history["forecast"]["points"][0][c] for c in DISTRIBUTION} == {None}
    performance = client.get("/performance/AAPL").json()
    assert performance["rolling_mape"] is not None
    for name in (*ROLLING_SCORE_COLUMNS, "brier_skill"):
        assert performance[name] is None, name
    series = performance["series"]
    assert all(point[name] is None for point in series for name in ROLLING_SCORE_COLUMNS)
    for row in performance["matured"]:
        assert row["called"] is None and row["pinball"] is None and row["covered_90"] is None
    metrics = client.get("/models/AAPL").json()["latest"]["metrics"]
    assert {metrics[c] for c in (*CARD_INTERVAL_COLUMNS, "best_vol_baseline")} == {None}
