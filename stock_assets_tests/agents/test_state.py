"""ReportInputs: built from lake-shaped frames (with or without the forecast's quantiles) without
look-ahead, and validated (the cache key is tested in test_fingerprint.py)."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from pydantic import ValidationError

from stock_assets.agents.state import ForecastPoint, ReportInputs, build_report_inputs
from stock_assets.quantiles import P_UP, QUANTILE_COLUMNS


def _frames(as_of: date) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    days = [as_of + timedelta(days=i) for i in range(-99, 6)]  # 5 days AFTER the as-of date too
    prices = pl.DataFrame(
        {"date": days, "close": [100.0 + i for i in range(len(days))], "volume": [1e6] * len(days)}
    )
    index_prices = pl.DataFrame(
        {"date": days, "close": [4000.0 + i for i in range(len(days))]}
    )  # no volume column
    forecast = pl.DataFrame(
        {
            "ticker": ["MSFT", "MSFT"],
            "as_of_date": [as_of, as_of],
            "target_date": [as_of + timedelta(days=3), as_of + timedelta(days=1)],
            "horizon": [2, 1],  # unsorted on purpose
            "last_close": [199.0, 199.0],
            "predicted_close": [203.0, 201.0],
            "model_name": ["child_lstm_MSFT"] * 2,
            "model_version": ["4"] * 2,
        }
    )
    return forecast, prices, index_prices


def test_build_report_inputs_cuts_history_at_the_as_of_date() -> None:
    as_of = date(2024, 3, 1)
    forecast, prices, index_prices = _frames(as_of)
    inputs = build_report_inputs(
        forecast,
        prices,
        index_prices,
        {"rolling_mape_pct": 1.5, "naive_mape_pct": float("nan"), "n_matured": 12},
        {"drift_share": float("nan"), "drifted": None},
        history_days=60,
    )
    assert inputs.ticker == "MSFT" and inputs.model_version == "4" and inputs.last_close == 199.0
    assert [p.horizon for p in inputs.forecast] == [1, 2]
    assert [p.predicted_close for p in inputs.forecast] == [201.0, 203.0]
    assert len(inputs.prices) == 60 and len(inputs.index_prices) == 60
    assert (
        inputs.prices[-1].date == as_of and inputs.prices[-1].close == 199.0
    )  # nothing after as_of
    assert inputs.index_prices[-1].volume == 0.0
    assert (
        inputs.rolling_mape_pct == 1.5 and inputs.naive_mape_pct is None and inputs.n_matured == 12
    )
    assert inputs.drift_share is None and inputs.drifted is None


def test_inputs_reject_look_ahead_and_bad_forecasts(make_inputs) -> None:
    good = make_inputs()
    fields = good.model_dump()
    with pytest.raises(ValidationError, match="not after as_of_date"):
        ReportInputs(
            **{
                **fields,
                "forecast": [
                    {"target_date": good.as_of_date, "horizon": 1, "predicted_close": 10.0}
                ],
            }
        )
    with pytest.raises(ValidationError, match="strictly increasing"):
        ReportInputs(**{**fields, "forecast": list(reversed(fields["forecast"]))})
    late_bar = {"date": good.as_of_date + timedelta(days=1), "close": 1.0, "volume": 0.0}
    with pytest.raises(ValidationError, match="after as_of_date"):
        ReportInputs(**{**fields, "prices": [*fields["prices"], late_bar]})
    with pytest.raises(ValidationError):
        ReportInputs(**{**fields, "directional_accuracy": 58.0})  # a fraction, not a percentage


def test_build_report_inputs_refuses_mixed_or_empty_forecasts() -> None:
    forecast, prices, index_prices = _frames(date(2024, 3, 1))
    with pytest.raises(ValueError, match="model_version"):
        build_report_inputs(
            forecast.with_columns(pl.Series("model_version", ["4", "5"])), prices, index_prices
        )
    with pytest.raises(ValueError, match="empty"):
        build_report_inputs(forecast.clear(), prices, index_prices)


def _with_distribution(forecast: pl.DataFrame) -> pl.DataFrame:
    """The frame plus quantile closes spread around each step's close, and p_up."""
    spreads = dict(zip(QUANTILE_COLUMNS, (-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0), strict=True))
    return forecast.with_columns(
        *((pl.col("predicted_close") + s).alias(c) for c, s in spreads.items()),
        pl.Series(P_UP, [0.7, 0.6]),
    )


def test_build_report_inputs_reads_each_steps_quantiles_and_p_up() -> None:
    forecast, prices, index_prices = _frames(date(2024, 3, 1))
    inputs = build_report_inputs(_with_distribution(forecast), prices, index_prices)
    first, final = inputs.forecast  # sorted by horizon: 201 (p_up 0.6), then 203 (p_up 0.7)
    assert first.quantiles == (195.0, 197.0, 199.0, 201.0, 203.0, 205.0, 207.0)
    assert (first.p_up, final.p_up) == (0.6, 0.7)
    assert final.interval(80) == (199.0, 207.0) and final.interval(50) == (201.0, 205.0)
    assert final.quantile("close_q05") == 197.0


def test_an_older_lake_without_quantiles_still_builds_inputs() -> None:
    forecast, prices, index_prices = _frames(date(2024, 3, 1))
    assert not set(QUANTILE_COLUMNS) & set(forecast.columns)
    inputs = build_report_inputs(forecast, prices, index_prices)
    assert all(p.quantiles is None and p.p_up is None for p in inputs.forecast)
    assert inputs.final_forecast.interval() is None
    assert "range unavailable, p_up n/a" in inputs.cache_query_text()
    # Null or NaN values (a lake partly rewritten) mean the same as missing columns, per row.
    partial = _with_distribution(forecast).with_columns(
        pl.when(pl.col("horizon") == 2)
        .then(None)
        .otherwise(pl.col("close_q90"))
        .alias("close_q90"),
        pl.Series(P_UP, [float("nan"), 0.6]),
    )
    first, final = build_report_inputs(partial, prices, index_prices).forecast
    assert first.quantiles is not None and first.p_up == 0.6
    assert final.quantiles is None and final.p_up is None


def test_quantiles_must_be_seven_monotone_positive_closes() -> None:
    forecast, prices, index_prices = _frames(date(2024, 3, 1))
    crossing = _with_distribution(forecast).with_columns(pl.col("close_q95") - 20.0)
    with pytest.raises(ValidationError, match="monotone"):
        build_report_inputs(crossing, prices, index_prices)
    point = {"target_date": date(2024, 3, 4), "horizon": 1, "predicted_close": 10.0}
    with pytest.raises(ValidationError, match="7 closes"):
        ForecastPoint(**point, quantiles=(9.0, 10.0, 11.0))
    with pytest.raises(ValidationError):
        ForecastPoint(**point, p_up=1.2)
