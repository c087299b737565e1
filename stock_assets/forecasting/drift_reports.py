"""Where the feature_drift check keeps its Evidently HTML reports, one per (date, ticker).

Why in the lake and not under the home's reports/: the API serves them (`GET /drift/{ticker}`)
and reads only the lake. Layout (defined by stock_assets.contract.paths), beside the tables:

    lake/drift_reports/<TICKER_KEY>/<YYYY-MM-DD>.html

written atomically (temp file, fsync, rename), so a reader gets the old report or the whole new
one. Retention is bounded per ticker: after each write only the newest `keep` dates stay
(STOCK_ASSETS_DRIFT_REPORTS_KEEP, default 30, ~4.5 MB each). Dagster-free: the check and the CLI
import it; serving/ reads the same paths from the contract.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Protocol

# The layout is the lake contract's (serving/ reads it); re-exported here for the check and CLI.
from stock_assets.contract.names import DRIFT_REPORTS  # noqa: F401
from stock_assets.contract.paths import HTML as SUFFIX  # noqa: F401
from stock_assets.contract.paths import (  # noqa: F401
    drift_report_dates,
    drift_report_path,
    drift_reports_dir,
)


class HtmlReport(Protocol):
    """What can be saved as a report: `stock_assets.forecasting.drift.DriftResult`."""

    def save_html(self, path: Path) -> Path: ...


def prune_drift_reports(lake_dir: str | Path, ticker: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` reports of the ticker; returns what was deleted."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    dates = drift_report_dates(lake_dir, ticker)
    removed = [drift_report_path(lake_dir, ticker, d) for d in dates[: max(len(dates) - keep, 0)]]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def save_drift_report(
    report: HtmlReport, lake_dir: str | Path, ticker: str, as_of: date | str, keep: int
) -> Path:
    """Write the (as_of, ticker) report atomically, then keep only the ticker's newest `keep`."""
    path = report.save_html(drift_report_path(lake_dir, ticker, as_of))
    prune_drift_reports(lake_dir, ticker, keep)
    return path
