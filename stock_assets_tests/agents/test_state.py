"""ReportInputs: built from lake-shaped frames without look-ahead, validated, fingerprinted."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from pydantic import ValidationError

from stock_assets.agents.state import ReportInputs, build_report_inputs


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


def test_fingerprint_is_stable_and_tracks_forecast_model_and_date(make_inputs) -> None:
    base = make_inputs()
    assert base.fingerprint() == make_inputs().fingerprint()
    # Metrics are not part of the fingerprint (they shape the embedding instead).
    assert (
        base.fingerprint()
        == make_inputs(performance={"rolling_mape_pct": 3.0, "n_matured": 41}).fingerprint()
    )
    assert base.fingerprint() != make_inputs(model_version="4").fingerprint()
    assert base.fingerprint() != make_inputs(final_return_pct=2.01).fingerprint()
    assert base.fingerprint() != make_inputs(as_of=date(2024, 6, 4)).fingerprint()
    assert base.fingerprint() != make_inputs(ticker="MSFT").fingerprint()


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
