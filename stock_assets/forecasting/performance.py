"""Scoring forecasts once they mature: actual vs predicted per horizon, and rolling metrics.

Partition D of forecast_performance holds the forecasts whose target date is D, scored against
D's close, plus the rolling metrics over every forecast that matured in the last `window` sessions
up to D. It is a pure function of earlier daily_forecast partitions and prices up to D, so a
re-run of D rewrites D with the same rows, and no other date's history is touched.

Forecasts made inside the forecasting model's own training window (train_start <= as_of_date <=
train_end) are flagged `in_sample` and left out of the rolling metrics: a model scored on days it
learned from looks better than it is. MAPEs are fractions (0.0184 = 1.84 %), as serving and the
reports read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

PERFORMANCE_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "as_of_date": pl.Date(),
    "target_date": pl.Date(),
    "horizon": pl.Int64(),
    "predicted_close": pl.Float64(),
    "actual_close": pl.Float64(),
    "naive_close": pl.Float64(),
    "ape": pl.Float64(),
    "naive_ape": pl.Float64(),
    "error": pl.Float64(),
    "direction_hit": pl.Boolean(),
    "in_sample": pl.Boolean(),
    "model_version": pl.String(),
    "rolling_mape": pl.Float64(),
    "rolling_naive_mape": pl.Float64(),
    "rolling_directional_accuracy": pl.Float64(),
    "rolling_n": pl.Int64(),
}
ROW_COLUMNS = tuple(c for c in PERFORMANCE_SCHEMA if not c.startswith("rolling_"))


@dataclass(frozen=True)
class TrainingWindow:
    start: date
    end: date

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class RollingMetrics:
    """Out-of-sample forecasts that matured in the window: MAPE, naive MAPE, direction, count."""

    mape: float | None
    naive_mape: float | None
    directional_accuracy: float | None
    n: int
    window_start: date | None
    window_end: date
    n_in_sample: int = 0

    def as_metadata(self) -> dict[str, float | int | str]:
        values: dict[str, float | int | str] = {
            "rolling_n": self.n,
            "rolling_in_sample_excluded": self.n_in_sample,
            "rolling_window": f"{self.window_start}..{self.window_end}",
        }
        for name in ("mape", "naive_mape", "directional_accuracy"):
            value = getattr(self, name)
            if value is not None:
                values[f"rolling_{name}"] = value
        return values


def empty_performance() -> pl.DataFrame:
    return pl.DataFrame(schema=PERFORMANCE_SCHEMA)


def score_matured(
    forecasts: pl.DataFrame,
    prices: pl.DataFrame,
    as_of: date,
    training_windows: Mapping[str, TrainingWindow],
) -> pl.DataFrame:
    """Every forecast whose target date is on or before `as_of`, scored against its actual close.

    Prices after `as_of` are never read. A forecast whose target date has no price row (a gap in
    the source) stays unscored. `training_windows` maps model_version -> its training window.
    """
    if forecasts.is_empty():
        return pl.DataFrame(schema={c: PERFORMANCE_SCHEMA[c] for c in ROW_COLUMNS})
    known = prices.filter(pl.col("date") <= as_of).select(
        pl.col("date").alias("target_date"), pl.col("close").alias("actual_close")
    )
    versions = forecasts["model_version"].unique().to_list()
    unknown = [v for v in versions if v not in training_windows]
    if unknown:
        raise KeyError(f"no training window for model versions {unknown}")
    windows = pl.DataFrame(
        {
            "model_version": versions,
            "train_start": [training_windows[v].start for v in versions],
            "train_end": [training_windows[v].end for v in versions],
        },
        schema={"model_version": pl.String, "train_start": pl.Date, "train_end": pl.Date},
    )
    up = pl.col("predicted_close") > pl.col("naive_close")
    actually_up = pl.col("actual_close") > pl.col("naive_close")
    return (
        forecasts.filter(pl.col("target_date") <= as_of)
        .join(known, on="target_date", how="inner")
        .join(windows, on="model_version", how="left")
        .with_columns(pl.col("last_close").alias("naive_close"))
        .with_columns(
            (
                (pl.col("predicted_close") - pl.col("actual_close")).abs() / pl.col("actual_close")
            ).alias("ape"),
            ((pl.col("naive_close") - pl.col("actual_close")).abs() / pl.col("actual_close")).alias(
                "naive_ape"
            ),
            (pl.col("predicted_close") - pl.col("actual_close")).alias("error"),
            (up == actually_up).alias("direction_hit"),
            pl.col("as_of_date")
            .is_between(pl.col("train_start"), pl.col("train_end"))
            .alias("in_sample"),
        )
        .select([pl.col(c).cast(PERFORMANCE_SCHEMA[c]) for c in ROW_COLUMNS])
        .sort("target_date", "as_of_date", "horizon")
    )


def rolling_metrics(
    scored: pl.DataFrame, window_dates: Sequence[date], window_end: date
) -> RollingMetrics:
    """Metrics over the scored forecasts whose target date is one of `window_dates`."""
    in_window = scored.filter(pl.col("target_date").is_in(list(window_dates)))
    out_of_sample = in_window.filter(~pl.col("in_sample"))
    start = min(window_dates) if window_dates else None
    if out_of_sample.is_empty():
        return RollingMetrics(None, None, None, 0, start, window_end, in_window.height)
    return RollingMetrics(
        mape=float(out_of_sample["ape"].mean()),
        naive_mape=float(out_of_sample["naive_ape"].mean()),
        directional_accuracy=float(out_of_sample["direction_hit"].cast(pl.Float64).mean()),
        n=out_of_sample.height,
        window_start=start,
        window_end=window_end,
        n_in_sample=in_window.height - out_of_sample.height,
    )


def performance_partition(
    forecasts: pl.DataFrame,
    prices: pl.DataFrame,
    as_of: date,
    window_dates: Sequence[date],
    training_windows: Mapping[str, TrainingWindow],
) -> tuple[pl.DataFrame, RollingMetrics]:
    """forecast_performance[as_of]: the forecasts that matured on `as_of`, with the rolling
    metrics over `window_dates` (the last sessions up to `as_of`) on every row."""
    scored = score_matured(forecasts, prices, as_of, training_windows)
    rolling = rolling_metrics(scored, window_dates, as_of)
    rows = scored.filter(pl.col("target_date") == as_of).with_columns(
        pl.lit(rolling.mape, dtype=pl.Float64).alias("rolling_mape"),
        pl.lit(rolling.naive_mape, dtype=pl.Float64).alias("rolling_naive_mape"),
        pl.lit(rolling.directional_accuracy, dtype=pl.Float64).alias(
            "rolling_directional_accuracy"
        ),
        pl.lit(rolling.n, dtype=pl.Int64).alias("rolling_n"),
    )
    return rows.select(list(PERFORMANCE_SCHEMA)), rolling
