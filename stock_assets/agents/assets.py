"""agent_report: the daily written analysis of each ticker, and its quality check.

A panel like daily_forecast: one partition per trading date, one lake file per (ticker, date), the
run's tickers from its `stock_assets/tickers` tag (default: every ticker with a forecast file on
that date).

The asset only wires lake tables into the agents core: build_report_inputs -> write_report (cache
lookup, LangGraph team, cache store) -> one `agent_report` row. The `report_quality` check runs the
same rules as the critic on the row as it is stored, so what the API serves is what was checked.
"""

import math
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from stock_assets.agents.resources import ReportCacheResource, ReportLLMResource
from stock_assets.contract import (
    AGENT_REPORT,
    DAILY_FORECAST,
    FEATURE_DRIFT,
    FORECAST_PERFORMANCE,
    MARKET_INDEX_PRICES,
    RAW_PRICES,
    REPORT_QUALITY,
    REPORT_SCHEMA,
)
from stock_assets.lake import LakeResource, PanelFrames
from stock_assets.metadata import markdown_table
from stock_assets.partitions import TICKERS_TAG, parse_tickers_tag, trading_date_partitions

AGENT_REPORT_KEY = dg.AssetKey(AGENT_REPORT)
REPORT_QUALITY_CHECK = REPORT_QUALITY
# The drift check that daily_forecast evaluates per (date, ticker) (stock_assets/monitoring/).
FEATURE_DRIFT_CHECK = dg.AssetCheckKey(dg.AssetKey(DAILY_FORECAST), FEATURE_DRIFT)
# The agent_report table is the contract's REPORT_SCHEMA (ReportResult.to_row fills it).

