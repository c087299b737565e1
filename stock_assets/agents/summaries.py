"""What the performance analyst and the market expert conclude: pure functions of the inputs.

Why a module of its own: these are the two analysts' decisions (a direction, a reliability
grade, the final step's range; the tape's returns, strength and volatility regime), tested on
crafted inputs; the figures and the prose of `analyst.py` only quote them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import date

from stock_assets.agents.state import (
    REPORT_INTERVAL,
    Direction,
    MarketSummary,
    PerformanceSummary,
    PriceBar,
    ReliabilityGrade,
    ReportInputs,
)

# A predicted move smaller than this (in %) is "flat": no directional stance is justified.
FLAT_BAND_PCT = 0.25
# Fewer matured forecasts than this and the model's track record is "unproven".
MIN_MATURED = 10
# Relative improvement over the naive forecast (in %) for a "good" grade.
GOOD_SKILL_PCT = 5.0
TRADING_DAYS_PER_YEAR = 252


def forecast_direction(return_pct: float) -> Direction:
    if abs(return_pct) < FLAT_BAND_PCT:
        return "flat"
    return "up" if return_pct > 0 else "down"


def summarize_performance(inputs: ReportInputs) -> PerformanceSummary:
    """Where the forecast points, and a reliability grade from the performance log and drift."""
    steps = tuple(100.0 * (p.predicted_close / inputs.last_close - 1.0) for p in inputs.forecast)
    final = steps[-1]
    mape, naive = inputs.rolling_mape_pct, inputs.naive_mape_pct
    skill = 100.0 * (1.0 - mape / naive) if mape is not None and naive else None
    notes: list[str] = []
    grade: ReliabilityGrade
    if mape is None or naive is None or inputs.n_matured < MIN_MATURED:
        grade = "unproven"
        notes.append(f"only {inputs.n_matured} matured forecasts (< {MIN_MATURED})")
    elif inputs.drifted or (skill is not None and skill <= 0):
        grade = "weak"
        if inputs.drifted:
            notes.append("feature drift alarm")
        if skill is not None and skill <= 0:
            notes.append("no better than the naive forecast")
    elif (
        skill is not None
        and skill >= GOOD_SKILL_PCT
        and (inputs.directional_accuracy is None or inputs.directional_accuracy >= 0.5)
    ):
        grade = "good"
    else:
        grade = "fair"
    if grade == "unproven" and inputs.drifted:
        notes.append("feature drift alarm")
    band = inputs.final_forecast.interval(REPORT_INTERVAL)
    return PerformanceSummary(
        direction=forecast_direction(final),
        final_return_pct=final,
        step_returns_pct=steps,
        skill_vs_naive_pct=skill,
        grade=grade,
        notes=tuple(notes),
        range_pct=None
        if band is None
        else (
            100.0 * (band[0] / inputs.last_close - 1.0),
            100.0 * (band[1] / inputs.last_close - 1.0),
        ),
        p_up=inputs.final_forecast.p_up,
    )


def _close_on_or_before(bars: Sequence[PriceBar], day: date) -> float | None:
    eligible = [b.close for b in bars if b.date <= day]
    return eligible[-1] if eligible else None


def summarize_market(
    inputs: ReportInputs, news: Sequence[str] = (), news_status: str = "not fetched"
) -> MarketSummary:
    """Price action, volume, relative strength vs the index and the volatility regime."""
    bars = inputs.prices
    closes = [b.close for b in bars]
    r5 = 100.0 * (closes[-1] / closes[-6] - 1.0) if len(closes) >= 6 else None
    r20 = idx20 = rs = None
    if len(closes) >= 21:
        r20 = 100.0 * (closes[-1] / closes[-21] - 1.0)
        start, end = bars[-21].date, bars[-1].date
        idx_start = _close_on_or_before(inputs.index_prices, start)
        idx_end = _close_on_or_before(inputs.index_prices, end)
        if idx_start and idx_end and inputs.index_prices[0].date <= start:
            idx20 = 100.0 * (idx_end / idx_start - 1.0)
            rs = r20 - idx20
    volumes = [b.volume for b in bars]
    volume_ratio = None
    if len(volumes) >= 20 and statistics.fmean(volumes[-20:]) > 0:
        volume_ratio = statistics.fmean(volumes[-5:]) / statistics.fmean(volumes[-20:])
    log_returns = [math.log(b / a) for a, b in zip(closes, closes[1:], strict=False)]
    vol20 = regime = None
    if len(log_returns) >= 20:
        vol20 = 100.0 * statistics.stdev(log_returns[-20:]) * math.sqrt(TRADING_DAYS_PER_YEAR)
        if len(log_returns) >= 40:
            baseline = 100.0 * statistics.stdev(log_returns) * math.sqrt(TRADING_DAYS_PER_YEAR)
            if vol20 > 1.25 * baseline:
                regime = "elevated"
            elif vol20 < 0.8 * baseline:
                regime = "calm"
            else:
                regime = "normal"
    above = closes[-1] > statistics.fmean(closes[-20:]) if len(closes) >= 20 else None
    return MarketSummary(
        return_5d_pct=r5,
        return_20d_pct=r20,
        index_return_20d_pct=idx20,
        relative_strength_pp=rs,
        volume_ratio=volume_ratio,
        volatility_20d_pct=vol20,
        volatility_regime=regime,
        above_sma20=above,
        news=tuple(news),
        news_status=news_status,
    )
