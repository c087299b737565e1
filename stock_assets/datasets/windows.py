"""Leakage-free sliding windows from an indicator frame.

Why: a forecaster is only as honest as its data. Inputs and targets here are scale-free (ratios
and log returns), so what the parent learns on ^GSPC transfers to a stock priced 100x
differently; the split is chronological with an embargo of at least the horizon between parts;
and every statistic fitted on the data (feature scaler, target scale) sees the training part only.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.preprocessing import StandardScaler

from stock_assets.datasets.model_features import (  # noqa: F401  (re-exported)
    MODEL_FEATURES,
    REQUIRED_COLUMNS,
    model_feature_frame,
)
from stock_assets.features.volatility import volatility_features


@dataclass
class SplitConfig:
    """How windows are cut and split. `gap` (default: the horizon) is the number of trading
    days strictly between the last target of one part and the first target of the next."""

    context_length: int = 60
    horizon: int = 5
    # Validation and test are fixed spans of the most recent windows, not fractions of the
    # history: with 55 + 55 windows and two embargoes of horizon + gap - 1 = 9 anchors, a model's
    # training targets end 2 x 9 + 55 + 55 = 128 sessions before the latest price, however long
    # the history (a 70/15/15 split of 20 years ended training 6 years back).
    val_sessions: int = 55
    test_sessions: int = 55
    gap: int | None = None
    min_train_windows: int = 20

    @property
    def effective_gap(self) -> int:
        return self.horizon if self.gap is None else self.gap

    def validate(self) -> None:
        if self.context_length < 1 or self.horizon < 1:
            raise ValueError("context_length and horizon must be >= 1")
        if self.effective_gap < self.horizon:
            raise ValueError(f"gap {self.effective_gap} < horizon {self.horizon} would leak")
        if self.val_sessions < 1 or self.test_sessions < 1:
            raise ValueError("val_sessions and test_sessions must be >= 1")

    @property
    def sessions_after_training(self) -> int:
        """Sessions between the last training target and the latest price."""
        skip = self.horizon + self.effective_gap - 1
        return 2 * skip + self.val_sessions + self.test_sessions


@dataclass(frozen=True)
class SplitBoundaries:
    """The dates that delimit each part; the scaler saw rows up to `train_last_target` only."""

    train_first_anchor: date
    train_last_target: date
    val_first_anchor: date
    val_last_target: date
    test_first_anchor: date
    test_last_target: date


_ARRAY_FIELDS = (
    "X_train", "y_train", "X_val", "y_val", "X_test", "y_test",
    "anchor_dates_train", "anchor_dates_val", "anchor_dates_test",
    "anchor_close_train", "anchor_close_val", "anchor_close_test",
    "future_close_test", "target_mean", "target_scale",
    "close", "vol_features", "anchor_rows_train", "anchor_rows_val", "anchor_rows_test",
)  # fmt: skip


@dataclass
class SequenceData:
    """Windows of one ticker, split chronologically, with the train-only scalers that made them.

    X_*: float32 (windows, context_length, features), scaled. y_*: float32 (windows, horizon),
    log(close[t+k] / close[t]) for k = 1..horizon, t the window's anchor (its last day).
    target_mean, target_scale: per-step mean and std of y_train (the target's train-only scaler).
    close, vol_features: every row's close and point-in-time volatility features (uncertainty.
    volatility_features); anchor_rows_*: each window's anchor as a row index into them.
    """

    ticker: str
    feature_names: tuple[str, ...]
    context_length: int
    horizon: int
    gap: int
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    anchor_dates_train: np.ndarray
    anchor_dates_val: np.ndarray
    anchor_dates_test: np.ndarray
    anchor_close_train: np.ndarray
    anchor_close_val: np.ndarray
    anchor_close_test: np.ndarray
    future_close_test: np.ndarray
    target_mean: np.ndarray
    target_scale: np.ndarray
    close: np.ndarray
    vol_features: np.ndarray
    anchor_rows_train: np.ndarray
    anchor_rows_val: np.ndarray
    anchor_rows_test: np.ndarray
    scaler: StandardScaler
    boundaries: SplitBoundaries

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def train_end_row(self) -> int:
        """The row of the last training target: fits of the training part read rows up to it."""
        return int(self.anchor_rows_train[-1]) + self.horizon

    @property
    def future_close_val(self) -> np.ndarray:
        return self.close[self.anchor_rows_val[:, None] + np.arange(1, self.horizon + 1)]

    def summary(self) -> dict[str, object]:
        """Sizes and boundaries, for asset metadata."""
        return {
            "ticker": self.ticker,
            "n_train": len(self.y_train),
            "n_val": len(self.y_val),
            "n_test": len(self.y_test),
            "context_length": self.context_length,
            "horizon": self.horizon,
            "gap": self.gap,
            "n_features": self.n_features,
            **{key: value.isoformat() for key, value in vars(self.boundaries).items()},
        }

    def to_npz_bytes(self) -> bytes:
        """One .npz (arrays + a JSON string of everything else); loadable without pickle."""
        meta = {
            "ticker": self.ticker,
            "feature_names": list(self.feature_names),
            "context_length": self.context_length,
            "horizon": self.horizon,
            "gap": self.gap,
            "scaler": scaler_to_dict(self.scaler),
            "boundaries": {key: value.isoformat() for key, value in vars(self.boundaries).items()},
        }
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            meta=np.array(json.dumps(meta)),
            **{name: getattr(self, name) for name in _ARRAY_FIELDS},
        )
        return buffer.getvalue()

    @classmethod
    def from_npz_bytes(cls, payload: bytes) -> SequenceData:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            arrays = {name: archive[name] for name in _ARRAY_FIELDS}
        boundaries = SplitBoundaries(
            **{key: date.fromisoformat(value) for key, value in meta["boundaries"].items()}
        )
        return cls(
            ticker=meta["ticker"],
            feature_names=tuple(meta["feature_names"]),
            context_length=int(meta["context_length"]),
            horizon=int(meta["horizon"]),
            gap=int(meta["gap"]),
            scaler=scaler_from_dict(meta["scaler"]),
            boundaries=boundaries,
            **arrays,
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.to_npz_bytes())
        return path

    @classmethod
    def load(cls, path: str | Path) -> SequenceData:
        return cls.from_npz_bytes(Path(path).read_bytes())


def scaler_to_dict(scaler: StandardScaler) -> dict[str, object]:
    """A fitted StandardScaler as plain JSON-able numbers (stored beside models, no pickle)."""
    return {
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "var": scaler.var_.tolist(),
        "n_samples_seen": int(np.asarray(scaler.n_samples_seen_).max()),
    }


def scaler_from_dict(values: dict[str, object]) -> StandardScaler:
    """Rebuild a fitted StandardScaler from `scaler_to_dict` output."""
    scaler = StandardScaler()
    scaler.mean_ = np.asarray(values["mean"], dtype=np.float64)
    scaler.scale_ = np.asarray(values["scale"], dtype=np.float64)
    scaler.var_ = np.asarray(values["var"], dtype=np.float64)
    scaler.n_samples_seen_ = int(values["n_samples_seen"])
    scaler.n_features_in_ = len(scaler.mean_)
    return scaler


def _windows(scaled: np.ndarray, anchors: np.ndarray, context_length: int) -> np.ndarray:
    offsets = np.arange(-context_length + 1, 1)
    return scaled[anchors[:, None] + offsets].astype(np.float32)


def _split_sizes(n_anchors: int, config: SplitConfig) -> tuple[int, int, int]:
    """(train, val, test) window counts; 2 x (horizon + gap - 1) anchors go to the gaps."""
    skip = config.horizon + config.effective_gap - 1
    return n_anchors - config.test_sessions - config.val_sessions - 2 * skip, config.val_sessions, config.test_sessions


def build_sequences(
    indicators: pl.DataFrame, config: SplitConfig | None = None, ticker: str | None = None
) -> SequenceData:
    """Scale-free windows of one ticker, split train / val / test in time order.

    Anchors (a window's last day) are split chronologically; between parts, `gap` trading days
    separate the last target of one part from the first target of the next, so no target of
    one part is inside (or right next to) another's. The feature scaler is fitted on rows dated
    up to the last training target only.
    """
    config = config or SplitConfig()
    config.validate()
    if ticker is None:
        has_ticker = "ticker" in indicators.columns and indicators.height > 0
        ticker = str(indicators["ticker"][0]) if has_ticker else ""
    frame = model_feature_frame(indicators)
    context, horizon, gap = config.context_length, config.horizon, config.effective_gap
    n_rows = frame.height
    n_anchors = n_rows - context - horizon + 1
    skip = horizon + gap - 1  # anchors dropped between two parts
    n_train, n_val, n_test = _split_sizes(n_anchors, config)
    if n_train < config.min_train_windows:
        needed = next(
            rows
            for rows in range(n_rows + 1, n_rows + 100_000)
            if _split_sizes(rows - context - horizon + 1, config)[0] >= config.min_train_windows
        )
        raise ValueError(
            f"{ticker or 'frame'}: {n_rows} rows with complete features give {max(n_train, 0)} "
            f"training windows (need {config.min_train_windows}); with context {context}, "
            f"horizon {horizon}, gap {gap} and {config.val_sessions} validation / "
            f"{config.test_sessions} test windows that takes at least {needed} rows after the "
            "indicator warm-up"
        )

    anchors = np.arange(context - 1, context - 1 + n_anchors)
    train_anchors = anchors[:n_train]
    val_anchors = anchors[n_train + skip : n_train + skip + n_val]
    test_anchors = anchors[n_anchors - n_test :]

    features = frame.select(MODEL_FEATURES).to_numpy().astype(np.float64)
    close = frame["close"].to_numpy().astype(np.float64)
    dates = frame["date"].to_numpy().astype("datetime64[D]")
    scaler_rows = int(train_anchors[-1]) + horizon + 1  # rows up to the last training target
    scaler = StandardScaler().fit(features[:scaler_rows])
    scaled = scaler.transform(features)

    log_close = np.log(close)
    steps = np.arange(1, horizon + 1)

    def targets(part: np.ndarray) -> np.ndarray:
        return (log_close[part[:, None] + steps] - log_close[part][:, None]).astype(np.float32)

    y_train = targets(train_anchors)
    target_mean = y_train.astype(np.float64).mean(axis=0).astype(np.float32)
    target_scale = np.maximum(y_train.astype(np.float64).std(axis=0), 1e-8).astype(np.float32)

    def as_date(row: int) -> date:
        return dates[row].astype(object)

    boundaries = SplitBoundaries(
        train_first_anchor=as_date(train_anchors[0]),
        train_last_target=as_date(train_anchors[-1] + horizon),
        val_first_anchor=as_date(val_anchors[0]),
        val_last_target=as_date(val_anchors[-1] + horizon),
        test_first_anchor=as_date(test_anchors[0]),
        test_last_target=as_date(test_anchors[-1] + horizon),
    )
    return SequenceData(
        ticker=ticker,
        feature_names=MODEL_FEATURES,
        context_length=context,
        horizon=horizon,
        gap=gap,
        X_train=_windows(scaled, train_anchors, context),
        y_train=y_train,
        X_val=_windows(scaled, val_anchors, context),
        y_val=targets(val_anchors),
        X_test=_windows(scaled, test_anchors, context),
        y_test=targets(test_anchors),
        anchor_dates_train=dates[train_anchors],
        anchor_dates_val=dates[val_anchors],
        anchor_dates_test=dates[test_anchors],
        anchor_close_train=close[train_anchors],
        anchor_close_val=close[val_anchors],
        anchor_close_test=close[test_anchors],
        future_close_test=close[test_anchors[:, None] + steps],
        target_mean=target_mean,
        target_scale=target_scale,
        close=close,
        vol_features=volatility_features(close, frame["atr_to_close"].to_numpy()),
        anchor_rows_train=train_anchors,
        anchor_rows_val=val_anchors,
        anchor_rows_test=test_anchors,
        scaler=scaler,
        boundaries=boundaries,
    )


def latest_window(
    indicators: pl.DataFrame, scaler: StandardScaler, context_length: int, as_of: date
) -> np.ndarray:
    """The scaled window ending on the last trading day on or before `as_of`, shape
    (1, context_length, features), for a forecast made that evening; later rows are never read."""
    frame = model_feature_frame(indicators.filter(pl.col("date") <= as_of))
    if frame.height < context_length:
        raise ValueError(
            f"{frame.height} rows with complete features up to {as_of}; need {context_length}"
        )
    if scaler.n_features_in_ != len(MODEL_FEATURES):
        raise ValueError(
            f"scaler expects {scaler.n_features_in_} features, model uses {len(MODEL_FEATURES)}"
        )
    rows = frame.tail(context_length).select(MODEL_FEATURES).to_numpy().astype(np.float64)
    return scaler.transform(rows).astype(np.float32)[None, :, :]


__all__ = [
    "MODEL_FEATURES",
    "SequenceData",
    "SplitBoundaries",
    "SplitConfig",
    "build_sequences",
    "latest_window",
    "model_feature_frame",
    "scaler_from_dict",
    "scaler_to_dict",
]
