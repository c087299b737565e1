"""The deterministic analyst's verdict on crafted summaries: grade, band and market, layered."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from stock_assets.agents.stance import deterministic_verdict, market_agrees
from stock_assets.agents.state import (
    ForecastPoint,
    MarketSummary,
    PerformanceSummary,
    ReportInputs,
)

AS_OF = date(2024, 6, 3)
INPUTS = ReportInputs(
    ticker="MSFT",
    as_of_date=AS_OF,
    forecast=(
        ForecastPoint(target_date=AS_OF + timedelta(days=7), horizon=5, predicted_close=102),
    ),
    last_close=100.0,
    model_name="child_lstm_MSFT",
    model_version="2",
    n_matured=40,
)
UP = PerformanceSummary(
    direction="up",
    final_return_pct=2.0,
    step_returns_pct=(2.0,),
    skill_vs_naive_pct=12.0,
    grade="good",
    range_pct=(0.5, 3.5),  # the whole band above the last close, narrow against a 2 % move
    p_up=0.93,
)
CALM_AND_AGREEING = MarketSummary(
    return_5d_pct=1.0, return_20d_pct=3.0, index_return_20d_pct=1.0, relative_strength_pp=2.0,
    volume_ratio=1.0, volatility_20d_pct=20.0, volatility_regime="normal", above_sma20=True,
)  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "stance", "confidence", "says"),
    [
        ({}, "BULLISH", "High", "The 80% range (+0.50% to +3.50%) and the probability"),
        # The same call in a wide range: the band caps the confidence, and the rationale says so.
        ({"range_pct": (-1.5, 6.0), "p_up": 0.75}, "BULLISH", "Medium", "wide against the move"),
        ({"range_pct": (-1.8, 9.0), "p_up": 0.7}, "BULLISH", "Low", "so confidence is Low"),
        # A wide, even band: no call although the median is up and the model is good.
        ({"range_pct": (-5.0, 7.0), "p_up": 0.56}, "NEUTRAL", "Medium", "no directional call"),
        # A weak model makes no call whatever the band says.
        ({"grade": "weak", "notes": ("feature drift alarm",)}, "NEUTRAL", "Low", "model is weak"),
        # An older lake: the direction decides, but High needs a measured range.
        ({"range_pct": None, "p_up": None}, "BULLISH", "Medium", "without a range"),
        ({"direction": "flat", "final_return_pct": 0.1}, "NEUTRAL", "Medium", "flat band"),
    ],
)
def test_deterministic_verdict_layers_grade_band_and_market(
    changes, stance, confidence, says
) -> None:
    verdict = deterministic_verdict(INPUTS, replace(UP, **changes), CALM_AND_AGREEING)
    assert (verdict.stance, verdict.confidence) == (stance, confidence), verdict.rationale
    assert says in verdict.rationale


def test_the_market_still_lowers_a_well_banded_call() -> None:
    elevated = replace(CALM_AND_AGREEING, volatility_regime="elevated")
    assert deterministic_verdict(INPUTS, UP, elevated).confidence == "Medium"
    against = replace(CALM_AND_AGREEING, relative_strength_pp=-2.0)
    assert market_agrees("up", against) is False
    assert deterministic_verdict(INPUTS, UP, against).confidence == "Medium"
