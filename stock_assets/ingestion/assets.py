"""Raw daily prices: per ticker (`raw_prices`) and for the market index (`market_index_prices`).

Both fetch incrementally (only the dates after the last stored one, or with `refetch_days` also
the last N stored days, whose corrections are listed), merge without duplicating or losing rows,
and run the data-quality rules BEFORE anything is written: when a blocking rule fails the run
fails, the check evaluations are recorded, and the previous good partition stays as it was. New
rows and corrections land in one atomic write of the partition.

raw_prices also takes a range of ticker partitions in ONE run (the daily cycle ingests the whole
universe at once: `BackfillPolicy.single_run()`). Dagster records partitioned check results only
for single-partition runs, so a range run applies the same rules per ticker in code: a ticker that
fails a blocking rule is not written (its previous file stays), is named in the run's metadata and
log, and the other tickers go on; its forecast is then skipped as "prices not ingested".
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import polars as pl

from stock_assets.contract import MARKET_INDEX_PRICES, RAW_PRICES
from stock_assets.ingestion.checks import quality_check_results, quality_check_specs
from stock_assets.ingestion.config import PriceFetchConfig
from stock_assets.ingestion.corrections import (
    correction_metadata,
    corrections_summary,
    price_corrections,
    refetch_start,
)  # fmt: skip
from stock_assets.ingestion.errors import PriceSourceError
from stock_assets.ingestion.sources import PriceSourceResource, merge_incremental
from stock_assets.lake import LakeResource
from stock_assets.market_calendar import last_completed_session
from stock_assets.metadata import markdown_table
from stock_assets.partitions import ticker_partitions
from stock_assets.tickers import MARKET_INDEX_KEY, MARKET_INDEX_SYMBOL, to_symbol, validate_ticker


@dataclass(frozen=True)
class PriceRefresh:
    prices: pl.DataFrame
    fetched_rows: int
    new_rows: int
    fetch_start: date | None  # None: already up to date, nothing asked of the source
    corrections: pl.DataFrame | None = None  # date, column, stored, fetched (re-read days)

def refresh_prices(
    ticker: str,
    stored: pl.DataFrame | None,
    price_source: PriceSourceResource,
    up_to: date,
    refetch_days: int = 0,
) -> PriceRefresh:
    """Ask the source for dates after the last stored one (and the last `refetch_days` stored
    ones again) and merge them in, the source's answer winning."""
    reread = refetch_start(stored, refetch_days)
    if reread is None and stored is not None and not stored.is_empty() and stored["date"].max() >= up_to:
        return PriceRefresh(stored, fetched_rows=0, new_rows=0, fetch_start=None)
    start = reread or (
        stored["date"].max() + timedelta(days=1)
        if stored is not None and not stored.is_empty()
        else price_source.first_date
    )
    fetched = price_source.get_source().fetch(ticker, start, None)
    corrections = price_corrections(stored, fetched) if reread is not None else None
    merged = merge_incremental(stored, fetched)
    if merged.is_empty():
        raise PriceSourceError(
            f"{price_source.kind}: no prices for {to_symbol(ticker)} since {start}; nothing written."
        )
    new_rows = merged.height - (stored.height if stored is not None else 0)
    return PriceRefresh(merged, fetched_rows=fetched.height, new_rows=new_rows, fetch_start=start,
                        corrections=corrections)

def _price_metadata(refresh: PriceRefresh, source: str) -> dict[str, dg.MetadataValue]:
    prices = refresh.prices
    return {
        "source": dg.MetadataValue.text(source),
        "fetched_from": dg.MetadataValue.text(
            str(refresh.fetch_start) if refresh.fetch_start else "up to date (nothing fetched)"
        ),
        "fetched_rows": dg.MetadataValue.int(refresh.fetched_rows),
        "new_rows": dg.MetadataValue.int(refresh.new_rows),
        **correction_metadata(refresh.corrections),
        "last_close": dg.MetadataValue.float(float(prices["close"][-1])),
        "preview": dg.MetadataValue.md(markdown_table(prices.tail(5))),
    }

