"""The sensors of the daily loop: retrain on failed checks, children after the parent, ingestion.

- retraining_sensor reads the watched checks' new evaluations from the instance (a failed check
  does not fail its run, so run-failure sensors never see it), asks `decide_retraining`, and
  requests retrain_job[ticker] or parent_retrain_job, the reason on the run's tags. The daily
  checks are panel evaluations (one per date for every ticker); each one's `results` metadata
  names every ticker's verdict, so one record per date is read, not one per (date, ticker).
- parent_retrain_children_sensor: after a successful parent_retrain_job, every child retrains.
- daily_ingestion_sensor: after each session's close, ingests every ticker and the index, then
  republishes Feast, so the daily schedule's forecasts find the day's prices and features.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from stock_assets.compat import CheckRecordStatus, check_records
from stock_assets.contract import (
    CHILD_MODEL,
    DAILY_FORECAST,
    FEAST_JOB,
    FEATURE_DRIFT,
    FORECAST_MAPE,
    FORECAST_PERFORMANCE,
    INTERVAL_COVERAGE,
    MARKET_DATA_JOB,
    MARKET_INDEX_INDICATORS,
    MARKET_INDEX_PRICES,
    PARENT_MODEL,
    PARENT_RETRAIN_JOB,
    PARTITION_TAG,
    RAW_PRICES,
    RETRAIN_JOB,
    TICKER_DATA_JOB,
)
from stock_assets.execution import INGESTION_RUN_TAGS, TRAINING_RUN_TAGS
from stock_assets.lake import LakeResource
from stock_assets.market_calendar import last_completed_session
from stock_assets.monitoring.retraining import (
    RETRAIN_REASON_TAG,
    RETRAIN_TICKER_TAG,
    CheckEvaluation,
    EvaluationCursor,
    RetrainRequest,
    decide_retraining,
)
from stock_assets.monitoring_settings import MonitoringSettings
from stock_assets.partitions import ticker_partitions
from stock_assets.tickers import MARKET_INDEX_KEY

CHILDREN_TAG = "stock_assets/children"  # plan.CHILDREN_IN_PLAN_TAG's key

# The checks whose failures retrain a model, and how their partitions name a ticker.
WATCHED_CHECK_KEYS: tuple[dg.AssetCheckKey, ...] = (
    dg.AssetCheckKey(dg.AssetKey(FORECAST_PERFORMANCE), FORECAST_MAPE),
    dg.AssetCheckKey(dg.AssetKey(FORECAST_PERFORMANCE), INTERVAL_COVERAGE),
    dg.AssetCheckKey(dg.AssetKey(DAILY_FORECAST), FEATURE_DRIFT),
    dg.AssetCheckKey(dg.AssetKey(MARKET_INDEX_INDICATORS), FEATURE_DRIFT),
)
PAGE = 200


def verdicts_of(
    check_key: dg.AssetCheckKey, partition: str | None, evaluation
) -> list[tuple[str, date | None, bool, str]]:
    """(ticker, date, passed, description) of each ticker one evaluation judged.

    The index's check is about GSPC; a panel check's `results` metadata holds every ticker's
    verdict (an evaluation without it, or without a date partition, names no ticker).
    """
    if check_key.asset_key == dg.AssetKey(MARKET_INDEX_INDICATORS):
        return [(MARKET_INDEX_KEY, None, bool(evaluation.passed), evaluation.description or "")]
    if not partition:
        return []
    day = date.fromisoformat(partition)
    results = getattr(evaluation.metadata.get("results"), "value", None) or {}
    return [
        (ticker, day, bool(verdict.get("passed")), str(verdict.get("description") or ""))
        for ticker, verdict in sorted(results.items())
    ]


def _records_after(
    instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, watermark: int
) -> list:
    """Execution records of a check with id > watermark, oldest first (paged, newest first)."""
    records, before = [], None
    while True:
        page = check_records(instance, check_key, PAGE, before)
        newer = [r for r in page if r.id > watermark]
        records.extend(newer)
        if len(page) < PAGE or len(newer) < len(page):
            break
        before = page[-1].id
    return sorted(records, key=lambda r: r.id)


def read_new_evaluations(
    instance: dg.DagsterInstance, cursor: EvaluationCursor
) -> list[CheckEvaluation]:
    """The watched checks' evaluations not handled yet; advances `cursor` past them.

    A record still PLANNED (its run has not evaluated the check yet) is left for a later tick,
    unless its run has finished without evaluating it.
    """
    found: list[CheckEvaluation] = []
    for check_key in WATCHED_CHECK_KEYS:
        name = check_key.to_user_string()
        handled, pending = [], []
        for record in _records_after(instance, check_key, cursor.watermarks.get(name, 0)):
            if not cursor.is_new(name, record.id):
                continue
            if record.status == CheckRecordStatus.PLANNED:
                run = instance.get_run_by_id(record.run_id) if record.run_id else None
                if run is not None and not run.is_finished:
                    pending.append(record.id)
                else:
                    handled.append(record.id)  # the run ended without evaluating it
                continue
            handled.append(record.id)
            evaluation = record.evaluation
            if evaluation is None:
                continue
            found.extend(
                CheckEvaluation(
                    record_id=record.id,
                    check_name=check_key.name,
                    ticker=ticker,
                    passed=passed,
                    partition_date=day,
                    description=description,
                )
                for ticker, day, passed, description in verdicts_of(
                    check_key, record.partition, evaluation
                )
            )
        cursor.advance(name, handled, pending)
    return found


def last_retrain_times(
    instance: dg.DagsterInstance, tickers: Sequence[str], since: datetime | None = None
) -> dict[str, datetime]:
    """When each ticker's model was last sent to retraining (any status, queued included): runs
    with a retrain reason (sensor, schedule); a first training (the run command's) is not one.

    Two bulk queries (retrain runs, parent retrain runs) since `since` (the cooldown's start: an
    older retrain cannot hold a request back), not one query per ticker.
    """
    wanted = set(tickers)
    times: dict[str, datetime] = {}
    for job in (RETRAIN_JOB, PARENT_RETRAIN_JOB):
        if job == PARENT_RETRAIN_JOB and MARKET_INDEX_KEY not in wanted:
            continue
        if job == RETRAIN_JOB and not wanted - {MARKET_INDEX_KEY}:
            continue
        records = instance.get_run_records(
            filters=dg.RunsFilter(job_name=job, created_after=since), limit=None
        )
        for record in records:  # newest first
            if RETRAIN_REASON_TAG not in record.dagster_run.tags:
                continue
            ticker = (
                MARKET_INDEX_KEY
                if job == PARENT_RETRAIN_JOB
                else record.dagster_run.tags.get(PARTITION_TAG)
            )
            if ticker in wanted and ticker not in times:
                created = record.create_timestamp
                times[ticker] = created if created.tzinfo else created.replace(tzinfo=UTC)
    return times


def retrain_run_config(settings: MonitoringSettings, parent: bool) -> dict:
    """Run config of a sensor-launched retrain: the model config's defaults, except what
    STOCK_ASSETS_RETRAIN_EPOCHS (small machines, tests) and STOCK_ASSETS_RETRAIN_NAIVE_TOLERANCE
    (how close to the naive forecast an unattended retrain may be) set."""
    overrides = {
        "epochs": settings.retrain_epochs,
        "naive_tolerance": settings.retrain_naive_tolerance,
    }
    config = {key: value for key, value in overrides.items() if value is not None}
    if not config:
        return {}
    asset = PARENT_MODEL if parent else CHILD_MODEL
    return {"ops": {asset: {"config": config}}}


def run_request_for(request: RetrainRequest, settings: MonitoringSettings) -> dg.RunRequest:
    tags = {
        **TRAINING_RUN_TAGS,
        RETRAIN_REASON_TAG: request.reason,
        RETRAIN_TICKER_TAG: request.ticker,
    }
    if request.is_parent:
        return dg.RunRequest(
            job_name=PARENT_RETRAIN_JOB,
            run_key=request.run_key,
            tags=tags,
            run_config=retrain_run_config(settings, parent=True),
        )
    return dg.RunRequest(
        job_name=RETRAIN_JOB,
        partition_key=request.ticker,
        run_key=request.run_key,
        tags=tags,
        run_config=retrain_run_config(settings, parent=False),
    )


def build_retraining_sensor(retrain_job, parent_retrain_job) -> dg.SensorDefinition:
    @dg.sensor(
        name="retraining_sensor",
        jobs=[retrain_job, parent_retrain_job],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Retrains a ticker's child model (or the parent, on index drift) when its forecast_mape "
            "or feature_drift check fails; one request per failure, with a cooldown per ticker."
        ),
    )
    def retraining_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        settings = MonitoringSettings.from_env()
        cursor = EvaluationCursor.parse(context.cursor)
        evaluations = read_new_evaluations(context.instance, cursor)
        failing = {e.ticker for e in evaluations if not e.passed}
        decision = decide_retraining(
            evaluations,
            last_retrain_times(
                context.instance, sorted(failing), since=datetime.now(UTC) - settings.retrain_cooldown
            ),
            now=datetime.now(UTC),
            cooldown=settings.retrain_cooldown,
        )
        requests = [run_request_for(r, settings) for r in decision.requests]
        context.log.info(f"{len(evaluations)} new check evaluations: {decision.summary()}")
        return dg.SensorResult(
            run_requests=requests,
            skip_reason=None
            if requests
            else dg.SkipReason(f"{len(evaluations)} new check evaluations; {decision.summary()}"),
            cursor=cursor.serialize(),
        )

    return retraining_sensor


def build_parent_children_sensor(parent_retrain_job, retrain_job) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name="parent_retrain_children_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[parent_retrain_job],
        request_job=retrain_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After the parent model retrains, every child retrains from it.",
    )
    def parent_retrain_children_sensor(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        if CHILDREN_TAG in run.tags:  # the run command trains the children itself, next
            return dg.SkipReason(
                f"parent run {run.run_id[:8]}: {run.tags[CHILDREN_TAG]}, no retrain requested"
            )
        reason = run.tags.get(RETRAIN_REASON_TAG, "parent model retrained")
        tickers = context.instance.get_dynamic_partitions(ticker_partitions.name)
        return [
            dg.RunRequest(
                partition_key=ticker,
                run_key=f"after-parent-{run.run_id}-{ticker}",
                tags={
                    **TRAINING_RUN_TAGS,
                    RETRAIN_TICKER_TAG: ticker,
                    RETRAIN_REASON_TAG: f"parent retrained in run {run.run_id[:8]} ({reason})"[
                        :900
                    ],
                },
                run_config=retrain_run_config(MonitoringSettings.from_env(), parent=False),
            )
            for ticker in tickers
        ]

    return parent_retrain_children_sensor


# --- daily ingestion ----------------------------------------------------------------------------

# Vendors publish the day's bars some minutes after the 16:00 close.
INGESTION_DELAY = timedelta(minutes=20)


@dataclass(frozen=True)
class IngestionStep:
    job_name: str
    partition_key: str | None
    run_key: str
    tags: tuple[tuple[str, str], ...] = ()


def plan_ingestion(
    session: date,
    tickers: Sequence[str],
    up_to_date: set[str],
    finished_run_keys: set[str],
) -> tuple[list[IngestionStep], bool]:
    """The day's ingestion requests, and whether the day is done (Feast requested).

    The index (GSPC) gets its run; every ticker not yet holding `session` is ingested in ONE run
    over the ticker range (a single-run backfill: a ticker that fails its rules is left out and
    named, the others go on). Each request once (its run key). Feast is republished once both have
    finished, whatever their outcome, so one failing ticker cannot hold back the others' forecasts.
    """
    from stock_assets.compat import partition_range_tags

    steps: list[IngestionStep] = []
    waiting = False
    index_key = f"ingest-{session}-{MARKET_INDEX_KEY}"
    if MARKET_INDEX_KEY not in up_to_date and index_key not in finished_run_keys:
        waiting = True
        steps.append(IngestionStep(MARKET_DATA_JOB, None, index_key))
    stale = [t for t in tickers if t not in up_to_date]
    universe_key = f"ingest-{session}-universe"
    if stale and universe_key not in finished_run_keys:
        waiting = True
        first, last = tickers.index(stale[0]), tickers.index(stale[-1])
        tags = partition_range_tags(tickers[first], tickers[last])
        steps.append(IngestionStep(TICKER_DATA_JOB, None, universe_key, tuple(tags.items())))
    if waiting:
        return steps, False
    return [IngestionStep(FEAST_JOB, None, f"feast-{session}")], True


def build_daily_ingestion_sensor(
    ticker_data_job, market_data_job, feast_job
) -> dg.SensorDefinition:
    @dg.sensor(
        name="daily_ingestion_sensor",
        jobs=[ticker_data_job, market_data_job, feast_job],
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "After each NYSE session's close: ingest ^GSPC and every ticker (one run for the "
            "universe), then republish Feast "
            "(the daily_schedule's forecasts read both). Turn on with daily_schedule."
        ),
    )
    def daily_ingestion_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
        session = last_completed_session(datetime.now(UTC) - INGESTION_DELAY)
        if context.cursor == session.isoformat():
            return dg.SkipReason(
                f"{session} is ingested and published; waiting for the next close."
            )
        tickers = context.instance.get_dynamic_partitions(ticker_partitions.name)
        up_to_date = set()
        for ticker in [MARKET_INDEX_KEY, *tickers]:
            last = lake.last_date(  # from the Parquet footer's statistics: cheap at 500 tickers
                MARKET_INDEX_PRICES if ticker == MARKET_INDEX_KEY else RAW_PRICES,
                None if ticker == MARKET_INDEX_KEY else ticker,
            )
            if last is not None and last >= session:
                up_to_date.add(ticker)
        keys = [f"ingest-{session}-{MARKET_INDEX_KEY}", f"ingest-{session}-universe"]
        finished = {
            record.dagster_run.tags.get("dagster/run_key")
            for record in context.instance.get_run_records(
                filters=dg.RunsFilter(tags={"stock_assets/ingestion_day": session.isoformat()})
            )
            if record.dagster_run.is_finished
        } & set(keys)
        steps, done = plan_ingestion(session, tickers, up_to_date, finished)
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    job_name=step.job_name,
                    partition_key=step.partition_key,
                    run_key=step.run_key,
                    tags={
                        **INGESTION_RUN_TAGS,
                        "stock_assets/ingestion_day": session.isoformat(),
                        **dict(step.tags),
                    },
                )
                for step in steps
            ],
            cursor=session.isoformat() if done else context.cursor,
        )

    return daily_ingestion_sensor
