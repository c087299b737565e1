"""What both panel assets (daily_forecast, forecast_performance) share: a run's dates and
tickers, which of its outputs and checks were selected, and how skipped tickers are reported.

A panel partition is one trading date holding every ticker's rows; a run covers one date (the
daily job) or a range (a back-test) and the tickers of its `stock_assets/tickers` tag.
"""

from datetime import date

import dagster as dg
import polars as pl

from stock_assets.lake import PanelFrames
from stock_assets.market_calendar import is_session
from stock_assets.metadata import markdown_table
from stock_assets.partitions import date_keys, run_tickers

# A panel date reads every ticker's table (cut at its date).
EVERY_TICKER = dg.AllPartitionMapping()
# Default rolling window + horizon, in weekday partitions: the lineage of forecast_performance[D].
LINEAGE_LOOKBACK = 25


def run_dates(context: dg.AssetExecutionContext) -> list[date]:
    """The run's trading-date partitions, sorted."""
    return [date.fromisoformat(key) for key in date_keys(context.partition_keys)]


def is_range(context: dg.AssetExecutionContext) -> bool:
    return not context.has_partition_key


def asset_selected(context: dg.AssetExecutionContext, asset: str) -> bool:
    return dg.AssetKey(asset) in context.selected_asset_keys


def check_selected(context: dg.AssetExecutionContext, asset: str, check: str) -> bool:
    return dg.AssetCheckKey(dg.AssetKey(asset), check) in context.selected_asset_check_keys


def skipped_table(skipped: dict[str, str]) -> dg.MetadataValue:
    frame = pl.DataFrame({"ticker": list(skipped), "why": [w[:200] for w in skipped.values()]})
    return dg.MetadataValue.md(markdown_table(frame))


def panel_start(context: dg.AssetExecutionContext, empty) -> tuple[list[date], list[date], list[str], PanelFrames]:
    """A panel run's dates, its sessions among them, its tickers, and the closed days' empty
    files (`empty()`: the table with no rows) already in its output."""
    days = run_dates(context)
    sessions = [d for d in days if is_session(d)]
    tickers = run_tickers(context)
    frames = PanelFrames(
        {(d.isoformat(), t): empty() for d in days if d not in sessions for t in tickers}
    )
    return days, sessions, tickers, frames


def panel_dates_metadata(days: list[date], sessions: list[date]) -> dict[str, object]:
    """The run's dates, and whether the market was open on them (a closed day has no rows)."""
    closed = [str(d) for d in days if d not in sessions]
    return {
        "dates": f"{days[0]}..{days[-1]}" if len(days) > 1 else days[0].isoformat(),
        "market": dg.MetadataValue.text(
            f"market closed (no NYSE session, no rows): {', '.join(closed)[:300]}"
        ) if closed else "open",
    }


def panel_failure(asset: str, skipped: dict[str, str]) -> dg.Failure:
    """Nothing could be computed for any ticker: fail, saying why for each (first 10)."""
    reasons = "; ".join(f"{t}: {w}" for t, w in list(skipped.items())[:10])
    return dg.Failure(f"{asset}: no ticker could be computed. {reasons}", allow_retries=False)


# --- one ticker ----------------------------------------------------------------------------------
