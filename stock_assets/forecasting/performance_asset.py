"""forecast_performance: the forecasts that matured on a (trading date, ticker), scored.

Like daily_forecast it takes one partition (the daily job) or a whole date range of one ticker in a
single run (a back-test). Its checks, forecast_mape and interval_coverage, are evaluated only in
single-partition runs: a back-test over past dates is an analysis and must not retrain today's
model.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg
import polars as pl

from stock_assets.calendar import is_session, trading_calendar, trading_sessions
from stock_assets.forecasting.assets import (
    EARLIER_FORECASTS,
    OF_THE_TICKER,
    _asset_selected,
    _check_selected,
    _is_range,
    _output,
    partition_key,
    prices_of,
    split_partition_keys,
)
from stock_assets.forecasting.inference import empty_forecast
from stock_assets.forecasting.models import load_bundle, resolve_forecast_model
from stock_assets.forecasting.performance import (
    TrainingWindow,
    empty_performance,
    performance_partition,
)
from stock_assets.lake import LakeResource
from stock_assets.modeling.registry import MlflowResource
from stock_assets.monitoring.checks import (
    FORECAST_MAPE,
    FORECAST_MAPE_SPEC,
    INTERVAL_COVERAGE,
    INTERVAL_COVERAGE_SPEC,
    CheckOutcome,
    ModelTestMetrics,
    evaluate_forecast_mape,
    evaluate_interval_coverage,
)
from stock_assets.monitoring.settings import MonitoringSettings
from stock_assets.partitions import date_ticker_partitions

# A matured forecast is at most this many sessions older than its target (horizons up to 30).
MAX_HORIZON = 30


# --- forecast_performance -----------------------------------------------------------------------


def rolling_window_dates(day: date, sessions: int) -> list[date]:
    """The last `sessions` NYSE sessions up to and including `day`."""
    calendar = trading_calendar()
    first = calendar.session_offset(
        calendar.date_to_session(day.isoformat(), direction="previous"), -(sessions - 1)
    ).date()
    return trading_sessions(first, day).to_list()


def earlier_forecasts(lake: LakeResource, ticker: str, first: date, last: date) -> pl.DataFrame:
    """daily_forecast partitions of `ticker` dated first..last that exist (absent ones are skipped)."""
    frames = [
        lake.read("daily_forecast", ticker, key)
        for key in lake.partitions("daily_forecast", ticker)
        if first.isoformat() <= key <= last.isoformat()
    ]
    frames = [f for f in frames if f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else empty_forecast()


def training_windows(
    mlflow: MlflowResource, forecasts: pl.DataFrame
) -> dict[tuple[str, str], TrainingWindow]:
    """(model_name, model_version) -> the training window of the version behind those forecasts
    (a production version and a walk-forward refit may share a version number)."""
    windows = {}
    for name, version in forecasts.select("model_name", "model_version").unique().iter_rows():
        bundle = load_bundle(mlflow, name, version)
        windows[(name, version)] = TrainingWindow(
            date.fromisoformat(bundle.train_start), date.fromisoformat(bundle.train_end)
        )
    return windows


def model_test_metrics(mlflow: MlflowResource, ticker: str) -> ModelTestMetrics | None:
    """The forecasting model's test-window MAPEs (MLflow run metrics, percent -> fraction)."""
    try:
        model = resolve_forecast_model(mlflow, ticker)
        metrics = mlflow.run_metrics(model.run_id)
    except dg.Failure:
        return None
    if "test_mape_hH" not in metrics or "naive_mape_hH" not in metrics:
        return None
    return ModelTestMetrics(
        model.version, metrics["test_mape_hH"] / 100.0, metrics["naive_mape_hH"] / 100.0
    )


