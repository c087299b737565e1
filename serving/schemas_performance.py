"""Response body of /performance: how the forecasts scored once they matured.

Why point and probabilistic scores side by side: MAPE and direction judge the point forecast; the
coverage of the 50/80/90 % bands, the pinball and interval (Winkler) scores and the Brier score of
p_up judge whether the stated uncertainty was honest. Every score is a fraction (of the actual
close) or a share in 0..1; those a lake written before the probabilistic forecast lacks are null.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import ConfigDict, Field

from serving.schemas import ApiModel


def _coverage(percent: int, per_row: bool = False) -> str:
    if per_row:
        return f"The actual close fell inside the {percent} % band (null: no quantiles)."
    return (
        f"Share of the window's matured forecasts whose actual close fell inside the {percent} % "
        f"band (nominal {percent / 100:g})."
    )


def _winkler(percent: int) -> str:
    return (
        f"Interval (Winkler) score of the {percent} % band as a fraction of the actual close: its "
        "width plus the penalty for a miss; lower is better."
    )


class RollingScores(ApiModel):
    """The probabilistic and scaled rolling scores forecast_performance repeats on every row."""

    rolling_coverage_50: float | None = Field(default=None, description=_coverage(50))
    rolling_coverage_80: float | None = Field(default=None, description=_coverage(80))
    rolling_coverage_90: float | None = Field(default=None, description=_coverage(90))
    rolling_pinball: float | None = Field(
        default=None,
        description="Mean pinball loss over the seven quantiles, as a fraction of the actual "
        "close; lower is better.",
    )
    rolling_winkler_80: float | None = Field(default=None, description=_winkler(80))
    rolling_winkler_90: float | None = Field(default=None, description=_winkler(90))
    rolling_brier: float | None = Field(
        default=None, description="Mean Brier score of p_up against whether the close rose."
    )
    rolling_brier_climatology: float | None = Field(
        default=None,
        description="Brier score of climatology (the base rate of rises) on the same forecasts: "
        "rolling_brier below it means p_up carries information.",
    )
    rolling_skill: float | None = Field(
        default=None, description="1 - rolling_mape / rolling_naive_mape (> 0 beats persistence)."
    )
    rolling_mase: float | None = Field(
        default=None, description="Mean absolute scaled error (< 1 beats naive's scale)."
    )
    rolling_call_rate: float | None = Field(
        default=None,
        description="Share of forecasts that called a direction (a flat forecast calls none).",
    )
    rolling_hit_rate: float | None = Field(
        default=None, description="Share of directional calls that were right."
    )


class MaturedRow(ApiModel):
    as_of_date: dt.date
    target_date: dt.date
    horizon: int
    predicted_close: float
    actual_close: float
    naive_close: float
    ape: float | None
    naive_ape: float | None
    direction_hit: bool | None = Field(
        description="The call's direction was right; null when no call was made (`called`)."
    )
    in_sample: bool
    model_version: str
    called: bool | None = Field(
        default=None, description="The forecast called a direction (a flat one does not)."
    )
    covered_50: bool | None = Field(default=None, description=_coverage(50, per_row=True))
    covered_80: bool | None = Field(default=None, description=_coverage(80, per_row=True))
    covered_90: bool | None = Field(default=None, description=_coverage(90, per_row=True))
    pinball: float | None = Field(
        default=None, description="Mean pinball loss over the 7 quantiles (fraction of actual)."
    )
    winkler_80: float | None = Field(default=None, description=_winkler(80))
    winkler_90: float | None = Field(default=None, description=_winkler(90))
    p_up: float | None = Field(default=None, description="The forecast's probability of a rise.")
    brier: float | None = Field(default=None, description="(p_up - rose)^2.")
    brier_climatology: float | None = Field(
        default=None, description="The climatological base rate's Brier score on this row."
    )
    ase: float | None = Field(default=None, description="Absolute scaled error.")


class PerformancePoint(RollingScores):
    date: dt.date
    rolling_mape: float | None
    rolling_naive_mape: float | None
    rolling_directional_accuracy: float | None
    rolling_n: int


class MapeCheck(ApiModel):
    """Dagster's forecast_mape rule, judged from the lake with the same settings and evidence."""

    status: Literal["passing", "failing", "insufficient_data"]
    rule: str
    evidence: Literal["live", "model_test", "none"] = Field(
        description="live: the rolling MAPE (rolling_n >= min_rolling_n); model_test: before "
        "that, the production model's test-window MAPE; none: neither exists yet."
    )
    mape: float | None = Field(description="The MAPE judged (a fraction).")
    naive_mape: float | None = Field(description="Naive persistence's MAPE on the same evidence.")
    threshold: float = Field(description="STOCK_ASSETS_MAPE_THRESHOLD (a fraction).")
    naive_margin: float = Field(description="STOCK_ASSETS_NAIVE_MARGIN.")
    min_rolling_n: int = Field(description="STOCK_ASSETS_MAPE_MIN_MATURED.")


_EXAMPLE_SCORES = {
    "rolling_coverage_50": 0.48,
    "rolling_coverage_80": 0.79,
    "rolling_coverage_90": 0.88,
    "rolling_pinball": 0.0071,
    "rolling_winkler_80": 0.061,
    "rolling_winkler_90": 0.079,
    "rolling_brier": 0.243,
    "rolling_brier_climatology": 0.249,
    "rolling_skill": 0.125,
    "rolling_mase": 0.97,
    "rolling_call_rate": 0.9,
    "rolling_hit_rate": 0.56,
}


class Performance(RollingScores):
    ticker: str
    date: dt.date = Field(description="The latest date on which forecasts matured.")
    rolling_mape: float | None
    rolling_naive_mape: float | None
    rolling_directional_accuracy: float | None = Field(
        description="Share of directional calls that were right (= rolling_hit_rate)."
    )
    rolling_n: int
    beats_naive: bool | None = Field(description="rolling_mape < rolling_naive_mape.")
    skill_vs_naive: float | None = Field(description="1 - rolling_mape / rolling_naive_mape.")
    brier_skill: float | None = Field(
        default=None,
        description="1 - rolling_brier / rolling_brier_climatology (> 0: p_up beats the base "
        "rate).",
    )
    check: MapeCheck
    matured: list[MaturedRow] = Field(description="The forecasts that matured on `date`.")
    series: list[PerformancePoint] = Field(description="Rolling metrics per date, oldest first.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticker": "AAPL",
                    "date": "2024-06-28",
                    "rolling_mape": 0.021,
                    "rolling_naive_mape": 0.024,
                    "rolling_directional_accuracy": 0.56,
                    "rolling_n": 40,
                    **_EXAMPLE_SCORES,
                    "beats_naive": True,
                    "skill_vs_naive": 0.125,
                    "brier_skill": 0.024,
                    "check": {
                        "status": "passing",
                        "rule": "MAPE <= 0.05 and <= naive MAPE x 1.25 (the rolling MAPE once "
                        "at least 5 forecasts matured, else the model's test MAPE)",
                        "evidence": "live",
                        "mape": 0.021,
                        "naive_mape": 0.024,
                        "threshold": 0.05,
                        "naive_margin": 0.25,
                        "min_rolling_n": 5,
                    },
                    "matured": [],
                    "series": [
                        {
                            "date": "2024-06-28",
                            "rolling_mape": 0.021,
                            "rolling_naive_mape": 0.024,
                            "rolling_directional_accuracy": 0.56,
                            "rolling_n": 40,
                            **_EXAMPLE_SCORES,
                        }
                    ],
                }
            ]
        }
    )
