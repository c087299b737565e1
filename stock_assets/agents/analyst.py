"""The analysis: each section's figures, the deterministic template writer, the LLM prompts.

Both writers share `render_report`, so every report has the same fixed sections and the same
figure lines computed from the data; an LLM only adds the narrative and the verdict. That keeps
the quoted figures exact whoever wrote the report, and lets the critic and the quality check
compare any other number in the prose against the same figures.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from stock_assets.agents.state import (
    Direction,
    MarketSummary,
    PerformanceSummary,
    PriceBar,
    ReliabilityGrade,
    ReportDraft,
    ReportInputs,
)
from stock_assets.agents.verdict import Verdict

DETERMINISTIC_AUTHOR = "deterministic-analyst"
SECTIONS: tuple[str, ...] = ("Forecast", "Model reliability", "Market context", "Verdict")
NARRATIVE_SECTIONS: tuple[str, ...] = SECTIONS[:3]

# A predicted move smaller than this (in %) is "flat": no directional stance is justified.
FLAT_BAND_PCT = 0.25
# Fewer matured forecasts than this and the model's track record is "unproven".
MIN_MATURED = 10
# Relative improvement over the naive forecast (in %) for a "good" grade.
GOOD_SKILL_PCT = 5.0
TRADING_DAYS_PER_YEAR = 252


@dataclass(frozen=True)
class Figure:
    """One `- **label:** text` line; `values` are the numbers the text quotes, in order."""

    label: str
    text: str
    values: tuple[float, ...] = ()


# ---------------------------------------------------------------------------------------------
# The performance analyst's and the market expert's conclusions (pure functions of the inputs)
# ---------------------------------------------------------------------------------------------


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
    return PerformanceSummary(
        direction=forecast_direction(final),
        final_return_pct=final,
        step_returns_pct=steps,
        skill_vs_naive_pct=skill,
        grade=grade,
        notes=tuple(notes),
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


# ---------------------------------------------------------------------------------------------
# Figures: the numbers each section quotes, rendered once from the data
# ---------------------------------------------------------------------------------------------


def _pct(value: float, signed: bool = True) -> tuple[str, float]:
    rounded = round(value, 2)
    return (f"{rounded:+.2f}%" if signed else f"{rounded:.2f}%"), rounded


def build_figures(
    inputs: ReportInputs, performance: PerformanceSummary, market: MarketSummary
) -> dict[str, tuple[Figure, ...]]:
    """The figure lines of each narrative section, keyed by section name."""
    forecast = [Figure("Last close", f"{inputs.last_close:.2f}", (round(inputs.last_close, 2),))]
    for point, step in zip(inputs.forecast, performance.step_returns_pct, strict=True):
        text, value = _pct(step)
        forecast.append(
            Figure(
                f"Forecast t+{point.horizon} ({point.target_date.isoformat()})",
                f"{point.predicted_close:.2f} ({text})",
                (round(point.predicted_close, 2), value),
            )
        )
    direction_word = {"up": "up", "down": "down", "flat": "flat (inside the no-call band)"}
    forecast.append(Figure("Direction", direction_word[performance.direction]))

    reliability: list[Figure] = []
    if inputs.rolling_mape_pct is None:
        reliability.append(Figure("Rolling MAPE", "n/a (no matured forecasts yet)"))
    else:
        text, value = _pct(inputs.rolling_mape_pct, signed=False)
        reliability.append(Figure("Rolling MAPE", text, (value,)))
    if inputs.naive_mape_pct is None:
        reliability.append(Figure("Naive MAPE", "n/a"))
    else:
        text, value = _pct(inputs.naive_mape_pct, signed=False)
        reliability.append(Figure("Naive MAPE", text, (value,)))
    if performance.skill_vs_naive_pct is not None:
        text, value = _pct(performance.skill_vs_naive_pct)
        reliability.append(Figure("Skill vs naive", text, (value,)))
    if inputs.directional_accuracy is None:
        reliability.append(Figure("Directional accuracy", "n/a"))
    else:
        accuracy = round(100.0 * inputs.directional_accuracy, 1)
        reliability.append(
            Figure(
                "Directional accuracy",
                f"{accuracy:.1f}% over {inputs.n_matured} matured forecasts",
                (accuracy, float(inputs.n_matured)),
            )
        )
    if inputs.drift_share is None:
        reliability.append(Figure("Feature drift", "not measured"))
    else:
        share = round(100.0 * inputs.drift_share, 1)
        alarm = "drift alarm" if inputs.drifted else "no drift alarm"
        reliability.append(
            Figure("Feature drift", f"{share:.1f}% of features drifted ({alarm})", (share,))
        )
    reliability.append(Figure("Reliability grade", performance.grade))

    market_figs: list[Figure] = []
    for label, value in (
        ("5-day return", market.return_5d_pct),
        ("20-day return", market.return_20d_pct),
        (f"{inputs.index_symbol} 20-day return", market.index_return_20d_pct),
    ):
        if value is None:
            market_figs.append(Figure(label, "n/a (not enough history)"))
        else:
            text, rounded = _pct(value)
            market_figs.append(Figure(label, text, (rounded,)))
    if market.relative_strength_pp is None:
        market_figs.append(Figure(f"Relative strength vs {inputs.index_symbol} (20d)", "n/a"))
    else:
        rs = round(market.relative_strength_pp, 2)
        market_figs.append(
            Figure(f"Relative strength vs {inputs.index_symbol} (20d)", f"{rs:+.2f} pp", (rs,))
        )
    if market.volume_ratio is None:
        market_figs.append(Figure("Volume, 5d vs 20d average", "n/a"))
    else:
        ratio = round(market.volume_ratio, 2)
        market_figs.append(Figure("Volume, 5d vs 20d average", f"{ratio:.2f}x", (ratio,)))
    if market.volatility_20d_pct is None:
        market_figs.append(Figure("Realized volatility (20d, annualized)", "n/a"))
    else:
        text, vol = _pct(market.volatility_20d_pct, signed=False)
        regime = f" ({market.volatility_regime} regime)" if market.volatility_regime else ""
        market_figs.append(
            Figure("Realized volatility (20d, annualized)", f"{text}{regime}", (vol,))
        )
    if market.above_sma20 is not None:
        market_figs.append(
            Figure("Price vs 20-day average", "above" if market.above_sma20 else "below")
        )
    return {
        "Forecast": tuple(forecast),
        "Model reliability": tuple(reliability),
        "Market context": tuple(market_figs),
    }


def figure_values(figures: Mapping[str, Sequence[Figure]]) -> list[float]:
    return [v for section in figures.values() for fig in section for v in fig.values]


# ---------------------------------------------------------------------------------------------
# Rendering and the deterministic writer
# ---------------------------------------------------------------------------------------------


def render_report(
    inputs: ReportInputs,
    figures: Mapping[str, Sequence[Figure]],
    narratives: Mapping[str, str],
    verdict: Verdict,
    author: str,
    market: MarketSummary,
    author_note: str = "",
) -> str:
    """The markdown report with its fixed sections; the verdict is also embedded as a JSON block."""
    note = f" ({author_note})" if author_note else ""
    lines = [
        f"# {inputs.ticker}: daily analysis for {inputs.as_of_date.isoformat()}",
        "",
        f"_Written by {author}{note}. Model {inputs.model_name} version {inputs.model_version}; "
        f"data as of {inputs.as_of_date.isoformat()}._",
    ]
    for section in NARRATIVE_SECTIONS:
        lines += ["", f"## {section}", ""]
        lines += [f"- **{fig.label}:** {fig.text}" for fig in figures[section]]
        if section == "Market context":
            if market.news:
                lines += ["", "Recent headlines:"] + [f"> {headline}" for headline in market.news]
            else:
                lines += ["", f"_News: {market.news_status}._"]
        lines += ["", narratives[section].strip()]
    lines += [
        "",
        "## Verdict",
        "",
        f"- **Stance:** {verdict.stance}",
        f"- **Confidence:** {verdict.confidence}",
        f"- **Rationale:** {verdict.rationale}",
        "",
        "```json",
        verdict.to_json(),
        "```",
    ]
    return "\n".join(lines) + "\n"


def _signed(value: float) -> str:
    return f"{round(value, 2):+.2f}"


def deterministic_narratives(
    inputs: ReportInputs, performance: PerformanceSummary, market: MarketSummary
) -> dict[str, str]:
    """Template prose for each section; it quotes only numbers that are also figure lines."""
    final = inputs.final_forecast
    move = {"up": "rise", "down": "fall", "flat": "stay roughly flat, moving"}[
        performance.direction
    ]
    steps_up = sum(1 for r in performance.step_returns_pct if r > 0)
    forecast_text = (
        f"Model {inputs.model_name} (version {inputs.model_version}) expects {inputs.ticker} "
        f"to {move} {abs(round(performance.final_return_pct, 2)):.2f}% from "
        f"{inputs.last_close:.2f} to {final.predicted_close:.2f} by "
        f"{final.target_date.isoformat()} ({final.horizon} trading days ahead). "
        f"{steps_up} of {len(inputs.forecast)} forecast steps are above the last close."
    )

    if performance.grade == "unproven":
        reliability_text = (
            f"Only {inputs.n_matured} forecasts have matured (fewer than {MIN_MATURED}), so "
            f"this model's accuracy on {inputs.ticker} is not established yet; the forecast is "
            "treated as unproven."
        )
    else:
        skill = performance.skill_vs_naive_pct or 0.0
        relation = "beating" if skill > 0 else "not beating"
        reliability_text = (
            f"Over {inputs.n_matured} matured forecasts the rolling MAPE is "
            f"{inputs.rolling_mape_pct:.2f}% against {inputs.naive_mape_pct:.2f}% for the naive "
            f"last-close forecast, {relation} it (skill {_signed(skill)}%)."
        )
        if inputs.directional_accuracy is not None:
            accuracy = 100.0 * inputs.directional_accuracy
            reliability_text += f" It called the direction right {accuracy:.1f}% of the time."
    if inputs.drift_share is not None:
        share = f"{100.0 * inputs.drift_share:.1f}%"
        reliability_text += f" Feature drift: {share} of features drifted, " + (
            "which raised the drift alarm, so recent inputs look unlike the training data."
            if inputs.drifted
            else "below the drift alarm."
        )
    reliability_text += f" Reliability grade: {performance.grade}."

    parts: list[str] = []
    if market.return_20d_pct is not None and market.return_5d_pct is not None:
        parts.append(
            f"{inputs.ticker} moved {_signed(market.return_5d_pct)}% over 5 days and "
            f"{_signed(market.return_20d_pct)}% over 20 days."
        )
    elif market.return_5d_pct is not None:
        parts.append(f"{inputs.ticker} moved {_signed(market.return_5d_pct)}% over 5 days.")
    else:
        parts.append(f"Only {len(inputs.prices)} days of price history are available.")
    if market.relative_strength_pp is not None and market.index_return_20d_pct is not None:
        side = "outperforming" if market.relative_strength_pp > 0 else "underperforming"
        parts.append(
            f"Against {_signed(market.index_return_20d_pct)}% for {inputs.index_symbol} it is "
            f"{side} by {abs(round(market.relative_strength_pp, 2)):.2f} pp."
        )
    if market.volume_ratio is not None:
        parts.append(f"Volume runs at {market.volume_ratio:.2f}x its 20-day average.")
    if market.volatility_20d_pct is not None:
        regime = f", a {market.volatility_regime} regime" if market.volatility_regime else ""
        parts.append(f"Realized volatility is {market.volatility_20d_pct:.2f}% annualized{regime}.")
    if market.above_sma20 is not None:
        parts.append(
            f"The price is {'above' if market.above_sma20 else 'below'} its 20-day average."
        )
    return {
        "Forecast": forecast_text,
        "Model reliability": reliability_text,
        "Market context": " ".join(parts),
    }


def market_agrees(direction: Direction, market: MarketSummary) -> bool | None:
    """Whether relative strength vs the index points the forecast's way (None: unknown)."""
    if direction == "flat" or market.relative_strength_pp is None:
        return None
    return (market.relative_strength_pp > 0) == (direction == "up")


