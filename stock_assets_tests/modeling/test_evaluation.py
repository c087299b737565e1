"""Metrics on a hand-computed example, and baselines on the same test windows."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl
import pytest

from stock_assets.datasets.windows import SequenceData
from stock_assets.modeling.evaluation import (
    METRIC_COLUMNS,
    drift_forecast,
    evaluate_all,
    forecast_metrics,
    linear_forecast,
    naive_forecast,
    reconstruct_prices,
)
from stock_assets.modeling.networks import build_network


def test_reconstruct_prices_compounds_log_returns_from_the_anchor() -> None:
    prices = reconstruct_prices(np.array([100.0, 20.0]), np.log([[1.1, 1.21], [0.5, 1.0]]))
    np.testing.assert_allclose(prices, [[110.0, 121.0], [10.0, 20.0]], rtol=1e-12)


def test_metrics_on_a_hand_computed_example() -> None:
    anchor = np.array([100.0, 50.0])
    actual = np.array([[110.0, 121.0], [45.0, 40.0]])
    predicted = np.array([[105.0, 120.0], [50.0, 55.0]])
    metrics = forecast_metrics(actual, predicted, anchor)
    assert list(metrics) == list(METRIC_COLUMNS)
    # step 1: errors -5 and +5 on 110 and 45; both directions right (50 vs 50 = "not up")
    assert metrics["mape_h1"] == pytest.approx((5 / 110 + 5 / 45) / 2 * 100)  # 7.828 %
    assert metrics["rmse_h1"] == pytest.approx(5.0)
    assert metrics["mae_h1"] == pytest.approx(5.0)
    assert metrics["dir_acc_h1"] == 1.0
    # step H=2: errors -1 and +15 on 121 and 40; the second calls "up" on a fall
    assert metrics["mape_hH"] == pytest.approx((1 / 121 + 15 / 40) / 2 * 100)  # 19.163 %
    assert metrics["rmse_hH"] == pytest.approx(math.sqrt(113))
    assert metrics["mae_hH"] == pytest.approx(8.0)
    assert metrics["dir_acc_hH"] == 0.5


def test_metrics_reject_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        forecast_metrics(np.ones((3, 2)), np.ones((3, 3)), np.ones(3))


def test_naive_and_drift_baselines(child_data: SequenceData) -> None:
    naive = naive_forecast(child_data)
    assert naive.shape == child_data.future_close_test.shape
    assert np.all(naive == child_data.anchor_close_test[:, None])
    daily = child_data.y_train[:, 0].astype(np.float64).mean()
    expected = child_data.anchor_close_test[:, None] * np.exp(daily * np.arange(1, 4))
    np.testing.assert_allclose(drift_forecast(child_data), expected, rtol=1e-12)


def test_baselines_use_only_the_training_part(child_data: SequenceData) -> None:
    scrambled = dataclasses.replace(
        child_data,
        y_val=child_data.y_val + 1.0,
        y_test=child_data.y_test + 1.0,
        X_val=child_data.X_val * 0,
    )
    np.testing.assert_array_equal(linear_forecast(scrambled), linear_forecast(child_data))
    np.testing.assert_array_equal(drift_forecast(scrambled), drift_forecast(child_data))
    other_train = dataclasses.replace(child_data, y_train=child_data.y_train[::-1] * 2)
    assert not np.array_equal(linear_forecast(other_train), linear_forecast(child_data))


def test_evaluate_all_puts_networks_next_to_baselines(child_data: SequenceData) -> None:
    network = build_network("lstm", n_features=child_data.n_features, horizon=3, hidden_size=8)
    table = evaluate_all({"a": network, "b": network}, child_data)
    assert table["model"].to_list() == ["a", "b", "naive", "drift", "linear"]
    assert table["kind"].to_list() == ["network"] * 2 + ["baseline"] * 3
    assert table.columns == ["model", "kind", "n_windows", "horizon", *METRIC_COLUMNS]
    assert table["n_windows"].to_list() == [len(child_data.y_test)] * 5
    naive = table.row(2, named=True)
    future, anchor = child_data.future_close_test, child_data.anchor_close_test
    expected_mape = np.mean(np.abs(future[:, -1] - anchor) / future[:, -1]) * 100
    assert naive["mape_hH"] == pytest.approx(expected_mape)
    assert naive["dir_acc_h1"] == pytest.approx(np.mean(future[:, 0] <= anchor))
    # an untrained network (zero output layer, unit buffers) predicts a flat price: naive's numbers
    first = table.row(0, named=True)
    assert first["mape_hH"] == pytest.approx(naive["mape_hH"])
    only_baselines = evaluate_all(None, child_data)
    assert only_baselines["model"].to_list() == ["naive", "drift", "linear"]
    assert only_baselines.filter(pl.col("model") == "naive").row(0) == table.row(2)
