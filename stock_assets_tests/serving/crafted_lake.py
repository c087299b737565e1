"""The probabilistic forecast's columns crafted onto a copy of the pipeline's lake, and their
removal: a lake as the probabilistic pipeline writes it before it does, and one from before it.

The distribution is lognormal around each forecast's own predicted return; the scores are the
same formulas the pipeline uses, per row, with per-partition means standing in for the rolling
window (the API passes them through, so only their shape matters here).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from stock_assets.lake import atomic_write_parquet, partition_path

CRAFTED_STEP_VOL = 0.012  # the crafted forecasts' log-return spread per sqrt(session)


def add_crafted_distribution(lake_dir: Path) -> None:
    """Give every daily_forecast partition a lognormal distribution around its own predicted
    return (close_q05..close_q95, p_up), as the probabilistic pipeline's columns look."""
    from statistics import NormalDist

    from stock_assets.quantiles import QUANTILE_COLUMNS, QUANTILES

    for path in sorted((lake_dir / "daily_forecast").glob("*/*.parquet")):
        frame = pl.read_parquet(path)
        spread = CRAFTED_STEP_VOL * frame["horizon"].cast(pl.Float64).sqrt()
        returns = frame["predicted_return"]
        quantiles = {
            column: frame["last_close"] * (returns + NormalDist().inv_cdf(q) * spread).exp()
            for column, q in zip(QUANTILE_COLUMNS, QUANTILES, strict=True)
        }
        p_up = [NormalDist().cdf(r / s) for r, s in zip(returns, spread, strict=True)]
        frame = frame.with_columns(
            *(values.alias(column) for column, values in quantiles.items()),
            pl.Series("p_up", p_up, dtype=pl.Float64),
        )
        atomic_write_parquet(frame, path)


def add_crafted_scores(lake_dir: Path) -> None:
    """Score every forecast_performance row against its forecast's quantiles (coverage, pinball,
    Winkler, Brier, called, ase) and repeat per-partition means as the rolling columns: the
    shape of the pipeline's scores, not its rolling window."""
    from stock_assets.quantiles import INTERVALS, QUANTILE_COLUMNS, QUANTILES

    for path in sorted((lake_dir / "forecast_performance").glob("*/*.parquet")):
        scored = pl.read_parquet(path)
        if scored.height == 0:
            continue
        ticker = path.parent.name
        made = pl.concat(
            pl.read_parquet(partition_path(lake_dir, "daily_forecast", ticker, day.isoformat()))
            for day in sorted(set(scored["as_of_date"]))
        ).select("as_of_date", "horizon", *QUANTILE_COLUMNS, "p_up")
        rows = scored.drop(*(c for c in made.columns[2:] if c in scored.columns))
        rows = rows.join(made, on=["as_of_date", "horizon"], how="left")
        actual, rose = pl.col("actual_close"), (pl.col("actual_close") > pl.col("naive_close"))
        pinball = [
            pl.max_horizontal(q * (actual - pl.col(c)), (q - 1) * (actual - pl.col(c)))
            for c, q in zip(QUANTILE_COLUMNS, QUANTILES, strict=True)
        ]
        called = (pl.col("predicted_close") - pl.col("naive_close")).abs() > 1e-9
        rows = rows.with_columns(
            *(
                ((actual >= pl.col(lo)) & (actual <= pl.col(hi))).alias(f"covered_{nominal}")
                for nominal, (lo, hi) in INTERVALS.items()
            ),
            (pl.sum_horizontal(pinball) / len(QUANTILES) / actual).alias("pinball"),
            *(
                (
                    (pl.col(hi) - pl.col(lo))
                    + (2 / (1 - nominal / 100)) * (pl.col(lo) - actual).clip(lower_bound=0)
                    + (2 / (1 - nominal / 100)) * (actual - pl.col(hi)).clip(lower_bound=0)
                ).truediv(actual).alias(f"winkler_{nominal}")
                for nominal, (lo, hi) in INTERVALS.items()
                if nominal in (80, 90)
            ),
            ((pl.col("p_up") - rose.cast(pl.Float64)) ** 2).alias("brier"),
            ((0.5 - rose.cast(pl.Float64)) ** 2).alias("brier_climatology"),
            called.alias("called"),
            pl.when(called).then(pl.col("direction_hit")).alias("direction_hit"),
            (pl.col("error").abs() / (pl.col("naive_close") * CRAFTED_STEP_VOL)).alias("ase"),
        )
        means = {
            "rolling_coverage_50": pl.col("covered_50").mean(),
            "rolling_coverage_80": pl.col("covered_80").mean(),
            "rolling_coverage_90": pl.col("covered_90").mean(),
            "rolling_pinball": pl.col("pinball").mean(),
            "rolling_winkler_80": pl.col("winkler_80").mean(),
            "rolling_winkler_90": pl.col("winkler_90").mean(),
            "rolling_brier": pl.col("brier").mean(),
            "rolling_brier_climatology": pl.col("brier_climatology").mean(),
            "rolling_skill": 1 - pl.col("ape").mean() / pl.col("naive_ape").mean(),
            "rolling_mase": pl.col("ase").mean(),
            "rolling_call_rate": pl.col("called").mean(),
            "rolling_hit_rate": pl.col("direction_hit").mean(),
        }
        rows = rows.with_columns(
            **{name: value.cast(pl.Float64) for name, value in means.items()}
        ).drop(*QUANTILE_COLUMNS)
        atomic_write_parquet(rows, path)


def drop_probabilistic_columns(lake_dir: Path, asset: str) -> None:
    """Rewrite every partition of `asset` as a lake from before the probabilistic forecast."""
    from stock_assets.contract import OPTIONAL_COLUMNS

    new = OPTIONAL_COLUMNS[asset]
    folder = lake_dir / asset
    paths = [folder.with_suffix(".parquet")] if asset == "parent_model" else folder.rglob("*")
    for path in paths:
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            frame.drop(*(c for c in new if c in frame.columns)).write_parquet(path)


def has_columns(lake_dir: Path, asset: str, columns: Sequence[str]) -> bool:
    """Whether every non-empty partition of `asset` carries `columns`."""
    frames = (pl.read_parquet(p) for p in (lake_dir / asset).glob("*/*.parquet"))
    return all(set(columns) <= set(f.columns) for f in frames if f.height)
