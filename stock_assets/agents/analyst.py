"""The analysis: each section's figures and the deterministic template writer.

Both writers share `render_report`, so every report has the same fixed sections and the same
figure lines computed from the data; an LLM only adds the narrative and the verdict. That keeps
the quoted figures exact whoever wrote the report, and lets the critic and the quality check
compare any other number in the prose against the same figures. The analysts' conclusions are
`summaries.py`'s, the verdict rules live in `stance.py` (the deterministic analyst's) and
`verdict.py` (the band rule), the LLM's prompts in `prompts.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stock_assets.agents.stance import deterministic_verdict
from stock_assets.agents.state import (
    REPORT_INTERVAL,
    MarketSummary,
    PerformanceSummary,
    ReportDraft,
    ReportInputs,
)
from stock_assets.agents.summaries import MIN_MATURED
from stock_assets.agents.verdict import Verdict

DETERMINISTIC_AUTHOR = "deterministic-analyst"
SECTIONS: tuple[str, ...] = ("Forecast", "Model reliability", "Market context", "Verdict")
NARRATIVE_SECTIONS: tuple[str, ...] = SECTIONS[:3]


@dataclass(frozen=True)
class Figure:
    """One `- **label:** text` line; `values` are the numbers the text quotes, in order."""

    label: str
    text: str
    values: tuple[float, ...] = ()


# ---------------------------------------------------------------------------------------------
# Figures: the numbers each section quotes, rendered once from the data
# ---------------------------------------------------------------------------------------------


def _pct(value: float, signed: bool = True) -> tuple[str, float]:
    rounded = round(value, 2)
    return (f"{rounded:+.2f}%" if signed else f"{rounded:.2f}%"), rounded


def range_label(inputs: ReportInputs) -> str:
    """The label of the final step's range figure line (the critic looks for it)."""
    return f"{REPORT_INTERVAL}% range t+{inputs.final_forecast.horizon}"


def band_figures(inputs: ReportInputs, performance: PerformanceSummary) -> list[Figure]:
    """The final step's 80 % range (closes and % moves) and its probability of a rise."""
    final = inputs.final_forecast
    band = final.interval(REPORT_INTERVAL)
    figures: list[Figure] = []
    if band is None or performance.range_pct is None:
        figures.append(Figure(range_label(inputs), "unavailable (the forecast has no quantiles)"))
    else:
        (low_text, low_pct), (high_text, high_pct) = (_pct(v) for v in performance.range_pct)
        figures.append(
            Figure(
                range_label(inputs),
                f"{band[0]:.2f} to {band[1]:.2f} ({low_text} to {high_text})",
                (round(band[0], 2), round(band[1], 2), low_pct, high_pct),
            )
        )
    label = f"Probability of a rise by t+{final.horizon}"
    if performance.p_up is None:
        figures.append(Figure(label, "unavailable"))
    else:
        chance = round(100.0 * performance.p_up, 1)
        figures.append(Figure(label, f"{chance:.1f}%", (chance,)))
    return figures


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
    forecast += band_figures(inputs, performance)
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


def band_narrative(inputs: ReportInputs, performance: PerformanceSummary) -> str:
    """What the range and the probability of a rise say, in words; or that they are unavailable."""
    final = inputs.final_forecast
    band = final.interval(REPORT_INTERVAL)
    if band is None or performance.range_pct is None:
        text = f"The forecast carries no quantiles, so its {REPORT_INTERVAL}% range is unavailable"
    else:
        low, high = performance.range_pct
        text = (
            f"The {REPORT_INTERVAL}% range for {final.target_date.isoformat()} runs from "
            f"{band[0]:.2f} to {band[1]:.2f} ({_signed(low)}% to {_signed(high)}%)"
        )
    if performance.p_up is None:
        return text + "."
    chance = round(100.0 * performance.p_up, 1)
    return (
        text + f", and the model puts the chance of a close above the last close at {chance:.1f}%."
    )


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
        f"{steps_up} of {len(inputs.forecast)} forecast steps are above the last close. "
        + band_narrative(inputs, performance)
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
