"""A model's forecast distribution on its own windows, beside the volatility baselines'.

Why here: the gate, the model card and MLflow all need the same numbers, computed once: the
network's median plus the spread model fitted on the training part (`uncertainty.SpreadModel`),
and the three volatility baselines on exactly the same test windows, GARCH fitted on the training
part only. Scores are fractions of the actual close (`scores.window_scores`).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from stock_assets.datasets.windows import SequenceData
from stock_assets.modeling.scores import window_scores
from stock_assets.modeling.training import predict_returns
from stock_assets.modeling.uncertainty import (
    VOL_BASELINES,
    SpreadModel,
    baseline_p_up,
    baseline_quantiles,
    fit_spread_model,
    to_closes,
)

INTERVAL_METRIC = "winkler_80_hH"  # the gate's interval score: 80 % band, last horizon step
SCORE_NAMES = ("coverage_50", "coverage_80", "coverage_90", "winkler_80", "winkler_90",
               "pinball", "brier")  # fmt: skip


def fit_model_spread(data: SequenceData) -> SpreadModel:
    """The spread model of `data`'s training windows (rows up to the last training target)."""
    return fit_spread_model(
        data.y_train,
        data.vol_features[data.anchor_rows_train],
        fitted_until=data.boundaries.train_last_target.isoformat(),
    )


def distribution(
    median_returns: np.ndarray, spread: SpreadModel, vol_features: np.ndarray, last_close
) -> tuple[np.ndarray, np.ndarray]:
    """(quantile closes (n, H, Q), p_up (n, H)) around the median log returns (n, H)."""
    quantiles = spread.quantiles(median_returns, vol_features)
    return to_closes(last_close, quantiles), spread.p_up(median_returns, vol_features)


def _scores(label: str, kind: str, data: SequenceData, closes, p_up) -> dict[str, object]:
    row: dict[str, object] = {"model": label, "kind": kind, "n_windows": len(data.y_test)}
    for suffix, step in (("h1", 0), ("hH", data.horizon - 1)):
        scores = window_scores(data.future_close_test, closes, p_up, data.anchor_close_test, step)
        row |= {f"{name}_{suffix}": scores[name] for name in SCORE_NAMES}
    return row


def interval_evaluation(network, spread: SpreadModel, data: SequenceData, name: str) -> pl.DataFrame:
    """One row for the network (median + spread) and one per volatility baseline, on the test
    windows: coverage of the 50/80/90 % intervals, Winkler 80/90 %, pinball, Brier of p_up, at
    step 1 (`_h1`) and the last step (`_hH`)."""
    anchors = data.anchor_rows_test
    median = predict_returns(network, data.X_test)
    closes, p_up = distribution(median, spread, data.vol_features[anchors], data.anchor_close_test)
    rows = [_scores(name, "network", data, closes, p_up)]
    baselines = baseline_quantiles(data.close, anchors, data.horizon, fit_end=data.train_end_row)
    for label in VOL_BASELINES:
        quantiles = baselines[label]
        rows.append(
            _scores(label, "vol_baseline", data, to_closes(data.anchor_close_test, quantiles),
                    baseline_p_up(quantiles))
        )
    return pl.DataFrame(rows)


def best_vol_baseline(evaluation: pl.DataFrame) -> dict[str, object]:
    """The volatility baseline with the lowest 80 % interval score at the last step."""
    baselines = evaluation.filter(pl.col("kind") == "vol_baseline").sort(INTERVAL_METRIC)
    return baselines.row(0, named=True)
