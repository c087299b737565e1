"""daily_forecast: one partition per (trading date, ticker); forecast_performance is beside it.

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

from stock_assets.calendar import is_session
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
from stock_assets.forecasting.models import ForecastModel, resolve_forecast_model
from stock_assets.forecasting.walk_forward import (
    WalkForwardConfig,
    forecast_refits,
    mlflow_register,
    walk_forward_refits,
)
from stock_assets.lake import LakeResource
from stock_assets.metadata import markdown_table
from stock_assets.modeling.registry import MlflowResource
from stock_assets.monitoring.checks import FEATURE_DRIFT, FEATURE_DRIFT_SPEC, run_drift_check
from stock_assets.monitoring.schedules import DAILY_DATE_TAG
from stock_assets.monitoring.settings import MonitoringSettings
from stock_assets.partitions import date_ticker_partitions
from stock_assets.quantiles import INTERVALS, QUANTILE_COLUMNS

# Scheduled runs whose prices are late retry this often, this far apart.
SCHEDULED_RETRIES = 3
RETRY_SECONDS = 600
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


def forecast_fan_chart(frame: pl.DataFrame, prices: pl.DataFrame, title: str) -> dg.MetadataValue:
    """The last 60 closes up to the forecast date, then its median and 50/80/90 % bands."""
    from stock_assets.charts import fan_chart

    as_of = frame["as_of_date"][0]
    history = prices.filter(pl.col("date") <= as_of).tail(60)
    return fan_chart(
        history["date"].to_list(), history["close"].to_list(), frame["target_date"].to_list(),
        frame.select(QUANTILE_COLUMNS).to_numpy(), title,
        point=frame["predicted_close"].to_list(),
    )


def model_reliability_chart(mlflow: MlflowResource, model: ForecastModel) -> dg.MetadataValue:
    """Nominal vs observed coverage of the forecasting model's bands (and the volatility
    baselines') on its own test windows, as its MLflow run logged them."""
    from stock_assets.charts import reliability_chart
    from stock_assets.modeling.uncertainty import VOL_BASELINES

    metrics = mlflow.run_metrics(model.run_id)
    observed = {
        label: {n: metrics[f"{prefix}_coverage_{n}_hH"] for n in (50, 80, 90)}
        for label, prefix in [("model", "test"), *[(b, b) for b in VOL_BASELINES]]
        if all(f"{prefix}_coverage_{n}_hH" in metrics for n in (50, 80, 90))
    }
    return reliability_chart(observed, f"{model.label()}: coverage at the last step (test windows)")


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