# Not blocking: nothing in Dagster depends on a report, and a report that fails the rules is
# still the team's output, stored with the critic's notes; the failed check is the alarm.
REPORT_QUALITY_SPEC = dg.AssetCheckSpec(
    REPORT_QUALITY_CHECK,
    asset=AGENT_REPORT,
    description=(
        "All sections present, a valid stance and confidence, the stance consistent with the "
        "forecast direction and the critic, every quoted number equal to the data's."
    ),
    blocking=False,
    partitions_def=trading_date_partitions,
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
    """The ticker's verdict in the newest evaluation of the feature_drift check for this date.

    The check runs inside daily_forecast for the same date, on the sessions up to the forecast's
    date, so it is never look-ahead; its `results` metadata holds each ticker's numbers. None when
    it has not run for the ticker (the forecast predates the check, or no model features yet):
    the report then says "not measured".
    """
    from stock_assets.compat import latest_check_evaluation

    evaluation = latest_check_evaluation(instance, check_key, as_of.isoformat())
    if evaluation is None:
        return None
    results = getattr(evaluation.metadata.get("results"), "value", None) or {}
    mine = results.get(ticker)
    if mine is None:
        return None
    return drift_from_evaluation(bool(mine.get("passed")), mine)


def report_frame(row: Mapping[str, Any] | None) -> pl.DataFrame:
    """The agent_report table for one partition: one row, or none (market closed)."""
    rows = [] if row is None else [{name: row[name] for name in REPORT_SCHEMA}]
    return pl.DataFrame(rows, schema=REPORT_SCHEMA)


def report_quality_result(
    row: Mapping[str, Any], inputs: Any, asset_key: dg.AssetKey = AGENT_REPORT_KEY
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


def report_tickers(context: dg.AssetExecutionContext, lake: LakeResource, as_of: date) -> list[str]:
    """The run's tag's tickers, else every ticker with a daily_forecast file for the date."""
    chosen = parse_tickers_tag(context.run.tags.get(TICKERS_TAG))
    if chosen is not None:
        return chosen
    folder = lake.base / DAILY_FORECAST
    if not folder.is_dir():
        return []
    return sorted(p.parent.name for p in folder.glob(f"*/{as_of.isoformat()}.parquet"))


def panel_quality_result(results: dict[str, dg.AssetCheckResult], as_of: date) -> dg.AssetCheckResult:
    """report_quality over a date's reports: fails when any ticker's report fails, naming them."""
    failing = sorted(t for t, r in results.items() if not r.passed)
    metadata: dict[str, Any] = {}
    if len(results) == 1:
        metadata.update(next(iter(results.values())).metadata)
    metadata.update(
        {
            "tickers_judged": len(results),
            "failing_tickers": dg.MetadataValue.json(failing),
            "results": dg.MetadataValue.json(
                {t: {"passed": r.passed, "description": r.description} for t, r in results.items()}
            ),
        }
    )
    if len(results) == 1:
        description = next(iter(results.values())).description
    elif failing:
        description = f"{len(failing)} of {len(results)} reports on {as_of} fail: {', '.join(failing[:20])}"
    else:
        description = f"all {len(results)} reports on {as_of} pass every rule"
    return dg.AssetCheckResult(
        asset_key=AGENT_REPORT_KEY,
        check_name=REPORT_QUALITY_CHECK,
        passed=not failing,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )


def _report_metadata(result: Any, llm: Any, inputs: Any, drift: Any) -> dict[str, Any]:
    return {
        "report": dg.MetadataValue.md(result.markdown),
        "stance": dg.MetadataValue.text(result.verdict.stance),
        "confidence": dg.MetadataValue.text(result.verdict.confidence),
        "author": dg.MetadataValue.text(result.author),
        "writer": dg.MetadataValue.text(llm.name + (f" ({llm.note})" if llm.note else "")),
        "model_version": dg.MetadataValue.text(inputs.model_version),
        "cache_hit": dg.MetadataValue.bool(result.cache_hit),
        "critic_rounds": dg.MetadataValue.int(result.critic_rounds),
        "critic_approved": dg.MetadataValue.bool(result.critic_approved),
        "drift": dg.MetadataValue.text("not measured" if drift is None else str(drift)),
        "events": dg.MetadataValue.md("\n".join(f"- {event}" for event in result.events)),
    }


# Why it exists: the forecast and its track record, read and argued in words a person can check,
# with a stance that may not contradict the numbers; /reports/{ticker} serves it.
@dg.asset(
    partitions_def=trading_date_partitions,
    group_name="agents",
    # Read by path per ticker: the date's forecast and score files, the ticker's prices up to the
    # date (no look-ahead); the index's prices are one table.
    deps=[
        DAILY_FORECAST,
        FORECAST_PERFORMANCE,
        dg.AssetDep(RAW_PRICES, partition_mapping=dg.AllPartitionMapping()),
    ],
    ins={MARKET_INDEX_PRICES: dg.AssetIn()},
    check_specs=[REPORT_QUALITY_SPEC],
    kinds={"langgraph", "qdrant"},
)
def agent_report(
    context: dg.AssetExecutionContext,
    config: AgentReportConfig,
    market_index_prices: pl.DataFrame,
    lake: LakeResource,
    report_llm: ReportLLMResource,
    report_cache: ReportCacheResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """The report team's analysis of each ticker on one trading date (markdown + verdict)."""
    from stock_assets.agents.graph import write_report
    from stock_assets.agents.nodes import fetch_yfinance_news
    from stock_assets.agents.state import build_report_inputs

    as_of = date.fromisoformat(context.partition_key)
    frames = PanelFrames()
    checks: dict[str, dg.AssetCheckResult] = {}
    missing: dict[str, str] = {}
    closed: list[str] = []
    summary: list[dict[str, Any]] = []
    metadata: dict[str, Any] = {}
    llm = report_llm.get_llm()
    news_fetcher = fetch_yfinance_news if config.fetch_news else None
    with report_cache.open() as cache:
        for ticker in report_tickers(context, lake, as_of):
            forecast = lake.read_if_exists(DAILY_FORECAST, ticker, as_of.isoformat())
            if forecast is None:
                missing[ticker] = f"no daily_forecast[{as_of}] for {ticker}: materialize it first"
                continue
            if forecast.is_empty():
                closed.append(ticker)
                frames[(as_of.isoformat(), ticker)] = report_frame(None)
                continue
            if set(forecast["as_of_date"].to_list()) != {as_of}:
                raise dg.Failure(
                    f"daily_forecast[{as_of}][{ticker}] holds as_of_date "
                    f"{sorted(set(forecast['as_of_date'].to_list()))}, not {as_of}: re-materialize it."
                )
            performance = lake.read_if_exists(FORECAST_PERFORMANCE, ticker, as_of.isoformat())
            drift = latest_feature_drift(context.instance, FEATURE_DRIFT_CHECK, as_of, ticker)
            inputs = build_report_inputs(
                forecast,
                lake.read(RAW_PRICES, ticker),
                market_index_prices,
                performance=performance_metrics(performance) if performance is not None else None,
                drift=drift,
                history_days=config.history_days,
            )
            result = write_report(inputs, llm, cache=cache, news_fetcher=news_fetcher)
            row = result.to_row(created_at=datetime.now(UTC))
            frames[(as_of.isoformat(), ticker)] = report_frame(row)
            checks[ticker] = report_quality_result(row, inputs, context.asset_key)
            summary.append(
                {"ticker": ticker, "stance": result.verdict.stance,
                 "confidence": result.verdict.confidence, "author": result.author,
                 "cache_hit": result.cache_hit, "quality": checks[ticker].passed}
            )  # fmt: skip
            context.log.info(
                "%s %s: %s/%s by %s (%s)", ticker, as_of, result.verdict.stance,
                result.verdict.confidence, result.author, "cache hit" if result.cache_hit else "written",
            )  # fmt: skip
            if len(summary) == 1:
                metadata = _report_metadata(result, llm, inputs, drift)
        stats, location = cache.stats, _cache_location(cache)
    if not frames:
        raise dg.Failure(
            f"agent_report[{as_of}]: no ticker to report on. "
            + "; ".join(f"{t}: {w}" for t, w in list(missing.items())[:10]),
            allow_retries=False,
        )
    if len(summary) != 1:
        metadata = {}
    metadata.update(
        {
            "reports_written": len(summary),
            "cache_hits": dg.MetadataValue.int(stats.hits),
            "cache_misses": dg.MetadataValue.int(stats.misses),
            "cache_stores": dg.MetadataValue.int(stats.stores),
            "cache_unavailable": dg.MetadataValue.int(stats.unavailable),
            "cache": dg.MetadataValue.text(location),
        }
    )
    if summary:
        metadata["reports"] = dg.MetadataValue.md(markdown_table(pl.DataFrame(summary)))
    if closed:
        metadata["status"] = dg.MetadataValue.text(
            f"market closed on {as_of}: no forecast, no report"
        )
    if missing:
        metadata["missing_forecasts"] = dg.MetadataValue.json(missing)
    yield dg.Output(frames, metadata=metadata)
    if checks:
        yield panel_quality_result(checks, as_of)
    else:
        yield dg.AssetCheckResult(
            asset_key=context.asset_key,
            check_name=REPORT_QUALITY_CHECK,
            passed=True,
            description="market closed: no report to check",
            metadata={"market_closed": True},
        )
