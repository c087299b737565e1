"""Feature drift between a model's training window and the most recent sessions, with Evidently.

Why Wasserstein and not Evidently's default p-value tests: model features are rolling indicators
(RSI, distance to the 50-day average, 20-day volatility), strongly autocorrelated, so a 20-session
window is never a random sample of the training distribution. Measured on the synthetic market
(2015-2024, 12 stocks): the default KS test flagged 50-90 % of the features of every untouched
ticker on every date, while a normed Wasserstein distance above 1.5 training standard deviations
flagged at most 24 % of them, and 76-86 % of a ticker's features 1-2 weeks after a -25 % crash
with 3x volatility. The distance is a size of the move, not a significance, which is what a
retraining decision needs.
"""

from __future__ import annotations

import os
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

DRIFT_METRIC_PREFIX = "DriftedColumnsCount("
VALUE_DRIFT_PREFIX = "ValueDrift("


@dataclass(frozen=True)
class DriftResult:
    """The share of drifted features and which ones; `report` is the Evidently snapshot."""

    drift_share: float
    drifted_columns: tuple[str, ...]
    n_columns: int
    n_reference: int
    n_current: int
    column_scores: dict[str, float] = field(default_factory=dict)
    report: object | None = field(default=None, repr=False, compare=False)

    def save_html(self, path: Path) -> Path:
        """Write Evidently's HTML report (~4.5 MB) to `path` (temp file, fsync, rename)."""
        if self.report is None:
            raise ValueError("this DriftResult carries no Evidently report")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # one per writer
        try:
            self.report.save_html(str(tmp))
            with open(tmp, "rb") as written:
                os.fsync(written.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path


def _column_of(metric_name: str) -> str | None:
    # "ValueDrift(column=rsi_14,method=wasserstein,threshold=1.5)"
    inside = metric_name[len(VALUE_DRIFT_PREFIX) : -1]
    for part in inside.split(","):
        key, _, value = part.partition("=")
        if key == "column":
            return value
    return None


def measure_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    columns: tuple[str, ...] | list[str],
    column_threshold: float = 1.5,
    method: str = "wasserstein",
    report: bool = True,
) -> DriftResult:
    """Evidently's DataDriftPreset over `columns`: reference = training window, current = recent.

    Columns constant in the reference (e.g. an index's volume ratio, always 0) are left out: a
    distance in units of a zero standard deviation means nothing. With `report=False`, the same
    per-column stattest the preset runs (Evidently's registered `method`), called directly: the
    same scores and verdict in ~1/100 of the time, and no HTML report (a 500-ticker panel judges
    every ticker this way and builds reports only where someone will open one).
    """
    if reference.height < 2 or current.height < 2:
        raise ValueError(
            f"drift needs at least 2 rows on each side (reference {reference.height}, "
            f"current {current.height})"
        )
    usable = [c for c in columns if reference[c].std() not in (None, 0.0)]
    if not usable:
        raise ValueError("every drift column is constant in the reference window")
    if not report:
        return _screen(reference, current, usable, column_threshold, method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # evidently's import warns about numpy/litestar internals
        from evidently import Report
        from evidently.presets import DataDriftPreset

        report = Report(
            [DataDriftPreset(columns=usable, method=method, threshold=column_threshold)]
        )
        snapshot = report.run(
            current_data=current.select(usable).to_pandas(),
            reference_data=reference.select(usable).to_pandas(),
        )
    metrics = snapshot.dict()["metrics"]
    share = None
    scores: dict[str, float] = {}
    for metric in metrics:
        name = metric["metric_name"]
        if name.startswith(DRIFT_METRIC_PREFIX):
            share = float(metric["value"]["share"])
        elif name.startswith(VALUE_DRIFT_PREFIX):
            column = _column_of(name)
            if column is not None and isinstance(metric["value"], (int, float)):
                scores[column] = float(metric["value"])
    if share is None:
        raise RuntimeError("Evidently's report has no DriftedColumnsCount metric")
    drifted = tuple(c for c in usable if scores.get(c, 0.0) > column_threshold)
    return DriftResult(
        drift_share=share,
        drifted_columns=drifted,
        n_columns=len(usable),
        n_reference=reference.height,
        n_current=current.height,
        column_scores=scores,
        report=snapshot,
    )


def prune_reports(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` reports (file names are ISO dates, so names sort by date)."""
    reports = sorted(folder.glob("*.html"))
    removed = reports[: max(len(reports) - keep, 0)]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def _screen(
    reference: pl.DataFrame, current: pl.DataFrame, usable: list[str], threshold: float, method: str
) -> DriftResult:
    """measure_drift without the report: Evidently's stattest per column, its drift rule."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently.legacy.calculations.stattests.registry import get_stattest
        from evidently.legacy.core import ColumnType

    scores: dict[str, float] = {}
    drifted = []
    for column in usable:
        ref, cur = reference[column].to_pandas(), current[column].to_pandas()
        test = get_stattest(ref, cur, ColumnType.Numerical, method)
        result = test(ref, cur, ColumnType.Numerical, threshold)
        scores[column] = float(result.drift_score)
        if result.drifted:
            drifted.append(column)
    return DriftResult(
        drift_share=len(drifted) / len(usable),
        drifted_columns=tuple(c for c in usable if scores[c] > threshold),
        n_columns=len(usable),
        n_reference=reference.height,
        n_current=current.height,
        column_scores=scores,
    )
