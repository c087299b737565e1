"""Where the feature_drift check keeps its Evidently HTML reports, one per (date, ticker).

Why in the lake and not under the home's reports/: the API serves them (`GET /drift/{ticker}`)
and reads only the lake. Layout, beside the Parquet tables (docs/ARCHITECTURE.md):

    lake/drift_reports/<TICKER_KEY>/<YYYY-MM-DD>.html

written atomically (temp file, fsync, rename), so a reader gets the old report or the whole new
one. Retention is bounded per ticker: after each write only the newest `keep` dates stay
(STOCK_ASSETS_DRIFT_REPORTS_KEEP, default 30, ~4.5 MB each). Dagster-free: the check, the CLI
and serving/ all import it.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Protocol

from stock_assets.tickers import validate_ticker

DRIFT_REPORTS = "drift_reports"
SUFFIX = ".html"


class HtmlReport(Protocol):
    """What can be saved as a report: `stock_assets.monitoring.drift.DriftResult`."""

    def save_html(self, path: Path) -> Path: ...


def _date_key(as_of: date | str) -> str:
    key = as_of.isoformat() if isinstance(as_of, date) else str(as_of)
    date.fromisoformat(key)  # ValueError unless YYYY-MM-DD
    if len(key) != 10:
        raise ValueError(f"Invalid report date {key!r}: expected YYYY-MM-DD.")
    return key


def drift_reports_dir(lake_dir: str | Path, ticker: str) -> Path:
    """One ticker's folder of reports (the ticker is validated: no path is built from raw input)."""
    return Path(lake_dir) / DRIFT_REPORTS / validate_ticker(ticker)


def drift_report_path(lake_dir: str | Path, ticker: str, as_of: date | str) -> Path:
    """`lake/drift_reports/<TICKER>/<YYYY-MM-DD>.html`: where the report of (as_of, ticker) lives."""
    return drift_reports_dir(lake_dir, ticker) / f"{_date_key(as_of)}{SUFFIX}"


def drift_report_dates(lake_dir: str | Path, ticker: str) -> list[str]:
    """Dates with a report for the ticker, oldest first (temp files and strays ignored)."""
    try:
        names = os.listdir(drift_reports_dir(lake_dir, ticker))
    except FileNotFoundError:
        return []
    dates = []
    for name in names:
        stem = name[: -len(SUFFIX)]
        if name.endswith(SUFFIX) and len(stem) == 10:
            try:
                dates.append(date.fromisoformat(stem).isoformat())
            except ValueError:
                continue
    return sorted(dates)


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
