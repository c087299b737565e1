"""The forecast_mape rule, the one judgement both the Dagster check and serving/ make.

Why here: the check (stock_assets.forecasting.checks) judges it inside forecast_performance, and
GET /performance judges the same rule on the lake's rolling columns because serving cannot read
Dagster's event log. One function and one set of defaults keep the two from drifting apart;
serving's settings read the same environment variables as the pipeline's MonitoringSettings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

# Environment variables (read by MonitoringSettings and serving.settings) and their defaults.
MAPE_THRESHOLD_ENV = "STOCK_ASSETS_MAPE_THRESHOLD"
NAIVE_MARGIN_ENV = "STOCK_ASSETS_NAIVE_MARGIN"
MAPE_MIN_MATURED_ENV = "STOCK_ASSETS_MAPE_MIN_MATURED"
MAPE_THRESHOLD = 0.05  # a fraction: the rolling MAPE may not exceed 5 %
NAIVE_MARGIN = 0.25  # ...nor naive persistence's MAPE x 1.25
MAPE_MIN_MATURED = 5  # matured forecasts before the rolling MAPE is judged

Evidence = Literal["live", "model_test", "none"]


@dataclass(frozen=True)
class MapeEvidence:
    """What forecast_mape judges: the rolling MAPE, or the model's test-window MAPE before enough
    forecasts matured, or nothing (fractions)."""

    kind: Evidence
    mape: float | None
    naive_mape: float | None


def mape_evidence(
    rolling_n: int,
    rolling_mape: float | None,
    rolling_naive_mape: float | None,
    test_mape: float | None,
    test_naive_mape: float | None,
    min_matured: int = MAPE_MIN_MATURED,
) -> MapeEvidence:
    """The live rolling MAPE once `min_matured` out-of-sample forecasts matured, else the
    forecasting model's test-window MAPE (the best estimate of its error there is), else none."""
    if rolling_n >= min_matured and rolling_mape is not None:
        return MapeEvidence("live", rolling_mape, rolling_naive_mape)
    if test_mape is not None:
        return MapeEvidence("model_test", test_mape, test_naive_mape)
    return MapeEvidence("none", None, None)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.2f}%"


def mape_problems(
    mape: float,
    naive_mape: float | None,
    threshold: float = MAPE_THRESHOLD,
    naive_margin: float = NAIVE_MARGIN,
) -> list[str]:
    """Why `mape` fails the rule (empty: it passes): above the threshold (or not finite), or above
    naive persistence's MAPE x (1 + margin)."""
    problems = []
    if not math.isfinite(mape) or mape > threshold:
        problems.append(f"MAPE {_percent(mape)} > threshold {_percent(threshold)}")
    if naive_mape is not None and mape > naive_mape * (1.0 + naive_margin):
        problems.append(f"MAPE {_percent(mape)} > naive {_percent(naive_mape)} x {1 + naive_margin:g}")
    return problems
