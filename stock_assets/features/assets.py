"""Indicators per ticker and for the index, and the Feast table every model reads them from."""

import dagster as dg
import polars as pl

from stock_assets.features.feature_store import FeatureStoreResource
from stock_assets.features.indicators import INDICATOR_COLUMNS, compute_indicators
from stock_assets.ingestion.quality import check_finite
from stock_assets.lake import LakeResource
from stock_assets.metadata import figure_markdown, pyplot
from stock_assets.partitions import ticker_partitions


def indicator_chart(indicators: pl.DataFrame, days: int = 250) -> dg.MetadataValue:
    """Close with SMA-20/50 and Bollinger bands, and RSI-14 below: the last `days` rows."""
    recent = indicators.tail(days)
    figure, (price_ax, rsi_ax) = pyplot().subplots(
        2, 1, figsize=(9, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    dates = recent["date"].to_list()
    price_ax.plot(dates, recent["close"], label="close", color="black", linewidth=1)
    price_ax.plot(dates, recent["sma_20"], label="SMA 20", linewidth=0.8)
    price_ax.plot(dates, recent["sma_50"], label="SMA 50", linewidth=0.8)
    price_ax.fill_between(dates, recent["bb_lower"], recent["bb_upper"], alpha=0.15, label="Bollinger")
    price_ax.legend(loc="upper left", fontsize=7)
    price_ax.set_title(f"{recent['ticker'][0]}: last {recent.height} trading days")
    rsi_ax.plot(dates, recent["rsi_14"], color="purple", linewidth=0.8)
    rsi_ax.axhline(70, color="grey", linewidth=0.5)
    rsi_ax.axhline(30, color="grey", linewidth=0.5)
    rsi_ax.set_ylabel("RSI 14")
    return figure_markdown(figure)

def _indicator_output(indicators: pl.DataFrame) -> dg.Output:
    finite = check_finite(indicators, columns=list(INDICATOR_COLUMNS))
    if not finite.passed:
        raise dg.Failure(f"Indicators are not finite: {finite.description}")
    return dg.Output(
        indicators,
        metadata={
            "last_close": float(indicators["close"][-1]),
            "last_rsi_14": float(indicators["rsi_14"][-1]),
            "chart": indicator_chart(indicators),
        },
    )

# One ticker, or a range of tickers in one run (`backfill_policy` on @asset is a 1.13 beta).
_per_ticker_or_range = dg.asset(
    partitions_def=ticker_partitions,
    group_name="features",
    kinds={"polars", "parquet"},
    deps=["raw_prices"],
    backfill_policy=dg.BackfillPolicy.single_run(),
)


@_per_ticker_or_range
def price_indicators(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.Output:
    """Returns, RSI, MACD, moving averages, Bollinger, ATR, volume ratios, realised volatility.

    One ticker, or a range of tickers in one run (the daily cycle); read by path, so a ticker whose
    prices a range run refused keeps its previous indicators and the others go on.
    """
    if context.has_partition_key:
        return _indicator_output(compute_indicators(lake.read("raw_prices", context.partition_key)))
    frames, missing = {}, []
    for ticker in context.partition_keys:
        prices = lake.read_if_exists("raw_prices", ticker)
        if prices is None or prices.is_empty():
            missing.append(ticker)
            continue
        indicators = compute_indicators(prices)
        finite = check_finite(indicators, columns=list(INDICATOR_COLUMNS))
        if not finite.passed:
            missing.append(ticker)
            context.log.error(f"price_indicators[{ticker}] not finite: {finite.description}")
            continue
        frames[ticker] = indicators
    return dg.Output(
        frames, metadata={"tickers_written": len(frames), "not_written": ", ".join(missing) or "none"}
    )

@dg.asset(group_name="features", kinds={"polars", "parquet"})
def market_index_indicators(market_index_prices: pl.DataFrame) -> dg.Output:
    """The same indicators for ^GSPC: the parent model's inputs and the drift check's reference."""
    return _indicator_output(compute_indicators(market_index_prices))

@dg.asset(
    group_name="features",
    deps=[price_indicators, market_index_indicators],
    kinds={"feast", "parquet", "sqlite"},
    automation_condition=dg.AutomationCondition.eager(),
)
def feast_features(
    context: dg.AssetExecutionContext, lake: LakeResource, feature_store: FeatureStoreResource
) -> dg.MaterializeResult:
    """Publishes every ticker's indicators to Feast: the offline table (point-in-time history for
    training and inference) and the online store (latest values), re-applied after any change."""
    tickers = lake.partitions("price_indicators")
    frames = [lake.read("price_indicators", t) for t in tickers]
    index = lake.read_if_exists("market_index_indicators")
    if index is not None:
        frames.append(index)
    if not frames:
        raise dg.Failure("No indicators in the lake: materialize price_indicators first.")
    indicators = pl.concat(frames, how="diagonal_relaxed")
    summary = feature_store.publish(indicators)
    context.log.info(f"Feast: {summary['rows']} rows for {summary['tickers']} tickers published.")
    mismatch = summary["online_mismatch"]
    if mismatch:  # the offline table is right; daily_forecast refuses these tickers as skew
        context.log.error(
            f"Feast online store does not serve the latest row of {len(mismatch)} tickers after "
            f"materializing: {', '.join(mismatch[:20])}"
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": summary["rows"],
            "tickers": dg.MetadataValue.text(", ".join(sorted(indicators["ticker"].unique()))),
            "online_store": feature_store.online_store,
            "offline_table": dg.MetadataValue.path(str(feature_store.offline_table)),
            "latest_event": dg.MetadataValue.text(str(summary["end"])),
            # Read back: the online store serves every ticker's latest offline row.
            "online_matches_offline": f"{summary['tickers'] - len(mismatch)}/{summary['tickers']}",
            "online_mismatch": dg.MetadataValue.text(", ".join(mismatch) or "none"),
        }
    )
