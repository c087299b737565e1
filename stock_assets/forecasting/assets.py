"""daily_forecast and forecast_performance: one partition per (trading date, ticker).

Both assets take one partition (the daily job) or a whole date range of one ticker in a single run
(a back-test: `BackfillPolicy.single_run()`, so a year of days is one run, one model load and one
forward pass, not 250 runs). A range run returns `{partition_key: frame}`, which the lake's IO
manager writes as one file per partition, exactly as single runs would.

Their checks (feature_drift on daily_forecast, forecast_mape on forecast_performance) are
evaluated only in single-partition runs, i.e. by the daily job: a back-test over past dates is an
analysis, and must not make the retraining sensor retrain today's model. That is why these are
`multi_asset`s with `can_subset=True`: their check outputs are optional.
"""

import warnings
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from stock_assets.calendar import is_session, trading_calendar, trading_sessions
from stock_assets.features.feature_store import FeatureStoreResource
from stock_assets.forecasting.inference import (
    WINDOW_MARGIN,
    InputsNotReady,
    empty_forecast,
    forecast_dates,
    input_dates,
    require_price_row,
    verify_feature_rows,
)
from stock_assets.forecasting.models import (
    ForecastModel,
    load_bundle,
    resolve_forecast_model,
)
from stock_assets.forecasting.performance import (
    TrainingWindow,
    empty_performance,
    performance_partition,
)
from stock_assets.lake import LakeResource
from stock_assets.metadata import markdown_table
from stock_assets.modeling.registry import MlflowResource
from stock_assets.monitoring.checks import (
    FEATURE_DRIFT,
    FEATURE_DRIFT_SPEC,
    FORECAST_MAPE,
    FORECAST_MAPE_SPEC,
    CheckOutcome,
    ModelTestMetrics,
    evaluate_forecast_mape,
    run_drift_check,
)
from stock_assets.monitoring.schedules import DAILY_DATE_TAG
from stock_assets.monitoring.settings import MonitoringSettings
from stock_assets.partitions import date_ticker_partitions

# Scheduled runs whose prices are late retry this often, this far apart.
SCHEDULED_RETRIES = 3
RETRY_SECONDS = 600
# A matured forecast is at most this many sessions older than its target (horizons up to 30).
MAX_HORIZON = 30
# Default rolling window + horizon, in weekday partitions: the lineage of forecast_performance[D].
LINEAGE_LOOKBACK = 25

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    warnings.simplefilter("ignore", dg.PreviewWarning)
    # A (date, ticker) partition reads its ticker's whole table (and cuts it at its date).
    OF_THE_TICKER = dg.MultiToSingleDimensionPartitionMapping("ticker")
    # forecast_performance[D] scores forecasts made on the sessions before D (read by path).
    EARLIER_FORECASTS = dg.MultiPartitionMapping(
        {
            "date": dg.DimensionPartitionMapping(
                "date",
                dg.TimeWindowPartitionMapping(
                    start_offset=-LINEAGE_LOOKBACK,
                    end_offset=-1,
                    allow_nonexistent_upstream_partitions=True,
                ),
            ),
            "ticker": dg.DimensionPartitionMapping("ticker", dg.IdentityPartitionMapping()),
        }
    )


# --- helpers ------------------------------------------------------------------------------------


def split_partition_keys(keys: Sequence[str]) -> dict[str, list[date]]:
    """{ticker: sorted dates} of date x ticker partition keys ("2024-06-28|AAPL")."""
    by_ticker: dict[str, list[date]] = {}
    for key in keys:
        day, ticker = str(key).split("|")
        by_ticker.setdefault(ticker, []).append(date.fromisoformat(day))
    return {ticker: sorted(days) for ticker, days in by_ticker.items()}


def partition_key(day: date, ticker: str) -> str:
    return f"{day.isoformat()}|{ticker}"


def prices_of(raw_prices: pl.DataFrame, ticker: str) -> pl.DataFrame:
    if "ticker" in raw_prices.columns:
        raw_prices = raw_prices.filter(pl.col("ticker") == ticker)
    return raw_prices.sort("date")


