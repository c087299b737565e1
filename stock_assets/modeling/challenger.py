"""A newly trained network judged on its test windows: against the point and volatility
baselines, after the persistence fallback, and the production model on the same windows.

Why its own step: the numbers decided here feed the MLflow run, the blocking checks, the
promotion gate and the model card alike, so they are computed once, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from stock_assets.datasets.windows import SequenceData
from stock_assets.modeling.artifacts import (
    ModelBundle,
    rescale_windows,
    weights_are_finite,
)
from stock_assets.modeling.config import ModelTrainingConfig
from stock_assets.modeling.evaluation import (
    evaluate_all,
    forecast_metrics,
    reconstruct_prices,
    validation_mapes,
)
from stock_assets.modeling.model_checks import PROMOTION_METRIC
from stock_assets.modeling.probabilistic import (
    INTERVAL_METRIC,
    best_vol_baseline,
    fit_model_spread,
    interval_evaluation,
)
from stock_assets.modeling.training import predict_returns


@dataclass(frozen=True)
class ChallengerEvaluation:
    """Every score of one trained network on its windows (MAPEs in percent)."""

    spread: Any  # uncertainty.SpreadModel, fitted on the training part
    evaluation: pl.DataFrame  # one row per network and point baseline, test windows
    network_metrics: dict  # the network's own row, before any fallback
    val_network: float
    val_naive: float
    fallback: bool  # shrunk to persistence (skill_weight 0) on validation
    intervals: pl.DataFrame  # the served model's bands and the volatility baselines'
    strategy: str

    @property
    def by_model(self) -> dict[str, dict]:
        return {row["model"]: row for row in self.evaluation.iter_rows(named=True)}

    @property
    def metrics(self) -> dict:
        """The served model's point scores (the network's, or persistence's after a fallback)."""
        return self.by_model[self.strategy]

    @property
    def naive(self) -> dict:
        return self.by_model["naive"]

    @property
    def served(self) -> dict:
        return self.intervals.row(0, named=True)

    @property
    def best(self) -> dict:
        return best_vol_baseline(self.intervals)

    def mlflow_metrics(self) -> dict[str, float]:
        """The test scores of the served model, the point baselines and every interval row."""
        by_model = self.by_model
        return {
            "val_mape_hH": self.val_network,
            "val_naive_mape_hH": self.val_naive,
            **{f"test_{k}": v for k, v in self.metrics.items() if isinstance(v, float)},
            **{
                f"{baseline}_{k}": v
                for baseline in ("naive", "drift", "linear")
                for k, v in by_model[baseline].items()
                if isinstance(v, float)
            },
            **interval_metrics(self.intervals),
        }


def falls_back_to_persistence(network, metrics: dict, naive: dict, naive_tolerance: float) -> bool:
    """True when a finite network is worse than naive persistence on the windows scored in
    `metrics` / `naive` (validation, as fit_and_register calls it) and can be shrunk to it (it has
    a `skill_weight`); a broken network never falls back, so the blocking checks still catch it."""
    score = metrics[PROMOTION_METRIC]
    return (
        hasattr(network, "skill_weight")
        and weights_are_finite(network)
        and bool(np.isfinite(score))
        and score > naive[PROMOTION_METRIC] * naive_tolerance
    )


def evaluate_challenger(
    network, data: SequenceData, strategy: str, config: ModelTrainingConfig
) -> ChallengerEvaluation:
    """Score the trained network, shrink it to persistence if validation says so (in place:
    its skill_weight becomes 0), and score the model that will be served."""
    spread = fit_model_spread(data)
    evaluation = evaluate_all(network, data, name=strategy)
    network_metrics = evaluation.row(0, named=True)
    val_network, val_naive = validation_mapes(network, data)
    fallback = config.persistence_fallback and falls_back_to_persistence(
        network, {PROMOTION_METRIC: val_network}, {PROMOTION_METRIC: val_naive},
        config.naive_tolerance * (1.0 - config.fallback_margin),
    )
    if fallback:
        network.skill_weight.fill_(0.0)
        # Only the network's row changes; the baselines (a Ridge fit among them) stand.
        served_row = evaluate_all(network, data, name=strategy, baselines=False)
        evaluation = pl.concat([served_row, evaluation.filter(pl.col("model") != strategy)])
    intervals = interval_evaluation(network, spread, data, strategy)
    return ChallengerEvaluation(
        spread, evaluation, network_metrics, val_network, val_naive, bool(fallback), intervals,
        strategy,
    )


def interval_metrics(intervals: pl.DataFrame) -> dict[str, float]:
    """MLflow metrics of every row of the interval evaluation: `<model>_<score>`."""
    return {
        f"{row['model'] if row['kind'] == 'vol_baseline' else 'test'}_{key}": float(value)
        for row in intervals.iter_rows(named=True)
        for key, value in row.items()
        if isinstance(value, float)
    }


def champion_mape(champion: ModelBundle, data: SequenceData) -> float | None:
    """The production model's MAPE on the challenger's test windows, or None if it cannot read them."""
    if not champion.compatible_with(data):
        return None
    X = rescale_windows(data.X_test, data.scaler, champion.feature_scaler())
    predicted = reconstruct_prices(data.anchor_close_test, predict_returns(champion.network(), X))
    metrics = forecast_metrics(data.future_close_test, predicted, data.anchor_close_test)
    return metrics[PROMOTION_METRIC]


def champion_incompatibility(
    version: str, champion: ModelBundle, data: SequenceData
) -> str | None:
    """Why production version `version` cannot be scored on `data`'s windows, or None if it can."""
    why = champion.incompatibility(data)
    return None if why is None else f"v{version}: {why}"


__all__ = ["INTERVAL_METRIC", "ChallengerEvaluation", "evaluate_challenger"]
