"""The report cache's exact key: every fact a report states, at the precision it prints it.

Why a module of its own: a cache hit may never change a fact the report states, so the key is
built from the report's own figure lines (`analyst.build_figures`: last close, each step's close
and move, the 80 % range, p_up, rolling and naive MAPE, skill, directional accuracy and matured
count, drift share and alarm, the grade, the market context), plus every forecast number the
writer sees (each step's close, all quantile closes and p_up, rounded as the report rounds them)
and the outcome of the rules the critic enforces (the band call and the deterministic verdict).
Two inputs with the same fingerprint are the same report in every number it can quote; the
embedding only matches differently written requests for those same facts.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from stock_assets.agents.analyst import build_figures
from stock_assets.agents.stance import deterministic_verdict
from stock_assets.agents.state import ReportInputs
from stock_assets.agents.summaries import summarize_market, summarize_performance
from stock_assets.agents.verdict import band_call


def _close(value: float) -> float:
    """A close as the report prints it (2 decimals)."""
    return round(value, 2)


def _chance(p_up: float | None) -> float | None:
    """A probability as the report prints it (percent, 1 decimal)."""
    return None if p_up is None else round(100.0 * p_up, 1)


def report_facts(inputs: ReportInputs) -> dict[str, Any]:
    """The canonical facts of one report: its identity, its figure lines and its rule outcomes."""
    performance = summarize_performance(inputs)
    market = summarize_market(inputs)
    figures = build_figures(inputs, performance, market)
    call = band_call(
        performance.direction, performance.final_return_pct, performance.range_pct, performance.p_up
    )
    verdict = deterministic_verdict(inputs, performance, market)
    return {
        "ticker": inputs.ticker,
        "as_of_date": inputs.as_of_date.isoformat(),
        "model_name": inputs.model_name,
        "model_version": inputs.model_version,
        "index_symbol": inputs.index_symbol,
        "figures": {
            section: [[figure.label, figure.text] for figure in lines]
            for section, lines in figures.items()
        },
        "forecast": [
            [
                point.target_date.isoformat(),
                point.horizon,
                _close(point.predicted_close),
                None if point.quantiles is None else [_close(q) for q in point.quantiles],
                _chance(point.p_up),
            ]
            for point in inputs.forecast
        ],
        "rules": {
            "direction": performance.direction,
            "grade": performance.grade,
            "band_call": [call.stance, call.confidence_cap],
            "deterministic_verdict": [verdict.stance, verdict.confidence],
        },
    }


def report_fingerprint(inputs: ReportInputs) -> str:
    """SHA-256 of `report_facts`: equal exactly when every stated fact is equal."""
    canonical = json.dumps(report_facts(inputs), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