def _materialize_prices(
    context: dg.AssetExecutionContext,
    asset_name: str,
    ticker: str,
    price_source: PriceSourceResource,
    lake: LakeResource,
    config: PriceFetchConfig,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    stored = lake.read_if_exists(asset_name, None if asset_name == MARKET_INDEX_PRICES else ticker)
    refetch = price_source.refetch_days if config.refetch_days is None else config.refetch_days
    refresh = refresh_prices(ticker, stored, price_source, last_completed_session(), refetch)
    context.log.info(
        f"{to_symbol(ticker)}: {refresh.fetched_rows} rows fetched from {price_source.kind}, "
        f"{refresh.new_rows} new, {refresh.prices.height} in all"
        + (f"; {corrections_summary(refresh.corrections)}." if refresh.corrections is not None else ".")
    )
    results = quality_check_results(refresh.prices, context.asset_key, config.jump_multiple)
    blocking_failures = [r for r in results if not r.passed and r.severity == dg.AssetCheckSeverity.ERROR]
    if blocking_failures:
        yield from results
        names = ", ".join(r.check_name for r in blocking_failures)
        raise dg.Failure(
            f"{to_symbol(ticker)}: data-quality checks failed ({names}); the previously stored "
            "partition was left untouched.",
            allow_retries=False,
        )
    yield dg.Output(
        refresh.prices, output_name=RAW_PRICES if asset_name == RAW_PRICES else "result",
        metadata=_price_metadata(refresh, price_source.kind),
    )
    yield from results

def _range_of_prices(
    context: dg.AssetExecutionContext,
    price_source: PriceSourceResource,
    lake: LakeResource,
    config: PriceFetchConfig,
) -> Iterator[dg.Output]:
    """raw_prices for many tickers in one run: each refreshed and judged on its own."""
    frames: dict[str, pl.DataFrame] = {}
    refused: dict[str, str] = {}
    corrected: dict[str, str] = {}
    new_rows = 0
    refetch = price_source.refetch_days if config.refetch_days is None else config.refetch_days
    for key in context.partition_keys:
        ticker = validate_ticker(key)
        try:
            if ticker == MARKET_INDEX_KEY:
                raise PriceSourceError(f"{MARKET_INDEX_SYMBOL} is the market index")
            refresh = refresh_prices(
                ticker, lake.read_if_exists(RAW_PRICES, ticker), price_source,
                last_completed_session(), refetch,
            )
        except PriceSourceError as exc:
            refused[ticker] = str(exc)
            continue
        if refresh.fetch_start is None:
            continue  # already up to date: its file is not rewritten
        results = quality_check_results(refresh.prices, context.asset_key, config.jump_multiple)
        failed = [
            f"{r.check_name}: {r.description}"
            for r in results
            if not r.passed and r.severity == dg.AssetCheckSeverity.ERROR
        ]
        if failed:
            refused[ticker] = "; ".join(failed)
            continue
        if refresh.corrections is not None and refresh.corrections.height:
            corrected[ticker] = corrections_summary(refresh.corrections)
        frames[ticker] = refresh.prices
        new_rows += refresh.new_rows
    for ticker, why in refused.items():
        context.log.error(f"raw_prices[{ticker}] not written (previous file kept): {why}")
    metadata: dict[str, object] = {
        "source": price_source.kind,
        "tickers_written": len(frames),
        "new_rows": new_rows,
    }
    if refused:
        metadata["not_written"] = dg.MetadataValue.json(refused)
    if corrected:
        metadata["corrections"] = dg.MetadataValue.json(corrected)
    yield dg.Output(frames, output_name=RAW_PRICES, metadata=metadata)


@dg.multi_asset(
    name=RAW_PRICES,
    outs={
        RAW_PRICES: dg.AssetOut(
            description="Daily OHLCV of one ticker: the ground truth every feature, model and "
            "score comes from.",
            group_name="ingestion",
            kinds={"polars", "parquet"},
            tags={"stage": "ingestion"},
            is_required=False,
        )
    },
    partitions_def=ticker_partitions,
    check_specs=quality_check_specs(RAW_PRICES, ticker_partitions),
    can_subset=True,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def raw_prices(
    context: dg.AssetExecutionContext,
    config: PriceFetchConfig,
    price_source: PriceSourceResource,
    lake: LakeResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Daily OHLCV of one ticker (or of a range of tickers in one run, the daily cycle's way)."""
    if not context.has_partition_key:
        yield from _range_of_prices(context, price_source, lake, config)
        return
    ticker = validate_ticker(context.partition_key)
    if ticker == MARKET_INDEX_KEY:
        raise dg.Failure(f"{MARKET_INDEX_SYMBOL} is the market index: materialize market_index_prices.")
    yield from _materialize_prices(context, RAW_PRICES, ticker, price_source, lake, config)

@dg.asset(
    group_name="ingestion",
    check_specs=quality_check_specs(MARKET_INDEX_PRICES),
    kinds={"polars", "parquet"},
    tags={"stage": "ingestion"},
)
def market_index_prices(
    context: dg.AssetExecutionContext,
    config: PriceFetchConfig,
    price_source: PriceSourceResource,
    lake: LakeResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Daily ^GSPC: the parent model's training data and the market context for every ticker."""
    yield from _materialize_prices(
        context, MARKET_INDEX_PRICES, MARKET_INDEX_KEY, price_source, lake, config
    )
