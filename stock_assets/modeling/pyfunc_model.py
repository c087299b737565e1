"""A registered model as an MLflow pyfunc: `mlflow.pyfunc.load_model(uri).predict(window)`.

Why: an MLflow user (or a serving tool that speaks pyfunc) can forecast from a registered
version without this project's loaders, and gets the daily_forecast asset's numbers. The pyfunc
wraps the same bundle files (weights.pt, model.json) the pipeline loads: this module is the
flavor's loader (`loader_module`, no pickle), and the bundle sits in the model folder's
`bundle/` data folder. `MLmodel` is written by `mlflow.pyfunc.save_model` with a hand-written
signature (no prediction is run at registration, so it costs milliseconds).

The input is one ticker's rows up to the as-of date (its last row): `date`, `close` and the model
features (`datasets.model_features.MODEL_FEATURES`, unscaled, as `model_feature_frame` builds
them). The last `context_length` rows with complete features are the network's window; every
row's close feeds the volatility features of the spread model (EWMA, 20-session and one-year
close-to-close volatility), so pass the ticker's whole price history (feature columns may be
null on rows before the window) to reproduce daily_forecast exactly. The output has one row per
horizon step: the median (`predicted_return`, `predicted_close`), the quantile closes and p_up.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from stock_assets.datasets.model_features import MODEL_FEATURES
from stock_assets.market_calendar import next_sessions
from stock_assets.modeling.artifacts import ModelBundle
from stock_assets.modeling.registry import BUNDLE_FOLDER
from stock_assets.quantiles import P_UP, QUANTILE_COLUMNS

LOADER_MODULE = __name__
OUTPUT_COLUMNS: tuple[str, ...] = (
    "as_of_date", "target_date", "horizon", "last_close", "predicted_return", "predicted_close",
    *QUANTILE_COLUMNS, P_UP,
)  # fmt: skip


class BundleForecaster:
    """The pyfunc model: a bundle's network, scaler and spread model, built once at load."""

    def __init__(self, bundle: ModelBundle):
        self.bundle = bundle
        self.network = bundle.network()
        self.scaler = bundle.feature_scaler()
        self.spread = bundle.spread_model()

    def predict(self, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from stock_assets.features.volatility import volatility_features
        from stock_assets.modeling.probabilistic import distribution
        from stock_assets.modeling.training import predict_returns

        frame = _input_frame(model_input, self.bundle.context_length)
        as_of = frame["date"][-1]
        last_close = float(frame["close"][-1])
        complete = frame.filter(pl.all_horizontal(pl.col(MODEL_FEATURES).is_not_null()))
        rows = complete.tail(self.bundle.context_length).select(MODEL_FEATURES).to_numpy()
        X = self.scaler.transform(rows.astype(np.float64)).astype(np.float32)[None, :, :]
        returns = predict_returns(self.network, X)
        vol = volatility_features(frame["close"].to_numpy(), frame["atr_to_close"].to_numpy())
        closes, p_up = distribution(returns, self.spread, vol[[-1]], np.array([last_close]))
        horizon = returns.shape[1]
        quantiles = np.sort(closes[0].reshape(horizon, -1), axis=1)
        out = {
            "as_of_date": [as_of] * horizon,
            "target_date": next_sessions(as_of, horizon),
            "horizon": list(range(1, horizon + 1)),
            "last_close": [last_close] * horizon,
            "predicted_return": returns[0].tolist(),
            "predicted_close": (last_close * np.exp(returns[0])).tolist(),
            **{column: quantiles[:, i].tolist() for i, column in enumerate(QUANTILE_COLUMNS)},
            P_UP: np.clip(p_up[0], 0, 1).tolist(),
        }
        result = pd.DataFrame(out, columns=list(OUTPUT_COLUMNS))
        for column in ("as_of_date", "target_date"):
            result[column] = pd.to_datetime(result[column])
        return result


def _input_frame(model_input, context_length: int) -> pl.DataFrame:
    """The input as a date-sorted Polars frame, or a ValueError saying what is missing."""
    frame = pl.from_pandas(pd.DataFrame(model_input))
    missing = [c for c in ("date", "close", *MODEL_FEATURES) if c not in frame.columns]
    if missing:
        raise ValueError(f"the window lacks columns {missing}")
    frame = frame.with_columns(pl.col("date").cast(pl.Date)).sort("date")
    complete = frame.select(pl.all_horizontal(pl.col(MODEL_FEATURES).is_not_null())).to_series()
    if int(complete.sum()) < context_length or not bool(complete[-1]):
        raise ValueError(
            f"need {context_length} rows with every feature, ending on the last row "
            f"({frame['date'][-1] if frame.height else 'no rows'}); got {int(complete.sum())}"
        )
    return frame


def _load_pyfunc(data_path: str) -> BundleForecaster:
    """MLflow's loader hook: the bundle files in the model's data folder."""
    folder = Path(data_path)
    return BundleForecaster(
        ModelBundle.from_files({p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()})
    )


def signature():
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema(
        [ColSpec("datetime", "date"), ColSpec("double", "close")]
        + [ColSpec("double", name, required=False) for name in MODEL_FEATURES]
    )
    outputs = Schema(
        [ColSpec("datetime", "as_of_date"), ColSpec("datetime", "target_date"),
         ColSpec("long", "horizon")]
        + [ColSpec("double", name) for name in OUTPUT_COLUMNS[3:]]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(data) -> pd.DataFrame:
    """The last test window of `data` (a SequenceData), unscaled: a valid input's shape and
    scale. Its dates are placeholders (consecutive sessions ending on the last test anchor):
    windows do not keep their rows' dates."""
    window = data.scaler.inverse_transform(np.asarray(data.X_test[-1], dtype=np.float64))
    anchor = int(data.anchor_rows_test[-1])
    closes = data.close[anchor - data.context_length + 1 : anchor + 1]
    last = pd.Timestamp(data.anchor_dates_test[-1])
    dates = pd.bdate_range(end=last, periods=data.context_length)
    frame = pd.DataFrame(window, columns=list(data.feature_names))
    frame.insert(0, "close", np.asarray(closes, dtype=np.float64))
    frame.insert(0, "date", dates)
    return frame


def pyfunc_files(bundle: ModelBundle, data) -> dict[str, bytes]:
    """The files of the pyfunc model folder (MLmodel, environment, input example, bundle/...),
    relative path -> bytes, to log under the run's model artifact path."""
    import mlflow.pyfunc

    files = bundle.to_files()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / Path(BUNDLE_FOLDER).name
        data_dir.mkdir()
        for name, payload in files.items():
            (data_dir / name).write_bytes(payload)
        model_dir = Path(scratch) / "model"
        mlflow.pyfunc.save_model(
            str(model_dir),
            loader_module=LOADER_MODULE,
            data_path=str(data_dir),
            signature=signature(),
            input_example=input_example(data),
            pip_requirements=list(_requirements()),
        )
        return {
            str(path.relative_to(model_dir)): path.read_bytes()
            for path in model_dir.rglob("*")
            if path.is_file()
        }


@cache
def _requirements() -> tuple[str, ...]:
    """Pinned from the running environment: inferring them would import and trace the model."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in ("mlflow", "torch", "numpy", "pandas", "polars", "scikit-learn"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return tuple(pins)
