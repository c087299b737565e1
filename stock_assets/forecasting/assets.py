"""daily_forecast: one partition per trading date, every ticker's forecast of that date (a panel).

The asset takes one date (the daily job: the whole universe in one run, one model load per
ticker) or a date range in a single run (a back-test: `BackfillPolicy.single_run()`). A run
computes the tickers of its `stock_assets/tickers` tag (default: every registered ticker) and
returns `PanelFrames`, which the lake's IO manager writes as one file per (ticker, date): a
one-ticker backfill rewrites no other ticker's file.

Its check, feature_drift, is evaluated only in single-date runs, i.e. by the daily job: a back-test
over past dates is an analysis, and must not make the retraining sensor retrain today's model.
That is why this is a `multi_asset` with `can_subset=True`: its check output is optional.

Features: ONE point-in-time offline retrieval for every ticker's window; for a ticker's latest
session (the live case) the last row is the online store's, read in ONE call for all tickers and
checked against the offline row (inference.serve_online_row): no training/serving skew. A past
date (a back-test, a re-run) reads the offline store only: the online store holds only each
ticker's latest row, and the point-in-time join is the record of what was known then.
"""

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from stock_assets.contract import (
    CHILD_MODEL,
    DAILY_DATE_TAG,
    DAILY_FORECAST,
    FEAST_FEATURES,
    MARKET_INDEX_INDICATORS,
    PRICE_INDICATORS,
    RAW_PRICES,
)
from stock_assets.features.feature_store import FeatureStoreResource
from stock_assets.forecasting.checks import (
    FEATURE_DRIFT,
    FEATURE_DRIFT_SPEC,
    CheckOutcome,
    panel_check_result,
    run_drift_check,
)
from stock_assets.forecasting.forecast_metadata import (
    feature_store_metadata,
    forecast_fan_chart,
    last_step_summary,
    model_reliability_chart,
    training_reference,
)
from stock_assets.forecasting.inference import (
    WINDOW_MARGIN,
    InputsNotReady,
    OnlineSkew,
    empty_forecast,
    forecast_dates,
    input_dates,
    require_price_row,
    serve_online_row,
    verify_feature_rows,
)
from stock_assets.forecasting.model_choice import ForecastModel, resolve_forecast_model
from stock_assets.forecasting.panels import (
    EVERY_TICKER,
    asset_selected,
    check_selected,
    is_range,
    panel_dates_metadata,
    panel_failure,
    panel_start,
    skipped_table,
)
from stock_assets.forecasting.walk_forward import (
    WalkForwardConfig,
    forecast_refits,
    mlflow_register,
    walk_forward_refits,
)
from stock_assets.lake import LakeReadError, LakeResource
from stock_assets.metadata import markdown_table
from stock_assets.modeling.registry import MlflowResource
from stock_assets.monitoring_settings import MonitoringSettings
from stock_assets.partitions import trading_date_partitions
from stock_assets.quantiles import INTERVALS

# Scheduled runs whose prices are late retry this often, this far apart.
SCHEDULED_RETRIES = 3
RETRY_SECONDS = 600


def _needed_dates(prices: pl.DataFrame, ticker: str, sessions: list[date], length: int) -> list[date]:
    """The dates the sessions' input windows read, after checking each session has its prices."""
    for day in sessions:  # every date needs its own price row, before any work is done
        require_price_row(prices, day, ticker)
    first = input_dates(prices["date"], sessions[0], length)[0]
    return prices.filter(pl.col("date").is_between(first, sessions[-1]))["date"].to_list()


