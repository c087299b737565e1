"""Scoring forecasts once they mature: actual vs predicted per horizon, and rolling metrics.

Partition D of forecast_performance holds the forecasts whose target date is D, scored against
D's close, plus the rolling metrics over every forecast that matured in the last `window` sessions
up to D. It is a pure function of earlier daily_forecast partitions and prices up to D, so a
re-run of D rewrites D with the same rows, and no other date's history is touched.

Forecasts made inside the forecasting model's own training window (train_start <= as_of_date <=
train_end) are flagged `in_sample` and left out of the rolling metrics: a model scored on days it
learned from looks better than it is. MAPEs are fractions (0.0184 = 1.84 %), as serving and the
reports read them.

Beside the point errors, every row scores the forecast's distribution (`modeling.scores`, i.e.
scoringrules): whether the 50/80/90 % intervals covered the actual close, the pinball loss over
the quantiles and the Winkler score of the 80/90 % intervals (fractions of the actual close), and
the Brier score of `p_up` beside the climatological base rate's (the share of up moves over the
horizon in the year before the forecast). A forecast calls a direction only when its move leaves
the no-call band (NO_CALL_BAND of the last close): a flat forecast makes no call, and its
`direction_hit` is null. `ase` is the absolute error scaled by the mean absolute h-session change
over the year before the forecast (its mean is MASE). Rows from before quantile forecasts existed
score null in the distribution columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from stock_assets.modeling import scores
from stock_assets.quantiles import INTERVALS, P_UP, QUANTILE_COLUMNS

NO_CALL_BAND = 0.001  # a predicted move within +-0.1 % of the last close is no directional call
CLIMATOLOGY_SESSIONS = 252

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
    "called": pl.Boolean(),
    "direction_hit": pl.Boolean(),  # null when the forecast made no call
    "covered_50": pl.Boolean(),
    "covered_80": pl.Boolean(),
    "covered_90": pl.Boolean(),
    "pinball": pl.Float64(),
    "winkler_80": pl.Float64(),
    "winkler_90": pl.Float64(),
    P_UP: pl.Float64(),
    "brier": pl.Float64(),
    "brier_climatology": pl.Float64(),
    "ase": pl.Float64(),
    "in_sample": pl.Boolean(),
    "model_version": pl.String(),
    "rolling_mape": pl.Float64(),
    "rolling_naive_mape": pl.Float64(),
    "rolling_directional_accuracy": pl.Float64(),  # = rolling_hit_rate (hits among calls)
    "rolling_n": pl.Int64(),
    "rolling_coverage_50": pl.Float64(),
    "rolling_coverage_80": pl.Float64(),
    "rolling_coverage_90": pl.Float64(),
    "rolling_pinball": pl.Float64(),
    "rolling_winkler_80": pl.Float64(),
    "rolling_winkler_90": pl.Float64(),
    "rolling_brier": pl.Float64(),
    "rolling_brier_climatology": pl.Float64(),
    "rolling_skill": pl.Float64(),
    "rolling_mase": pl.Float64(),
    "rolling_call_rate": pl.Float64(),
    "rolling_hit_rate": pl.Float64(),
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
    coverage_50: float | None = None
    coverage_80: float | None = None
    coverage_90: float | None = None
    pinball: float | None = None
    winkler_80: float | None = None
    winkler_90: float | None = None
    brier: float | None = None
    brier_climatology: float | None = None
    skill: float | None = None
    mase: float | None = None
    call_rate: float | None = None
    hit_rate: float | None = None
    n_scored: int = 0  # forecasts with a distribution (coverage's denominator)

    def as_metadata(self) -> dict[str, float | int | str]:
        values: dict[str, float | int | str] = {
            "rolling_n": self.n,
            "rolling_in_sample_excluded": self.n_in_sample,
            "rolling_window": f"{self.window_start}..{self.window_end}",
        }
        for name in ROLLING_NAMES:
            value = getattr(self, name)
            if value is not None:
                values[f"rolling_{name}"] = value
        return values

    def columns(self) -> list[pl.Expr]:
        """The rolling_* columns, repeated on every row of the partition."""
        return [
            pl.lit(getattr(self, name), dtype=pl.Float64).alias(f"rolling_{name}")
            for name in ROLLING_NAMES
        ] + [pl.lit(self.n, dtype=pl.Int64).alias("rolling_n")]


ROLLING_NAMES = (
    "mape", "naive_mape", "directional_accuracy", "coverage_50", "coverage_80", "coverage_90",
    "pinball", "winkler_80", "winkler_90", "brier", "brier_climatology", "skill", "mase",
    "call_rate", "hit_rate",
)  # fmt: skip


def empty_performance() -> pl.DataFrame:
    return pl.DataFrame(schema=PERFORMANCE_SCHEMA)


def climatology(prices: pl.DataFrame, horizons: Sequence[int]) -> pl.DataFrame:
    """Per (date, horizon): the share of up moves over `horizon` sessions and the mean absolute
    `horizon`-session change, over the CLIMATOLOGY_SESSIONS changes ending on or before the date
    (so a forecast made on that date is compared with what was known then)."""
    ordered = prices.select("date", "close").sort("date")
    frames = []
    for h in sorted(set(horizons)):
        change = pl.col("close") - pl.col("close").shift(h)
        frames.append(
            ordered.with_columns(
                (change > 0).cast(pl.Float64).alias("_up"), change.abs().alias("_abs")
            ).select(
                pl.col("date").alias("as_of_date"),
                pl.lit(h, dtype=pl.Int64).alias("horizon"),
                pl.col("_up").rolling_mean(CLIMATOLOGY_SESSIONS, min_samples=20).alias("base_rate"),
                pl.col("_abs").rolling_mean(CLIMATOLOGY_SESSIONS, min_samples=20).alias("scale"),
            )
        )
    return pl.concat(frames) if frames else pl.DataFrame(
        schema={"as_of_date": pl.Date, "horizon": pl.Int64, "base_rate": pl.Float64,
                "scale": pl.Float64}
    )


def _distribution_scores(frame: pl.DataFrame) -> pl.DataFrame:
    """Coverage, pinball, Winkler and Brier columns of scored rows (null without quantiles)."""
    if frame.is_empty():
        return frame
    missing = [c for c in (*QUANTILE_COLUMNS, P_UP) if c not in frame.columns]
    frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in missing)
    actual = frame["actual_close"].to_numpy().astype(np.float64)
    quantiles = frame.select(QUANTILE_COLUMNS).to_numpy().astype(np.float64)  # nulls -> nan
    has = np.isfinite(quantiles).all(axis=1)
    index = {c: i for i, c in enumerate(QUANTILE_COLUMNS)}

    def column(name: str, values, valid: np.ndarray = has, dtype=pl.Float64) -> pl.Series:
        values = np.where(valid, np.asarray(values, dtype=np.float64), np.nan)
        return pl.Series(name, values, dtype=pl.Float64, nan_to_null=True).cast(dtype)

    new = []
    for nominal, (low, high) in INTERVALS.items():
        lower, upper = quantiles[:, index[low]], quantiles[:, index[high]]
        new.append(column(f"covered_{nominal}", scores.covered(actual, lower, upper),
                          dtype=pl.Boolean))
        if nominal in (80, 90):
            new.append(column(f"winkler_{nominal}",
                              scores.interval_score(actual, lower, upper, nominal)))
    new.append(column("pinball", scores.pinball(actual, np.nan_to_num(quantiles, nan=1.0))))
    up = (actual > frame["naive_close"].to_numpy()).astype(np.float64)
    for name, probability in (("brier", frame[P_UP]), ("brier_climatology", frame["base_rate"])):
        p = probability.to_numpy().astype(np.float64)
        new.append(column(name, scores.brier(np.nan_to_num(p, nan=0.5), up), np.isfinite(p)))
    return frame.with_columns(new)


def score_matured(
    forecasts: pl.DataFrame,
    prices: pl.DataFrame,
    as_of: date,
    training_windows: Mapping[tuple[str, str], TrainingWindow],
    no_call_band: float = NO_CALL_BAND,
) -> pl.DataFrame:
    """Every forecast whose target date is on or before `as_of`, scored against its actual close.

    Prices after `as_of` are never read. A forecast whose target date has no price row (a gap in
    the source) stays unscored. `training_windows` maps model_version -> its training window.
    """
    if forecasts.is_empty():
        return pl.DataFrame(schema={c: PERFORMANCE_SCHEMA[c] for c in ROW_COLUMNS})
    prices = prices.filter(pl.col("date") <= as_of)
    known = prices.select(
        pl.col("date").alias("target_date"), pl.col("close").alias("actual_close")
    )
    versions = [tuple(v) for v in forecasts.select("model_name", "model_version").unique().rows()]
    unknown = [v for v in versions if v not in training_windows]
    if unknown:
        raise KeyError(f"no training window for model versions {unknown}")
    windows = pl.DataFrame(
        {
            "model_name": [name for name, _ in versions],
            "model_version": [version for _, version in versions],
            "train_start": [training_windows[v].start for v in versions],
            "train_end": [training_windows[v].end for v in versions],
        },
        schema={"model_name": pl.String, "model_version": pl.String, "train_start": pl.Date,
                "train_end": pl.Date},
    )
    called = (pl.col("predicted_close") / pl.col("naive_close") - 1.0).abs() > no_call_band
    up = pl.col("predicted_close") > pl.col("naive_close")
    actually_up = pl.col("actual_close") > pl.col("naive_close")
    scored = (
        forecasts.filter(pl.col("target_date") <= as_of)
        .join(known, on="target_date", how="inner")
        .join(windows, on=["model_name", "model_version"], how="left")
        .join(climatology(prices, forecasts["horizon"].unique().to_list()),
              on=["as_of_date", "horizon"], how="left")
        .with_columns(pl.col("last_close").alias("naive_close"))
        .with_columns(
            (
                (pl.col("predicted_close") - pl.col("actual_close")).abs() / pl.col("actual_close")
            ).alias("ape"),
            ((pl.col("naive_close") - pl.col("actual_close")).abs() / pl.col("actual_close")).alias(
                "naive_ape"
            ),
            (pl.col("predicted_close") - pl.col("actual_close")).alias("error"),
            called.alias("called"),
            pl.when(called).then(up == actually_up).otherwise(None).alias("direction_hit"),
            ((pl.col("predicted_close") - pl.col("actual_close")).abs() / pl.col("scale"))
            .alias("ase"),
            pl.col("as_of_date")
            .is_between(pl.col("train_start"), pl.col("train_end"))
            .alias("in_sample"),
        )
    )
    return (
        _distribution_scores(scored)
        .select([pl.col(c).cast(PERFORMANCE_SCHEMA[c]) for c in ROW_COLUMNS])
        .sort("target_date", "as_of_date", "horizon")
    )


def _mean(frame: pl.DataFrame, column: str) -> float | None:
    values = frame[column].drop_nulls().cast(pl.Float64)
    return float(values.mean()) if values.len() else None


def rolling_metrics(
    scored: pl.DataFrame, window_dates: Sequence[date], window_end: date
) -> RollingMetrics:
    """Metrics over the scored forecasts whose target date is one of `window_dates`."""
    in_window = scored.filter(pl.col("target_date").is_in(list(window_dates)))
    out_of_sample = in_window.filter(~pl.col("in_sample"))
    start = min(window_dates) if window_dates else None
    if out_of_sample.is_empty():
        return RollingMetrics(None, None, None, 0, start, window_end, in_window.height)
    mape, naive = _mean(out_of_sample, "ape"), _mean(out_of_sample, "naive_ape")
    hit_rate = _mean(out_of_sample, "direction_hit")
    return RollingMetrics(
        mape=mape,
        naive_mape=naive,
        directional_accuracy=hit_rate,
        n=out_of_sample.height,
        window_start=start,
        window_end=window_end,
        n_in_sample=in_window.height - out_of_sample.height,
        **{name: _mean(out_of_sample, column) for name, column in (
            ("coverage_50", "covered_50"), ("coverage_80", "covered_80"),
            ("coverage_90", "covered_90"), ("pinball", "pinball"), ("winkler_80", "winkler_80"),
            ("winkler_90", "winkler_90"), ("brier", "brier"),
            ("brier_climatology", "brier_climatology"), ("mase", "ase"), ("call_rate", "called"),
        )},
        skill=1.0 - mape / naive if mape is not None and naive else None,
        hit_rate=hit_rate,
        n_scored=out_of_sample["covered_80"].drop_nulls().len(),
    )


def performance_partition(
    forecasts: pl.DataFrame,
    prices: pl.DataFrame,
    as_of: date,
    window_dates: Sequence[date],
    training_windows: Mapping[tuple[str, str], TrainingWindow],
) -> tuple[pl.DataFrame, RollingMetrics]:
    """forecast_performance[as_of]: the forecasts that matured on `as_of`, with the rolling
    metrics over `window_dates` (the last sessions up to `as_of`) on every row."""
    scored = score_matured(forecasts, prices, as_of, training_windows)
    rolling = rolling_metrics(scored, window_dates, as_of)
    rows = scored.filter(pl.col("target_date") == as_of).with_columns(rolling.columns())
    return rows.select(list(PERFORMANCE_SCHEMA)), rolling
