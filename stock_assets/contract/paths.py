"""Where every lake table and report lives: the layout the IO manager writes and serving/ reads.

    unpartitioned   <lake>/<asset>.parquet
    ticker          <lake>/<asset>/<TICKER>.parquet
    date (a panel)  <lake>/<asset>/<TICKER>/<YYYY-MM-DD>.parquet, one file per ticker of the date
    drift report    <lake>/drift_reports/<TICKER>/<YYYY-MM-DD>.html

`lake_file` is the layout alone, over plain strings (serving builds a path per request, and
pathlib would cost more than the cached read it leads to); its callers pass validated parts.
`partition_path` validates every part, then uses the same layout.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from stock_assets.contract.keys import date_key, validate_ticker
from stock_assets.contract.names import DRIFT_REPORTS

PARQUET = ".parquet"
HTML = ".html"
HOME_ENV = "STOCK_ASSETS_HOME"  # the folder for all state; the lake is its `lake/`
DEFAULT_HOME = ".stock_assets"  # ...in the working directory when the variable is unset
LAKE_DIR_NAME = "lake"


def default_lake_dir() -> Path:
    """$STOCK_ASSETS_HOME/lake, else ./.stock_assets/lake: where the pipeline writes by default."""
    configured = os.environ.get(HOME_ENV)
    home = Path(configured) if configured else Path.cwd() / DEFAULT_HOME
    return home.expanduser().resolve() / LAKE_DIR_NAME


def lake_file(base: str, asset: str, ticker: str | None = None, day: str | None = None) -> str:
    """The lake layout over already-validated parts (see the module docstring)."""
    if ticker is None:
        return f"{base}/{asset}{PARQUET}"
    if day is None:
        return f"{base}/{asset}/{ticker}{PARQUET}"
    return f"{base}/{asset}/{ticker}/{day}{PARQUET}"


def lake_folder(base: str, asset: str, ticker: str | None = None) -> str:
    """The folder of an asset's ticker files, or of one ticker's date files (validated parts)."""
    return f"{base}/{asset}" if ticker is None else f"{base}/{asset}/{ticker}"


def validate_asset_name(asset: str) -> str:
    if not isinstance(asset, str) or not asset or not asset.replace("_", "").isalnum():
        raise ValueError(f"Invalid asset name {asset!r}.")
    return asset


def partition_path(
    base_dir: str | Path, asset: str, ticker: str | None = None, date: str | None = None
) -> Path:
    """Where one partition of an asset lives; every path component is validated first."""
    validate_asset_name(asset)
    if ticker is None and date is not None:
        raise ValueError("A date partition needs a ticker too.")
    ticker = None if ticker is None else validate_ticker(ticker)
    day = None if date is None else date_key(date)
    return Path(lake_file(str(base_dir), asset, ticker, day))


def drift_reports_dir(lake_dir: str | Path, ticker: str) -> Path:
    """One ticker's folder of reports (the ticker is validated: no path is built from raw input)."""
    return Path(lake_dir) / DRIFT_REPORTS / validate_ticker(ticker)


def drift_report_path(lake_dir: str | Path, ticker: str, as_of: date | str) -> Path:
    """`lake/drift_reports/<TICKER>/<YYYY-MM-DD>.html`: where the report of (as_of, ticker) lives."""
    return drift_reports_dir(lake_dir, ticker) / f"{date_key(as_of)}{HTML}"


def drift_report_dates(lake_dir: str | Path, ticker: str) -> list[str]:
    """Dates with a report for the ticker, oldest first (temp files and strays ignored)."""
    try:
        names = os.listdir(drift_reports_dir(lake_dir, ticker))
    except FileNotFoundError:
        return []
    dates = []
    for name in names:
        stem = name[: -len(HTML)]
        if name.endswith(HTML) and len(stem) == 10:
            try:
                dates.append(date.fromisoformat(stem).isoformat())
            except ValueError:
                continue
    return sorted(dates)