@dg.multi_asset(
    name="forecast_performance",
    outs={
        "forecast_performance": dg.AssetOut(
            description=(
                "The forecasts that matured on the partition's date, scored against the actual "
                "close (APE, error, direction) beside naive persistence, with rolling metrics."
            ),
            group_name="forecasting",
            kinds={"polars", "parquet"},
            is_required=False,
        )
    },
    ins={"raw_prices": dg.AssetIn(partition_mapping=OF_THE_TICKER)},
    deps=[dg.AssetDep("daily_forecast", partition_mapping=EARLIER_FORECASTS)],
    check_specs=[FORECAST_MAPE_SPEC, INTERVAL_COVERAGE_SPEC],
    partitions_def=date_ticker_partitions,
    can_subset=True,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def forecast_performance(
    context: dg.AssetExecutionContext,
    raw_prices: pl.DataFrame,
    lake: LakeResource,
    mlflow: MlflowResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """The performance log: what each forecast got right once its target date passed."""
    settings = MonitoringSettings.from_env()
    frames: dict[str, pl.DataFrame] = {}
    checks: list[dg.AssetCheckResult] = []
    rolling_by_key = {}
    closed: list[str] = []
    for ticker, days in split_partition_keys(context.partition_keys).items():
        sessions = [d for d in days if is_session(d)]
        for day in days:
            if day not in sessions:
                frames[partition_key(day, ticker)] = empty_performance()
                closed.append(partition_key(day, ticker))
        if not sessions:
            continue
        prices = prices_of(raw_prices, ticker)
        lookback = rolling_window_dates(sessions[0], settings.rolling_window + MAX_HORIZON)[0]
        forecasts = earlier_forecasts(lake, ticker, lookback, sessions[-1])
        windows = training_windows(mlflow, forecasts) if forecasts.height else {}
        for day in sessions:
            rows, rolling = performance_partition(
                forecasts.filter(pl.col("as_of_date") < day),
                prices,
                day,
                rolling_window_dates(day, settings.rolling_window),
                windows,
            )
            frames[partition_key(day, ticker)] = rows
            rolling_by_key[partition_key(day, ticker)] = rolling
        if not _is_range(context) and _check_selected(
            context, "forecast_performance", FORECAST_MAPE
        ):
            rolling = rolling_by_key[partition_key(sessions[0], ticker)]
            fallback = (
                model_test_metrics(mlflow, ticker) if rolling.n < settings.min_matured else None
            )
            outcome: CheckOutcome = evaluate_forecast_mape(rolling, settings, fallback)
            outcome.metadata.update({"ticker": ticker, "as_of_date": sessions[0].isoformat()})
            checks.append(outcome.to_result("forecast_performance", FORECAST_MAPE))
        if not _is_range(context) and _check_selected(
            context, "forecast_performance", INTERVAL_COVERAGE
        ):
            rolling = rolling_by_key[partition_key(sessions[0], ticker)]
            outcome = evaluate_interval_coverage(rolling, settings)
            outcome.metadata.update({"ticker": ticker, "as_of_date": sessions[0].isoformat()})
            checks.append(outcome.to_result("forecast_performance", INTERVAL_COVERAGE))

    metadata: dict[str, object] = {"partitions": len(frames)}
    metadata["market"] = (
        dg.MetadataValue.text(
            f"market closed (no NYSE session): {', '.join(k.split('|')[0] for k in closed[:10])}"
        )
        if closed
        else "open"
    )
    if not _is_range(context) and rolling_by_key:
        [rolling] = rolling_by_key.values()
        metadata.update(rolling.as_metadata())
        metadata["matured_today"] = next(iter(frames.values())).height
        if rolling.coverage_80 is not None:
            from stock_assets.charts import reliability_chart

            metadata["reliability_diagram"] = reliability_chart(
                {f"live, {rolling.n_scored} matured": {
                    50: rolling.coverage_50, 80: rolling.coverage_80, 90: rolling.coverage_90}},
                f"coverage of matured forecasts {rolling.window_start}..{rolling.window_end}",
            )
    if _asset_selected(context, "forecast_performance"):
        yield _output(context, "forecast_performance", frames, metadata)
    yield from checks