def _output(
    context: dg.AssetExecutionContext, asset: str, frames: dict[str, pl.DataFrame], metadata
) -> dg.Output:
    """One frame for a single partition, `{key: frame}` for a range (the lake writes each)."""
    value = next(iter(frames.values())) if not _is_range(context) else frames
    return dg.Output(value, output_name=asset, metadata=metadata)


def _is_range(context: dg.AssetExecutionContext) -> bool:
    return not context.has_partition_key


def _asset_selected(context: dg.AssetExecutionContext, asset: str) -> bool:
    return dg.AssetKey(asset) in context.selected_asset_keys


def _check_selected(context: dg.AssetExecutionContext, asset: str, check: str) -> bool:
    return dg.AssetCheckKey(dg.AssetKey(asset), check) in context.selected_asset_check_keys


_REFERENCES: dict[tuple[str, str, str, str], pl.DataFrame] = {}


def training_reference(
    feature_store: FeatureStoreResource, model: ForecastModel, prices: pl.DataFrame
) -> pl.DataFrame:
    """The model features of the model's training window, read through Feast once per process."""
    from stock_assets.datasets.windows import model_feature_frame

    key = (feature_store.home, model.ticker, model.name, model.version)
    if key not in _REFERENCES:
        dates = prices.filter(pl.col("date").is_between(model.train_start, model.train_end))["date"]
        history = feature_store.history(model.ticker, dates.to_list()).drop_nulls()
        frame = model_feature_frame(history)
        _REFERENCES[key] = frame.filter(
            pl.col("date").is_between(model.train_start, model.train_end)
        )
    return _REFERENCES[key]


def _point_in_time_features(
    context: dg.AssetExecutionContext,
    feature_store: FeatureStoreResource,
    prices: pl.DataFrame,
    ticker: str,
    sessions: list[date],
    length: int,
) -> pl.DataFrame:
    """Feast's history over the sessions' input windows, after checking each date is ready."""
    try:
        for day in sessions:  # every date needs its own price row, before any work is done
            require_price_row(prices, day, ticker)
        first = input_dates(prices["date"], sessions[0], length)[0]
        needed = prices.filter(pl.col("date").is_between(first, sessions[-1]))["date"].to_list()
        features = feature_store.history(ticker, needed)
        verify_feature_rows(features, prices, ticker)
        return features
    except InputsNotReady as exc:
        if context.run.tags.get(DAILY_DATE_TAG) and context.retry_number < SCHEDULED_RETRIES:
            # A scheduled run whose prices are late: try again later rather than fail the day.
            context.log.warning(f"{exc} Retrying in {RETRY_SECONDS // 60} minutes.")
            raise dg.RetryRequested(
                max_retries=SCHEDULED_RETRIES, seconds_to_wait=RETRY_SECONDS
            ) from exc
        raise dg.Failure(str(exc)) from exc


def _drift_result(
    feature_store: FeatureStoreResource,
    model: ForecastModel,
    prices: pl.DataFrame,
    features: pl.DataFrame,
    day: date,
    settings: MonitoringSettings,
) -> dg.AssetCheckResult:
    """feature_drift of one (date, ticker): the last sessions up to `day` vs the training window."""
    from stock_assets.datasets.windows import MODEL_FEATURES, model_feature_frame

    recent = model_feature_frame(features.filter(pl.col("date") <= day)).tail(settings.drift_window)
    outcome = run_drift_check(
        reference=training_reference(feature_store, model, prices).select(MODEL_FEATURES),
        current=recent.select(MODEL_FEATURES),
        columns=MODEL_FEATURES,
        settings=settings,
        ticker=model.ticker,
        as_of=day,
        reference_window=(model.train_start, model.train_end),
        home=feature_store.home,
    )
    outcome.metadata["model_version"] = model.label()
    return outcome.to_result("daily_forecast", FEATURE_DRIFT)


# --- daily_forecast -----------------------------------------------------------------------------


