"""forecast_performance: the forecasts that matured on a trading date, scored, for every ticker.

Like daily_forecast it is a panel: one partition per date, one lake file per (ticker, date), the
run's tickers from its `stock_assets/tickers` tag (default: every registered ticker). It takes one
date (the daily job) or a date range in a single run (a back-test). Its checks, forecast_mape and
interval_coverage, are evaluated only in single-date runs, per ticker, and reported as one
evaluation naming the failing tickers: a back-test over past dates is an analysis and must not
retrain today's model.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg
import polars as pl

from stock_assets.forecasting.checks import (
    FORECAST_MAPE,
    FORECAST_MAPE_SPEC,
    INTERVAL_COVERAGE,
    INTERVAL_COVERAGE_SPEC,
    CheckOutcome,
    ModelTestMetrics,
    evaluate_forecast_mape,
    evaluate_interval_coverage,
    panel_check_result,
)
from stock_assets.forecasting.inference import empty_forecast
from stock_assets.forecasting.model_choice import load_bundle, resolve_forecast_model
from stock_assets.forecasting.panels import (
    EVERY_TICKER,
    LINEAGE_LOOKBACK,
    asset_selected,
    check_selected,
    is_range,
    panel_dates_metadata,
    panel_failure,
    panel_start,
    skipped_table,
)
from stock_assets.forecasting.performance import (
    TrainingWindow,
    empty_performance,
    performance_partition,
)
from stock_assets.lake import LakeReadError, LakeResource
from stock_assets.market_calendar import trading_calendar, trading_sessions
from stock_assets.modeling.registry import MlflowResource
from stock_assets.monitoring_settings import MonitoringSettings
from stock_assets.partitions import trading_date_partitions

# forecast_performance[D] scores forecasts made on the sessions before D (read by path).
EARLIER_FORECASTS = dg.TimeWindowPartitionMapping(
    start_offset=-LINEAGE_LOOKBACK, end_offset=-1, allow_nonexistent_upstream_partitions=True
)

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
                "close (APE, error, direction, interval coverage) beside naive persistence, with "
                "rolling metrics; one lake file per ticker."
            ),
            group_name="forecasting",
            kinds={"polars", "parquet"},
            is_required=False,
        )
    },
    # Earlier dates' forecasts and the ticker's prices are read by path (panel dates).
    deps=[
        dg.AssetDep("raw_prices", partition_mapping=EVERY_TICKER),
        dg.AssetDep("daily_forecast", partition_mapping=EARLIER_FORECASTS),
    ],
    check_specs=[FORECAST_MAPE_SPEC, INTERVAL_COVERAGE_SPEC],
    partitions_def=trading_date_partitions,
    can_subset=True,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def forecast_performance(
    context: dg.AssetExecutionContext,
    lake: LakeResource,
    mlflow: MlflowResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """The performance log: what each forecast got right once its target date passed."""
    settings = MonitoringSettings.from_env()
    days, sessions, tickers, frames = panel_start(context, empty_performance)
    mape: dict[str, CheckOutcome] = {}
    coverage: dict[str, CheckOutcome] = {}
    rolling_by_ticker = {}
    skipped: dict[str, str] = {}
    single_date = not is_range(context)
    for ticker in tickers if sessions else []:
        try:
            prices = lake.read("raw_prices", ticker).sort("date")
            lookback = rolling_window_dates(sessions[0], settings.rolling_window + MAX_HORIZON)[0]
            forecasts = earlier_forecasts(lake, ticker, lookback, sessions[-1])
            windows = training_windows(mlflow, forecasts) if forecasts.height else {}
        except (LakeReadError, dg.Failure) as exc:
            skipped[ticker] = getattr(exc, "description", None) or str(exc)
            continue
        for day in sessions:
            rows, rolling = performance_partition(
                forecasts.filter(pl.col("as_of_date") < day),
                prices,
                day,
                rolling_window_dates(day, settings.rolling_window),
                windows,
            )
            frames[(day.isoformat(), ticker)] = rows
        rolling_by_ticker[ticker] = rolling
        if single_date and check_selected(context, "forecast_performance", FORECAST_MAPE):
            fallback = (
                model_test_metrics(mlflow, ticker) if rolling.n < settings.min_matured else None
            )
            mape[ticker] = evaluate_forecast_mape(rolling, settings, fallback)
        if single_date and check_selected(context, "forecast_performance", INTERVAL_COVERAGE):
            coverage[ticker] = evaluate_interval_coverage(rolling, settings)
    if sessions and not rolling_by_ticker:
        raise panel_failure("forecast_performance", skipped)

    metadata: dict[str, object] = {
        **panel_dates_metadata(days, sessions),
        "tickers_scored": len(rolling_by_ticker),
    }
    if skipped:
        metadata["skipped"] = skipped_table(skipped)
    if single_date and rolling_by_ticker:
        metadata["rolling_by_ticker"] = rolling_table(rolling_by_ticker)
    if single_date and len(rolling_by_ticker) == 1:
        [(ticker, rolling)] = rolling_by_ticker.items()
        metadata.update(rolling.as_metadata())
        metadata["matured_today"] = frames[(sessions[0].isoformat(), ticker)].height
        if rolling.coverage_80 is not None:
            from stock_assets.charts import reliability_chart

            metadata["reliability_diagram"] = reliability_chart(
                {f"live, {rolling.n_scored} matured": {
                    50: rolling.coverage_50, 80: rolling.coverage_80, 90: rolling.coverage_90}},
                f"coverage of matured forecasts {rolling.window_start}..{rolling.window_end}",
            )
    if asset_selected(context, "forecast_performance"):
        yield dg.Output(frames, output_name="forecast_performance", metadata=metadata)
    if sessions and mape:
        yield panel_check_result("forecast_performance", FORECAST_MAPE, mape, sessions[0], skipped)
    if sessions and coverage:
        yield panel_check_result(
            "forecast_performance", INTERVAL_COVERAGE, coverage, sessions[0], skipped
        )


def rolling_table(rolling_by_ticker: dict) -> dg.MetadataValue:
    """Each ticker's rolling MAPE, naive MAPE and 80 % coverage on the date, worst MAPE first."""
    from stock_assets.metadata import markdown_table

    def pct(value):
        return None if value is None else round(100.0 * value, 2)

    frame = pl.DataFrame(
        {
            "ticker": list(rolling_by_ticker),
            "n": [r.n for r in rolling_by_ticker.values()],
            "mape_pct": [pct(r.mape) for r in rolling_by_ticker.values()],
            "naive_mape_pct": [pct(r.naive_mape) for r in rolling_by_ticker.values()],
            "coverage_80_pct": [pct(r.coverage_80) for r in rolling_by_ticker.values()],
        },
        strict=False,
    ).sort("mape_pct", descending=True, nulls_last=True)
    return dg.MetadataValue.md(markdown_table(frame.head(50)))
