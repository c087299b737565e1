"""The deterministic analyst's verdict: the reliability grade, the forecast's band and the market.

Why a module of its own: the verdict is a decision, and decisions are pure functions tested on
crafted inputs. It layers three rules, each of which can only hold a call back: a flat forecast
or a weak model makes no call (the grade); a call needs the 80 % range and the probability of a
rise to lean its way, and its confidence is capped by how wide the range is against the move
(`verdict.band_call`, the rule the critic enforces too); the market's relative strength and the
volatility regime decide between High, Medium and Low below that cap.
"""

from __future__ import annotations

from stock_assets.agents.state import (
    Direction,
    MarketSummary,
    PerformanceSummary,
    ReportInputs,
)
from stock_assets.agents.verdict import (
    Confidence,
    Stance,
    Verdict,
    band_call,
    lower_confidence,
)


def _signed(value: float) -> str:
    return f"{round(value, 2):+.2f}"


def market_agrees(direction: Direction, market: MarketSummary) -> bool | None:
    """Whether relative strength vs the index points the forecast's way (None: unknown)."""
    if direction == "flat" or market.relative_strength_pp is None:
        return None
    return (market.relative_strength_pp > 0) == (direction == "up")


def _grade_confidence(
    performance: PerformanceSummary, agrees: bool | None, market: MarketSummary
) -> Confidence:
    """A directional call's confidence from the track record and the market, before the band."""
    if performance.grade == "good" and agrees and market.volatility_regime != "elevated":
        return "High"
    if performance.grade in ("good", "fair") or agrees:
        return "Medium"
    return "Low"


def deterministic_verdict(
    inputs: ReportInputs, performance: PerformanceSummary, market: MarketSummary
) -> Verdict:
    """Rule-based stance and confidence; always consistent with the critic's rules."""
    direction = performance.direction
    agrees = market_agrees(direction, market)
    final = round(performance.final_return_pct, 2)
    horizon = inputs.final_forecast.horizon
    call = band_call(
        direction, performance.final_return_pct, performance.range_pct, performance.p_up
    )
    neutral_confidence: Confidence = "Medium" if performance.grade == "good" else "Low"
    stance: Stance
    confidence: Confidence
    if direction == "flat":
        stance, confidence = "NEUTRAL", neutral_confidence
        why = f"The forecast move of {_signed(final)}% over {horizon} days is inside the flat band."
    elif performance.grade == "weak":
        stance, confidence = "NEUTRAL", "Low"
        why = (
            f"The forecast points {direction} ({_signed(final)}% over {horizon} days) but the "
            f"model is weak here ({'; '.join(performance.notes)}), so no directional call is made."
        )
    elif call.stance == "NEUTRAL":
        stance, confidence = "NEUTRAL", neutral_confidence
        why = (
            f"The forecast points {direction} ({_signed(final)}% over {horizon} days) but "
            f"{call.reason}, so no directional call is made."
        )
    else:
        stance = call.stance
        by_grade = _grade_confidence(performance, agrees, market)
        confidence = lower_confidence(by_grade, call.confidence_cap)
        why = (
            f"The forecast points {direction} ({_signed(final)}% over {horizon} days); "
            f"model reliability is {performance.grade}"
        )
        if performance.grade == "unproven":
            why += f" ({inputs.n_matured} matured forecasts)"
        if agrees is not None and market.relative_strength_pp is not None:
            why += (
                f", and relative strength of {_signed(market.relative_strength_pp)} pp vs "
                f"{inputs.index_symbol} {'supports' if agrees else 'contradicts'} it"
            )
        why += f". {call.reason[0].upper()}{call.reason[1:]}"
        if confidence != by_grade:
            why += (
                ", but the range is wide against the move"
                if performance.range_pct is not None
                else ", but without a range the forecast's spread is unknown"
            )
            why += f", so confidence is {confidence}"
        why += "."
    return Verdict(stance=stance, confidence=confidence, rationale=why)