@dg.multi_asset(
    name="daily_forecast",
    outs={
        "daily_forecast": dg.AssetOut(
            description=(
                "The production child model's forecast for the next `horizon` sessions, made "
                "from inputs ending on the partition's date (zero rows when the NYSE is closed)."
            ),
            group_name="forecasting",
            kinds={"pytorch", "feast", "parquet"},
            is_required=False,
        )
    },
    ins={"raw_prices": dg.AssetIn(partition_mapping=OF_THE_TICKER)},
    deps=[
        dg.AssetDep("child_model", partition_mapping=OF_THE_TICKER),
        dg.AssetDep("feast_features"),
    ],
    check_specs=[FEATURE_DRIFT_SPEC],
    partitions_def=date_ticker_partitions,
    can_subset=True,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def daily_forecast(
    context: dg.AssetExecutionContext,
    raw_prices: pl.DataFrame,
    mlflow: MlflowResource,
    feature_store: FeatureStoreResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Tomorrow's and the next sessions' closes per ticker, point-in-time, with model lineage."""
    settings = MonitoringSettings.from_env()
    created_at = datetime.now(UTC)
    frames: dict[str, pl.DataFrame] = {}
    checks: list[dg.AssetCheckResult] = []
    closed: list[str] = []
    models: dict[str, str] = {}
    windows: dict[str, str] = {}
    for ticker, days in split_partition_keys(context.partition_keys).items():
        sessions = [d for d in days if is_session(d)]
        for day in days:
            if day not in sessions:
                frames[partition_key(day, ticker)] = empty_forecast()
                closed.append(partition_key(day, ticker))
        if not sessions:
            continue
        prices = prices_of(raw_prices, ticker)
        model = resolve_forecast_model(mlflow, ticker)
        models[ticker] = model.label()
        length = max(model.bundle.context_length, settings.drift_window) + WINDOW_MARGIN
        features = _point_in_time_features(context, feature_store, prices, ticker, sessions, length)
        forecasts = forecast_dates(
            ticker=ticker,
            as_of_dates=sessions,
            prices=prices,
            features=features,
            network=model.network,
            scaler=model.bundle.feature_scaler(),
            context_length=model.bundle.context_length,
            model_name=model.name,
            model_version=model.version,
            created_at=created_at,
        )
        for day, frame in forecasts.items():
            frames[partition_key(day, ticker)] = frame
        window = input_dates(prices["date"], sessions[-1], model.bundle.context_length)
        windows[ticker] = f"{window[0]}..{window[-1]} ({len(window)} sessions)"
        if not _is_range(context) and _check_selected(context, "daily_forecast", FEATURE_DRIFT):
            checks.append(
                _drift_result(feature_store, model, prices, features, sessions[0], settings)
            )

    metadata: dict[str, object] = {
        "partitions": len(frames),
        "models": dg.MetadataValue.json(models),
    }
    if closed:
        metadata["market"] = dg.MetadataValue.text(
            f"market closed (no NYSE session, no forecast): {', '.join(k.split('|')[0] for k in closed[:10])}"
            + (" ..." if len(closed) > 10 else "")
        )
    else:
        metadata["market"] = "open"
    if not _is_range(context):
        [(key, frame)] = frames.items()
        if frame.height:
            metadata["input_window"] = windows[key.split("|")[1]]
            metadata["forecast"] = dg.MetadataValue.md(
                markdown_table(
                    frame.select(
                        "target_date",
                        "horizon",
                        "last_close",
                        "predicted_close",
                        "predicted_return",
                    )
                )
            )
    if _asset_selected(context, "daily_forecast"):
        yield _output(context, "daily_forecast", frames, metadata)
    yield from checks


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


def training_windows(mlflow: MlflowResource, forecasts: pl.DataFrame) -> dict[str, TrainingWindow]:
    """model_version -> the training window of the version that made those forecasts."""
    windows = {}
    for name, version in forecasts.select("model_name", "model_version").unique().iter_rows():
        bundle = load_bundle(mlflow, name, version)
        windows[version] = TrainingWindow(
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
    check_specs=[FORECAST_MAPE_SPEC],
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
    if _asset_selected(context, "forecast_performance"):
        yield _output(context, "forecast_performance", frames, metadata)
    yield from checks