def deterministic_verdict(
    inputs: ReportInputs, performance: PerformanceSummary, market: MarketSummary
) -> Verdict:
    """Rule-based stance and confidence; always consistent with the critic's rules."""
    direction = performance.direction
    agrees = market_agrees(direction, market)
    final = round(performance.final_return_pct, 2)
    horizon = inputs.final_forecast.horizon
    if direction == "flat":
        stance, confidence = "NEUTRAL", ("Medium" if performance.grade == "good" else "Low")
        why = f"The forecast move of {_signed(final)}% over {horizon} days is inside the flat band."
    elif performance.grade == "weak":
        stance, confidence = "NEUTRAL", "Low"
        why = (
            f"The forecast points {direction} ({_signed(final)}% over {horizon} days) but the "
            f"model is weak here ({'; '.join(performance.notes)}), so no directional call is made."
        )
    else:
        stance = "BULLISH" if direction == "up" else "BEARISH"
        if performance.grade == "good" and agrees and market.volatility_regime != "elevated":
            confidence = "High"
        elif performance.grade in ("good", "fair") or agrees:
            confidence = "Medium"
        else:
            confidence = "Low"
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
        why += "."
    return Verdict(stance=stance, confidence=confidence, rationale=why)


def write_deterministic_draft(
    inputs: ReportInputs,
    performance: PerformanceSummary,
    market: MarketSummary,
    author_note: str = "",
    events: tuple[str, ...] = (),
) -> ReportDraft:
    """A complete report from templates: every section from the data, no model involved."""
    verdict = deterministic_verdict(inputs, performance, market)
    markdown = render_report(
        inputs,
        build_figures(inputs, performance, market),
        deterministic_narratives(inputs, performance, market),
        verdict,
        DETERMINISTIC_AUTHOR,
        market,
        author_note,
    )
    return ReportDraft(
        markdown=markdown, verdict=verdict, author=DETERMINISTIC_AUTHOR, events=events
    )


