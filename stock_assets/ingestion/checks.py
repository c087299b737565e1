"""Data-quality asset checks on price tables, wired from the pure rules in quality.py.

They run inside the price assets, before the partition is written (see assets.py), so that a
failing blocking rule stops that ticker's run and keeps the previous good data. Freshness and gaps
warn instead of block: a stale CSV folder or one missing vendor day should not stop the pipeline.
So does a price jump adj_close does not share (a human should look, it may be real); a split-like
one blocks, since an unadjusted split breaks every return computed across it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import dagster as dg
import polars as pl

from stock_assets.ingestion import quality


@dataclass(frozen=True)
class QualityRule:
    name: str
    description: str
    blocking: bool
    # (frame, jump_multiple) -> result; jump_multiple is the configurable volatility multiple
    evaluate: Callable[[pl.DataFrame, float], quality.QualityResult]


def _frame_only(rule: Callable[[pl.DataFrame], quality.QualityResult]):
    """A rule with no threshold, in QualityRule's (frame, jump_multiple) shape."""
    return lambda frame, _jump_multiple: rule(frame)


def _freshness(frame: pl.DataFrame) -> quality.QualityResult:
    return quality.check_freshness(frame, as_of=date.today())


QUALITY_RULES: tuple[QualityRule, ...] = (
    QualityRule("ohlc_consistent", "high >= max(open, close), low <= min(open, close), prices > 0",
                True, _frame_only(quality.check_ohlc_consistency)),
    QualityRule("no_missing_values", "no null, NaN or infinite values", True,
                _frame_only(quality.check_finite)),
    QualityRule("unique_dates", "one row per trading date", True,
                _frame_only(quality.check_unique_dates)),
    QualityRule("no_calendar_gaps", "no NYSE session missing between first and last date",
                False, _frame_only(quality.check_gaps)),
    QualityRule("fresh", "last date within 3 NYSE sessions of today", False,
                _frame_only(_freshness)),
    QualityRule("no_unexplained_jumps",
                "no close move beyond N x recent volatility that adj_close does not share",
                False, quality.check_price_jumps),
    QualityRule("no_split_jumps", "no unexplained close ratio of about n or 1/n (a split)", True,
                quality.check_split_jumps),
)


def quality_check_specs(
    asset: str, partitions_def: dg.PartitionsDefinition | None = None
) -> list[dg.AssetCheckSpec]:
    """One spec per rule. A partitioned asset's checks are partitioned too, so each ticker's
    evaluation is recorded under its own partition (one ticker's pass cannot hide another's fail)."""
    return [
        dg.AssetCheckSpec(
            rule.name,
            asset=asset,
            description=rule.description,
            blocking=rule.blocking,
            partitions_def=partitions_def,
        )
        for rule in QUALITY_RULES
    ]


def quality_check_results(
    frame: pl.DataFrame,
    asset_key: dg.AssetKey,
    jump_multiple: float = quality.DEFAULT_JUMP_MULTIPLE,
) -> list[dg.AssetCheckResult]:
    results = []
    for rule in QUALITY_RULES:
        outcome = rule.evaluate(frame, jump_multiple)
        results.append(
            dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=rule.name,
                passed=outcome.passed,
                severity=dg.AssetCheckSeverity.ERROR if rule.blocking else dg.AssetCheckSeverity.WARN,
                description=outcome.description,
                metadata=dict(outcome.metadata),
            )
        )
    return results
