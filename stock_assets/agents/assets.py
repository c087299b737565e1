"""agent_report: the daily written analysis of one ticker, and its quality check.

The asset only wires lake tables into the agents core: build_report_inputs -> write_report (cache
lookup, LangGraph team, cache store) -> one `agent_report` row. The `report_quality` check runs the
same rules as the critic on the row as it is stored, so what the API serves is what was checked.
"""

import math
import warnings
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from stock_assets.agents.resources import ReportCacheResource, ReportLLMResource
from stock_assets.partitions import date_ticker_partitions

AGENT_REPORT = dg.AssetKey("agent_report")
REPORT_QUALITY_CHECK = "report_quality"
# The drift check that daily_forecast evaluates per (date, ticker) (stock_assets/monitoring/).
FEATURE_DRIFT_CHECK = dg.AssetCheckKey(dg.AssetKey("daily_forecast"), "feature_drift")

# The agent_report table (docs/ARCHITECTURE.md): the contract's columns, then the critic's outcome
# and the model version the report was written about (ReportResult.to_row).
REPORT_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "as_of_date": pl.Date(),
    "stance": pl.String(),
    "confidence": pl.String(),
    "rationale": pl.String(),
    "markdown": pl.String(),
    "author": pl.String(),
    "cache_hit": pl.Boolean(),
    "critic_rounds": pl.Int64(),
    "critic_approved": pl.Boolean(),
    "model_version": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
}

with warnings.catch_warnings():
    # Partitioned checks (preview) and this mapping (beta) would warn on every load otherwise.
    warnings.simplefilter("ignore", dg.PreviewWarning)
    warnings.simplefilter("ignore", dg.BetaWarning)
    # A (date, ticker) report reads its ticker's whole price table (a beta mapping in 1.13).
    PRICES_OF_THE_TICKER = dg.MultiToSingleDimensionPartitionMapping("ticker")
    # Not blocking: nothing in Dagster depends on a report, and a report that fails the rules is
    # still the team's output, stored with the critic's notes; the failed check is the alarm.
    REPORT_QUALITY_SPEC = dg.AssetCheckSpec(
        REPORT_QUALITY_CHECK,
        asset="agent_report",
        description=(
            "All sections present, a valid stance and confidence, the stance consistent with the "
            "forecast direction and the critic, every quoted number equal to the data's."
        ),
        blocking=False,
        partitions_def=date_ticker_partitions,
    )


class AgentReportConfig(dg.Config):
    """Per-run options of the report team."""

    history_days: int = Field(default=60, ge=21, description="price bars the market expert sees")
    fetch_news: bool = Field(
        default=False,
        description="ask yfinance for headlines (needs internet; not part of the cache key)",
    )


# --- pure helpers (tested without Dagster) ----------------------------------------------------


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value  # NaN: not measured


def performance_metrics(performance: pl.DataFrame) -> dict[str, Any] | None:
    """The rolling metrics of one forecast_performance partition, as ReportInputs wants them.

    The table holds MAPEs as fractions (0.0184) repeated on every row; reports quote percent. No
    rows (nothing matured that day, or the market was closed) means "not measured".
    """
    if performance.is_empty():
        return None
    row = performance.row(0, named=True)
    mape, naive = _number(row.get("rolling_mape")), _number(row.get("rolling_naive_mape"))
    n = row.get("rolling_n")
    return {
        "rolling_mape_pct": None if mape is None else 100.0 * mape,
        "naive_mape_pct": None if naive is None else 100.0 * naive,
        "directional_accuracy": _number(row.get("rolling_directional_accuracy")),
        "n_matured": int(n) if n is not None else 0,
    }


def drift_from_evaluation(passed: bool, metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """`{drift_share, drifted}` from a feature_drift check evaluation (None if it has no share).

    The check's metadata carries `drift_share` (fraction of drifted features); `drifted` is its own
    `drifted` entry when present, else "the check failed".
    """

    def plain(value: Any) -> Any:
        return getattr(value, "value", value)

    share = _number(plain(metadata.get("drift_share")))
    if share is None:
        return None
    drifted = plain(metadata.get("drifted"))
    return {"drift_share": share, "drifted": bool(drifted) if drifted is not None else not passed}


def latest_feature_drift(
    instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, as_of: date, ticker: str
) -> dict[str, Any] | None:
    """The newest evaluation of the feature_drift check for this (date, ticker) partition.

    The check runs inside daily_forecast for the same partition, on the sessions up to the
    forecast's date, so it is never look-ahead. None when it has not run (the forecast predates
    the check, or no model features yet): the report then says "not measured".
    """
    from dagster._core.event_api import PartitionKeyFilter
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus as Status,
    )

    records = instance.event_log_storage.get_asset_check_execution_history(
        check_key,
        limit=1,
        status={Status.SUCCEEDED, Status.FAILED},
        partition_filter=PartitionKeyFilter(key=f"{as_of.isoformat()}|{ticker}"),
    )
    evaluation = records[0].evaluation if records else None
    if evaluation is None:
        return None
    return drift_from_evaluation(evaluation.passed, evaluation.metadata)


def report_frame(row: Mapping[str, Any] | None) -> pl.DataFrame:
    """The agent_report table for one partition: one row, or none (market closed)."""
    rows = [] if row is None else [{name: row[name] for name in REPORT_SCHEMA}]
    return pl.DataFrame(rows, schema=REPORT_SCHEMA)


