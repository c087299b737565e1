"""Price-level metrics for networks and the baselines they must beat, on the same windows.

Why: a forecast is judged in prices (what a user sees), so every metric here first rebuilds
prices from predicted log returns and the window's last close. And a network's number means
little alone: naive persistence (tomorrow = today), drift (the training part's mean return) and
a ridge regression on the same features are computed on exactly the same test windows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl
from sklearn.linear_model import Ridge
from torch import nn

from stock_assets.datasets.windows import SequenceData
from stock_assets.modeling.training import predict_returns

METRIC_COLUMNS: tuple[str, ...] = (
    "mape_h1", "rmse_h1", "mae_h1", "dir_acc_h1",
    "mape_hH", "rmse_hH", "mae_hH", "dir_acc_hH",
)  # fmt: skip
BASELINES: tuple[str, ...] = ("naive", "drift", "linear")


def reconstruct_prices(anchor_close: np.ndarray, log_returns: np.ndarray) -> np.ndarray:
    """Closes (windows, horizon) from log returns relative to each window's last close."""
    anchor = np.asarray(anchor_close, dtype=np.float64).reshape(-1, 1)
    return anchor * np.exp(np.asarray(log_returns, dtype=np.float64))


def _step_metrics(actual: np.ndarray, predicted: np.ndarray, anchor: np.ndarray) -> list[float]:
    error = predicted - actual
    mape = float(np.mean(np.abs(error) / np.abs(actual)) * 100.0)
    rmse = float(np.sqrt(np.mean(error**2)))
    mae = float(np.mean(np.abs(error)))
    # Direction = up or not up against the anchor close; a flat forecast (naive) says "not up".
    direction = float(np.mean((predicted > anchor) == (actual > anchor)))
    return [mape, rmse, mae, direction]


def forecast_metrics(
    actual_close: np.ndarray, predicted_close: np.ndarray, anchor_close: np.ndarray
) -> dict[str, float]:
    """MAPE (percent), RMSE, MAE and directional accuracy (share of windows whose up/not-up
    call against the anchor close was right), at horizon step 1 (`_h1`) and at the last step H
    (`_hH`). Inputs: (windows, horizon) closes and (windows,) anchor closes."""
    actual = np.asarray(actual_close, dtype=np.float64)
    predicted = np.asarray(predicted_close, dtype=np.float64)
    anchor = np.asarray(anchor_close, dtype=np.float64).reshape(-1)
    if actual.shape != predicted.shape or actual.ndim != 2 or actual.shape[0] != anchor.shape[0]:
        raise ValueError(
            f"shapes differ: actual {actual.shape}, predicted {predicted.shape}, "
            f"anchor {anchor.shape}"
        )
    if actual.shape[0] == 0:
        raise ValueError("no windows to evaluate")
    values = _step_metrics(actual[:, 0], predicted[:, 0], anchor)
    values += _step_metrics(actual[:, -1], predicted[:, -1], anchor)
    return dict(zip(METRIC_COLUMNS, values, strict=True))


def naive_forecast(data: SequenceData) -> np.ndarray:
    """Persistence: every future close equals the window's last close."""
    return np.repeat(data.anchor_close_test.reshape(-1, 1), data.horizon, axis=1)


def drift_forecast(data: SequenceData) -> np.ndarray:
    """The training part's mean daily log return, compounded over the horizon."""
    daily = float(np.mean(data.y_train[:, 0], dtype=np.float64))
    steps = np.arange(1, data.horizon + 1, dtype=np.float64)
    return reconstruct_prices(data.anchor_close_test, np.tile(daily * steps, (len(data.y_test), 1)))


def _last_steps(X: np.ndarray, last_steps: int) -> np.ndarray:
    return X[:, -last_steps:, :].reshape(len(X), -1)


def linear_forecast(data: SequenceData, alpha: float = 10.0, last_steps: int = 1) -> np.ndarray:
    """Ridge regression of the horizon's log returns on the last `last_steps` days' scaled
    features, fitted on the training windows only."""
    model = Ridge(alpha=alpha).fit(_last_steps(data.X_train, last_steps), data.y_train)
    return reconstruct_prices(data.anchor_close_test, model.predict(_last_steps(data.X_test, last_steps)))


def network_forecast(model: nn.Module, data: SequenceData) -> np.ndarray:
    """A network's test-window closes, rebuilt from its predicted log returns."""
    return reconstruct_prices(data.anchor_close_test, predict_returns(model, data.X_test))


def evaluate_all(
    model: nn.Module | Mapping[str, nn.Module] | None,
    data: SequenceData,
    name: str = "model",
    baselines: bool = True,
) -> pl.DataFrame:
    """One row per network and per baseline on data's test windows: `model, kind, n_windows,
    horizon` + METRIC_COLUMNS. `model` is one network (row `name`) or a name -> network map."""
    networks = {} if model is None else (dict(model) if isinstance(model, Mapping) else {name: model})
    forecasts: list[tuple[str, str, np.ndarray]] = [
        (label, "network", network_forecast(net, data)) for label, net in networks.items()
    ]
    if baselines:
        forecasts += [
            ("naive", "baseline", naive_forecast(data)),
            ("drift", "baseline", drift_forecast(data)),
            ("linear", "baseline", linear_forecast(data)),
        ]
    rows = [
        {
            "model": label,
            "kind": kind,
            "n_windows": len(data.y_test),
            "horizon": data.horizon,
            **forecast_metrics(data.future_close_test, predicted, data.anchor_close_test),
        }
        for label, kind, predicted in forecasts
    ]
    schema = {"model": pl.String, "kind": pl.String, "n_windows": pl.Int64, "horizon": pl.Int64}
    schema |= {column: pl.Float64 for column in METRIC_COLUMNS}
    return pl.DataFrame(rows, schema=schema)


def validation_mapes(model: nn.Module, data: SequenceData) -> tuple[float, float]:
    """(network MAPE, naive MAPE) at the last step on the VALIDATION windows, in percent: what
    decisions taken before the test window (the persistence fallback) may look at."""
    predicted = reconstruct_prices(data.anchor_close_val, predict_returns(model, data.X_val))
    actual = data.future_close_val
    naive = np.repeat(data.anchor_close_val.reshape(-1, 1), data.horizon, axis=1)
    network = forecast_metrics(actual, predicted, data.anchor_close_val)["mape_hH"]
    return network, forecast_metrics(actual, naive, data.anchor_close_val)["mape_hH"]