# ---------------------------------------------------------------------------------------------
# LLM prompts and answer parsing
# ---------------------------------------------------------------------------------------------

SYSTEM_PROMPT = (
    "You are a careful equity analyst writing a short daily report on one stock for an internal "
    "dashboard. Use only the figures you are given and quote them exactly as written; never "
    "invent numbers. Do not give personal investment advice."
)

ANSWER_FORMAT = """Answer in exactly this format: these four headings, nothing before the first:

## Forecast
<2-4 sentences on what the model forecasts>

## Model reliability
<2-4 sentences on how reliable the model has been>

## Market context
<2-4 sentences on what the market is doing>

## Verdict
```json
{"stance": "BULLISH" | "BEARISH" | "NEUTRAL", "confidence": "High" | "Medium" | "Low",
 "rationale": "<one or two sentences>"}
```

Rules for the verdict: BULLISH only if the forecast direction is up, BEARISH only if it is down,
NEUTRAL if it is flat or the model is unreliable. Confidence "High" only when the reliability
grade is "good" and there is no drift alarm. Put exactly one JSON verdict in the answer."""


class ReportFormatError(ValueError):
    """An LLM answer lacks a required section (the verdict is checked by parse_verdict)."""


def build_writer_prompt(
    inputs: ReportInputs,
    performance: PerformanceSummary,
    market: MarketSummary,
    revision_notes: Sequence[str] = (),
    previous_error: str | None = None,
) -> tuple[str, str]:
    """(system, user) messages for the report writer; the figures come verbatim from the data."""
    figures = build_figures(inputs, performance, market)
    blocks = [
        f"Stock: {inputs.ticker}. Date: {inputs.as_of_date.isoformat()}. "
        f"Model: {inputs.model_name} version {inputs.model_version}."
    ]
    for section in NARRATIVE_SECTIONS:
        blocks.append(
            f"### {section} figures\n"
            + "\n".join(f"- {f.label}: {f.text}" for f in figures[section])
        )
    if performance.notes:
        blocks.append("Performance notes: " + "; ".join(performance.notes))
    if market.news:
        blocks.append(
            "Recent headlines (context only, do not quote numbers from them):\n"
            + "\n".join(f"- {h}" for h in market.news)
        )
    blocks.append(ANSWER_FORMAT)
    if revision_notes:
        blocks.append(
            "A reviewer rejected your previous report because it contradicts the numbers:\n"
            + "\n".join(f"- {note}" for note in revision_notes)
            + "\nWrite the report again so that the verdict agrees with the figures."
        )
    if previous_error:
        blocks.append(
            f"Your previous answer could not be used: {previous_error}. "
            "Answer again in exactly the format above."
        )
    return SYSTEM_PROMPT, "\n\n".join(blocks)


_HEADING = re.compile(r"^\s{0,3}#{1,3}\s*(.+?)\s*#*\s*$", re.MULTILINE)


def parse_llm_sections(text: str) -> dict[str, str]:
    """Each required section's narrative in an LLM answer; ReportFormatError if one is missing."""
    wanted = {name.lower(): name for name in SECTIONS}
    found: dict[str, str] = {}
    matches = list(_HEADING.finditer(text))
    for i, match in enumerate(matches):
        name = wanted.get(match.group(1).strip().strip("*:").strip().lower())
        if name is None:
            continue
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = re.sub(r"```.*?```", "", text[match.end() : end], flags=re.DOTALL).strip()
        if name in found:
            raise ReportFormatError(f"section {name!r} appears twice")
        found[name] = body
    missing = [name for name in NARRATIVE_SECTIONS if not found.get(name)]
    if missing:
        raise ReportFormatError(f"missing or empty sections: {missing}")
    return {name: found[name] for name in NARRATIVE_SECTIONS}