def _drift_outcome(
    feature_store: FeatureStoreResource,
    lake: LakeResource,
    model: ForecastModel,
    prices: pl.DataFrame,
    features: pl.DataFrame,
    day: date,
    settings: MonitoringSettings,
    reports: str = "all",
) -> CheckOutcome:
    """feature_drift of one ticker on `day`: its last sessions vs its model's training window."""
    from stock_assets.datasets.windows import MODEL_FEATURES, model_feature_frame

    recent = model_feature_frame(features.filter(pl.col("date") <= day)).tail(settings.drift_window)
    outcome = run_drift_check(
        reference=training_reference(lake, model).select(MODEL_FEATURES),
        current=recent.select(MODEL_FEATURES),
        columns=MODEL_FEATURES,
        settings=settings,
        ticker=model.ticker,
        as_of=day,
        reference_window=(model.train_start, model.train_end),
        home=feature_store.home,
        reports=reports,
    )
    outcome.metadata["model_version"] = model.label()
    return outcome


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
        require_price_row(prices, day, ticker)
    indicators = lake.read(PRICE_INDICATORS, ticker)  # the dates Feast has rows for
    history = feature_history(feature_store, ticker, indicators, None, sessions[-1].isoformat())
    index = lake.read(MARKET_INDEX_INDICATORS)
    index_history = feature_history(
        feature_store, MARKET_INDEX_KEY, index, None, (sessions[0] - timedelta(days=1)).isoformat()
    )
    refits = walk_forward_refits(
        ticker=ticker, sessions=sessions, history=history, index_history=index_history,
        config=config, split=SplitConfig(),
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


def _online_rows(
    feature_store: FeatureStoreResource, tickers: list[str]
) -> tuple[dict[str, dict[str, object]], float]:
    """The online store's latest row of each ticker, in ONE call, and the seconds it took."""
    if not tickers:
        return {}, 0.0
    started = time.perf_counter()
    try:
        frame = feature_store.online(tickers)
    except Exception as exc:  # Redis down, a missing registry: say which store, then fail
        raise dg.Failure(
            f"daily_forecast: the Feast online store ({feature_store.online_store}) could not be "
            f"read for {len(tickers)} tickers: {type(exc).__name__}: {exc}",
            allow_retries=False,
        ) from exc
    rows = {row["ticker"]: row for row in frame.iter_rows(named=True)}
    return rows, time.perf_counter() - started


# --- daily_forecast -----------------------------------------------------------------------------


@dg.multi_asset(
    name=DAILY_FORECAST,
    outs={
        DAILY_FORECAST: dg.AssetOut(
            description=(
                "Every ticker's forecast for the next `horizon` sessions by its production child "
                "model (else its newest version whose blocking checks passed; none: skipped), "
                "made from inputs ending on the partition's date (one lake file per ticker; zero "
                "rows when the NYSE is closed)."
            ),
            group_name="forecasting",
            kinds={"pytorch", "feast", "parquet"},
            is_required=False,
        )
    },
    # Read by path per ticker (a panel date needs each ticker's rows up to that date only).
    deps=[
        dg.AssetDep(RAW_PRICES, partition_mapping=EVERY_TICKER),
        dg.AssetDep(CHILD_MODEL, partition_mapping=EVERY_TICKER),
        dg.AssetDep(FEAST_FEATURES),
    ],
    check_specs=[FEATURE_DRIFT_SPEC],
    partitions_def=trading_date_partitions,
    can_subset=True,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def daily_forecast(
    context: dg.AssetExecutionContext,
    config: WalkForwardConfig,
    mlflow: MlflowResource,
    feature_store: FeatureStoreResource,
    lake: LakeResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Tomorrow's and the next sessions' closes of every ticker, point-in-time, with model lineage:
    the production model's, or in a range run with `refit_every`, a walk-forward's refits'."""
    settings = MonitoringSettings.from_env()
    created_at = datetime.now(UTC)
    days, sessions, tickers, frames = panel_start(context, empty_forecast)
    drift: dict[str, CheckOutcome] = {}
    summaries: list[dict[str, object]] = []
    skipped: dict[str, str] = {}
    not_ready: dict[str, str] = {}
    refit_tables: dict[str, pl.DataFrame] = {}
    single: tuple[str, pl.DataFrame, pl.DataFrame, ForecastModel | None, str] | None = None
    judge_drift = not is_range(context) and check_selected(context, DAILY_FORECAST, FEATURE_DRIFT)
    walk_forward = bool(config.refit_every) and is_range(context)
    # 1. Per ticker: its prices, its model, the dates its input windows need.
    planned: dict[str, tuple[pl.DataFrame, ForecastModel, list[date]]] = {}
    done: dict[str, tuple[dict[date, pl.DataFrame], str, str]] = {}  # walk-forward results
    for ticker in tickers if sessions else []:
        try:
            prices = lake.read(RAW_PRICES, ticker).sort("date")
            if walk_forward:
                forecasts, refit_tables[ticker] = _walk_forward(
                    context, config, ticker, sessions, prices, feature_store, mlflow, lake,
                    created_at,
                )
                label = f"walk-forward: {refit_tables[ticker].height} refits every {config.refit_every}"
                done[ticker] = (forecasts, label, "")
                continue
            model = resolve_forecast_model(mlflow, ticker)
            length = max(model.bundle.context_length, settings.drift_window) + WINDOW_MARGIN
            planned[ticker] = (prices, model, _needed_dates(prices, ticker, sessions, length))
        except InputsNotReady as exc:
            not_ready[ticker] = str(exc)
        except (dg.Failure, LakeReadError, ValueError) as exc:
            skipped[ticker] = getattr(exc, "description", None) or str(exc)
            context.log.warning(f"daily_forecast: {ticker} skipped: {skipped[ticker]}")
    # 2. ONE point-in-time Feast retrieval for every ticker's windows.
    histories = feature_store.history_many({t: p[2] for t, p in planned.items()}) if planned else {}
    # 2b. The live case (a single date that is a ticker's newest prices): ONE online call.
    newest = {t: p[0]["date"].max() for t, p in planned.items()}
    live = [] if is_range(context) else [t for t in planned if newest[t] == sessions[-1]]
    online_rows, online_seconds = _online_rows(feature_store, live)
    served: dict[str, str] = {}
    skew: list[str] = []
    # 3. Per ticker: check the rows are the dates', forecast in one forward pass, judge drift.
    for ticker, (prices, model, _) in planned.items():
        try:
            features = histories[ticker]
            verify_feature_rows(features, prices, ticker)
            if ticker in live:
                features = serve_online_row(features, online_rows.get(ticker), ticker, sessions[-1])
            served[ticker] = "online" if ticker in live else "offline"
            forecasts = forecast_dates(
                ticker=ticker, as_of_dates=sessions, prices=prices, features=features,
                network=model.network, scaler=model.bundle.feature_scaler(),
                spread=model.spread, context_length=model.bundle.context_length,
                model_name=model.name, model_version=model.version, created_at=created_at,
            )
            span = input_dates(prices["date"], sessions[-1], model.bundle.context_length)
            done[ticker] = (forecasts, model.label(), f"{span[0]}..{span[-1]} ({len(span)} sessions)")
            if judge_drift:
                drift[ticker] = _drift_outcome(
                    feature_store, lake, model, prices, features, sessions[0], settings,
                    settings.drift_report_for(len(planned)),
                )
        except InputsNotReady as exc:
            not_ready[ticker] = str(exc)
        except (dg.Failure, LakeReadError, ValueError) as exc:
            skew += [ticker] if isinstance(exc, OnlineSkew) else []
            skipped[ticker] = getattr(exc, "description", None) or str(exc)
            context.log.warning(f"daily_forecast: {ticker} skipped: {skipped[ticker]}")
    for ticker in sorted(done):
        forecasts, label, window = done[ticker]
        frames.update({(day.isoformat(), ticker): frame for day, frame in forecasts.items()})
        last = forecasts[sessions[-1]]
        summaries.append(last_step_summary(ticker, last, label, served.get(ticker, "offline")))
        model = planned[ticker][1] if ticker in planned else None
        single = (ticker, last, lake.read(RAW_PRICES, ticker).sort("date") if len(done) == 1 else None,
                  model, window)

    if not_ready:
        if context.run.tags.get(DAILY_DATE_TAG) and context.retry_number < SCHEDULED_RETRIES:
            # A scheduled run whose prices are late: try again later rather than fail the day.
            context.log.warning(
                f"inputs not ready for {len(not_ready)} tickers ({', '.join(list(not_ready)[:5])}); "
                f"retrying in {RETRY_SECONDS // 60} minutes."
            )
            raise dg.RetryRequested(max_retries=SCHEDULED_RETRIES, seconds_to_wait=RETRY_SECONDS)
        skipped.update(not_ready)
    if sessions and not summaries:
        raise panel_failure(DAILY_FORECAST, skipped)

    metadata: dict[str, object] = {
        **panel_dates_metadata(days, sessions),
        "tickers_forecast": len(summaries),
        "tickers_skipped": len(skipped),
        **feature_store_metadata(
            feature_store.online_store, {t: served.get(t, "offline") for t in done}, skew,
            online_seconds if live else None,
        ),
    }
    if summaries:
        metadata["forecasts"] = dg.MetadataValue.md(
            f"Last step of each ticker's forecast as of {sessions[-1]}:\n\n"
            + markdown_table(pl.DataFrame(summaries))
        )
    if skipped:
        metadata["skipped"] = skipped_table(skipped)
    for ticker, refits in refit_tables.items():
        metadata[f"walk_forward_{ticker}"] = dg.MetadataValue.md(markdown_table(refits))
    if single is not None and len(summaries) == 1 and not is_range(context):
        ticker, frame, prices, model, window = single
        metadata["input_window"] = window
        metadata["forecast"] = dg.MetadataValue.md(
            markdown_table(
                frame.select(
                    "target_date", "horizon", "last_close", "predicted_close", *INTERVALS[80],
                    "p_up",
                )
            )
        )
        metadata["fan_chart"] = forecast_fan_chart(frame, prices, f"{ticker} as of {sessions[0]}")
        if model is not None:
            metadata["reliability_diagram"] = model_reliability_chart(mlflow, model)
        last = frame.row(frame.height - 1, named=True)
        metadata["range_80_last_step"] = dg.MetadataValue.text(
            f"{last['close_q10']:.2f}..{last['close_q90']:.2f} on {last['target_date']} "
            f"(p_up {last['p_up']:.2f})"
        )
    if asset_selected(context, DAILY_FORECAST):
        yield dg.Output(frames, output_name=DAILY_FORECAST, metadata=metadata)
    if judge_drift and sessions:
        yield panel_check_result(DAILY_FORECAST, FEATURE_DRIFT, drift, sessions[0], skipped)