def report_quality_result(
    row: Mapping[str, Any], inputs: Any, asset_key: dg.AssetKey = AGENT_REPORT
) -> dg.AssetCheckResult:
    """The report_quality check on the row as stored (not on the graph's objects)."""
    from stock_assets.agents.quality import check_report_quality

    quality = check_report_quality(
        row["markdown"],
        {"stance": row["stance"], "confidence": row["confidence"], "rationale": row["rationale"]},
        inputs,
        critic_approved=row["critic_approved"],
        author=row["author"],
    )
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=REPORT_QUALITY_CHECK,
        passed=quality.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="report passes every rule" if quality.passed else quality.failures[0],
        metadata={**quality.metadata, "author": row["author"], "cache_hit": row["cache_hit"]},
    )


def _cache_location(cache: Any) -> str:
    return f"server {cache.url}" if cache.url else f"embedded {cache.path}"


# --- the asset --------------------------------------------------------------------------------


# Why it exists: the forecast and its track record, read and argued in words a person can check,
# with a stance that may not contradict the numbers; /reports/{ticker} serves it.
@dg.asset(
    partitions_def=date_ticker_partitions,
    group_name="agents",
    ins={
        "daily_forecast": dg.AssetIn(),
        "forecast_performance": dg.AssetIn(),
        # The ticker's whole price table; bars after the as-of date are dropped (no look-ahead).
        "raw_prices": dg.AssetIn(partition_mapping=PRICES_OF_THE_TICKER),
        "market_index_prices": dg.AssetIn(),
    },
    check_specs=[REPORT_QUALITY_SPEC],
    kinds={"langgraph", "qdrant"},
)
def agent_report(
    context: dg.AssetExecutionContext,
    config: AgentReportConfig,
    daily_forecast: pl.DataFrame,
    forecast_performance: pl.DataFrame,
    raw_prices: pl.DataFrame,
    market_index_prices: pl.DataFrame,
    report_llm: ReportLLMResource,
    report_cache: ReportCacheResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """The report team's analysis of one ticker on one trading date (markdown + verdict)."""
    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    as_of, ticker = date.fromisoformat(keys["date"]), keys["ticker"]
    if daily_forecast.is_empty():
        yield dg.Output(
            report_frame(None),
            metadata={
                "status": dg.MetadataValue.text(f"market closed on {as_of}: no forecast, no report")
            },
        )
        yield dg.AssetCheckResult(
            asset_key=context.asset_key,
            check_name=REPORT_QUALITY_CHECK,
            passed=True,
            description="market closed: no report to check",
            metadata={"market_closed": True},
        )
        return

    from stock_assets.agents.graph import write_report
    from stock_assets.agents.nodes import fetch_yfinance_news
    from stock_assets.agents.state import build_report_inputs

    forecast_dates = set(daily_forecast["as_of_date"].to_list())
    if forecast_dates != {as_of}:
        raise dg.Failure(
            f"daily_forecast[{context.partition_key}] holds as_of_date {sorted(forecast_dates)}, "
            f"not {as_of}: re-materialize it."
        )
    drift = latest_feature_drift(context.instance, FEATURE_DRIFT_CHECK, as_of, ticker)
    inputs = build_report_inputs(
        daily_forecast,
        raw_prices,
        market_index_prices,
        performance=performance_metrics(forecast_performance),
        drift=drift,
        history_days=config.history_days,
    )
    llm = report_llm.get_llm()
    news_fetcher = fetch_yfinance_news if config.fetch_news else None
    with report_cache.open() as cache:
        result = write_report(inputs, llm, cache=cache, news_fetcher=news_fetcher)
        stats, location = cache.stats, _cache_location(cache)
    row = result.to_row(created_at=datetime.now(UTC))
    check = report_quality_result(row, inputs, context.asset_key)

    context.log.info(
        "%s %s: %s/%s by %s (%s)", ticker, as_of, result.verdict.stance,
        result.verdict.confidence, result.author, "cache hit" if result.cache_hit else "written",
    )  # fmt: skip
    yield dg.Output(
        report_frame(row),
        metadata={
            "report": dg.MetadataValue.md(result.markdown),
            "stance": dg.MetadataValue.text(result.verdict.stance),
            "confidence": dg.MetadataValue.text(result.verdict.confidence),
            "author": dg.MetadataValue.text(result.author),
            "writer": dg.MetadataValue.text(llm.name + (f" ({llm.note})" if llm.note else "")),
            "model_version": dg.MetadataValue.text(inputs.model_version),
            "cache_hit": dg.MetadataValue.bool(result.cache_hit),
            "cache_hits": dg.MetadataValue.int(stats.hits),
            "cache_misses": dg.MetadataValue.int(stats.misses),
            "cache_stores": dg.MetadataValue.int(stats.stores),
            "cache_unavailable": dg.MetadataValue.int(stats.unavailable),
            "cache": dg.MetadataValue.text(location),
            "critic_rounds": dg.MetadataValue.int(result.critic_rounds),
            "critic_approved": dg.MetadataValue.bool(result.critic_approved),
            "drift": dg.MetadataValue.text("not measured" if drift is None else str(drift)),
            "events": dg.MetadataValue.md("\n".join(f"- {event}" for event in result.events)),
        },
    )
    yield check