def _walk_forward(
    context: dg.AssetExecutionContext,
    config: WalkForwardConfig,
    ticker: str,
    sessions: list[date],
    prices: pl.DataFrame,
    feature_store: FeatureStoreResource,
    mlflow: MlflowResource,
    lake: LakeResource,
    created_at: datetime,
) -> tuple[dict[date, pl.DataFrame], pl.DataFrame]:
    """Forecasts of `sessions` by children refitted every `refit_every` sessions on data before
    each block (forecasting.walk_forward), and a table of the refits for the metadata."""
    from datetime import timedelta

    from stock_assets.datasets.assets import feature_history
    from stock_assets.datasets.windows import SplitConfig
    from stock_assets.tickers import MARKET_INDEX_KEY

    for day in sessions:
        try:
            require_price_row(prices, day, ticker)
        except InputsNotReady as exc:
            raise dg.Failure(str(exc)) from exc
    indicators = lake.read("price_indicators", ticker)  # the dates Feast has rows for
    history = feature_history(feature_store, ticker, indicators, None, sessions[-1].isoformat())
    index = lake.read("market_index_indicators")
    index_history = feature_history(
        feature_store, MARKET_INDEX_KEY, index, None, (sessions[0] - timedelta(days=1)).isoformat()
    )
    split = SplitConfig()
    refits = walk_forward_refits(
        ticker=ticker, sessions=sessions, history=history, index_history=index_history,
        config=config, split=split,
        register=mlflow_register(mlflow, config.strategy, context.run.run_id),
        log=context.log.info,
    )
    forecasts = forecast_refits(
        refits, ticker=ticker, prices=prices, features=history, created_at=created_at
    )
    table = pl.DataFrame(
        {
            "version": [r.version for r in refits],
            "train_start": [r.bundle.train_start for r in refits],
            "train_end": [r.bundle.train_end for r in refits],
            "forecasts": [f"{r.sessions[0]}..{r.sessions[-1]}" for r in refits],
        }
    )
    return forecasts, table


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
    config: WalkForwardConfig,
    raw_prices: pl.DataFrame,
    mlflow: MlflowResource,
    feature_store: FeatureStoreResource,
    lake: LakeResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Tomorrow's and the next sessions' closes per ticker, point-in-time, with model lineage:
    the production model's, or in a range run with `refit_every`, a walk-forward's refits'."""
    settings = MonitoringSettings.from_env()
    created_at = datetime.now(UTC)
    frames: dict[str, pl.DataFrame] = {}
    checks: list[dg.AssetCheckResult] = []
    closed: list[str] = []
    models: dict[str, str] = {}
    windows: dict[str, str] = {}
    refit_tables: dict[str, pl.DataFrame] = {}
    resolved: dict[str, ForecastModel] = {}
    for ticker, days in split_partition_keys(context.partition_keys).items():
        sessions = [d for d in days if is_session(d)]
        for day in days:
            if day not in sessions:
                frames[partition_key(day, ticker)] = empty_forecast()
                closed.append(partition_key(day, ticker))
        if not sessions:
            continue
        prices = prices_of(raw_prices, ticker)
        if config.refit_every and _is_range(context):
            forecasts, refits = _walk_forward(
                context, config, ticker, sessions, prices, feature_store, mlflow, lake, created_at
            )
            frames |= {partition_key(day, ticker): frame for day, frame in forecasts.items()}
            models[ticker] = f"walk-forward: {len(refits)} refits every {config.refit_every}"
            refit_tables[ticker] = refits
            continue
        model = resolve_forecast_model(mlflow, ticker)
        models[ticker] = model.label()
        resolved[ticker] = model
        length = max(model.bundle.context_length, settings.drift_window) + WINDOW_MARGIN
        features = _point_in_time_features(context, feature_store, prices, ticker, sessions, length)
        forecasts = forecast_dates(
            ticker=ticker,
            as_of_dates=sessions,
            prices=prices,
            features=features,
            network=model.network,
            scaler=model.bundle.feature_scaler(),
            spread=model.spread,
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
    for ticker, refits in refit_tables.items():
        metadata[f"walk_forward_{ticker}"] = dg.MetadataValue.md(markdown_table(refits))
    if not _is_range(context):
        [(key, frame)] = frames.items()
        if frame.height:
            ticker = key.split("|")[1]
            metadata["input_window"] = windows[ticker]
            metadata["forecast"] = dg.MetadataValue.md(
                markdown_table(
                    frame.select(
                        "target_date", "horizon", "last_close", "predicted_close",
                        *INTERVALS[80], "p_up",
                    )
                )
            )
            metadata["fan_chart"] = forecast_fan_chart(
                frame, prices_of(raw_prices, ticker), f"{ticker} as of {frame['as_of_date'][0]}"
            )
            if ticker in resolved:
                metadata["reliability_diagram"] = model_reliability_chart(mlflow, resolved[ticker])
            last = frame.row(frame.height - 1, named=True)
            metadata["range_80_last_step"] = dg.MetadataValue.text(
                f"{last['close_q10']:.2f}..{last['close_q90']:.2f} on {last['target_date']} "
                f"(p_up {last['p_up']:.2f})"
            )
    if _asset_selected(context, "daily_forecast"):
        yield _output(context, "daily_forecast", frames, metadata)
    yield from checks


