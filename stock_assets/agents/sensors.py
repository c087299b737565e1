"""The daily report follows the daily forecast: when a `daily_job` run for a date succeeds,
`daily_report_sensor` requests `reports_job` for the same date and the same tickers (the run's
`stock_assets/tickers` tag, if it had one).

Why a separate run and not a step of daily_job: an LLM report can take minutes (a local Ollama on
a CPU), and the forecast, its scores and checks must not wait for it or fail with it. The reports
run is tagged as its own kind so the run queue can limit it apart from the daily runs.
"""

from __future__ import annotations

import dagster as dg

from stock_assets.contract import AGENT_REPORT, PARTITION_TAG, REPORTS_JOB
from stock_assets.execution import RUN_KIND_TAG

REPORT_RUN_TAGS: dict[str, str] = {RUN_KIND_TAG: "reports"}

reports_job = dg.define_asset_job(
    REPORTS_JOB,
    selection=dg.AssetSelection.assets(AGENT_REPORT),
    tags=REPORT_RUN_TAGS,
    description="The agent reports of one date (every ticker forecast that day), after the daily forecast.",
)


def report_request_for(run: dg.DagsterRun) -> dg.RunRequest | dg.SkipReason:
    """One report run per successful daily run, for its partition; run key = the daily run, so a
    re-evaluated tick never requests the same report twice."""
    from datetime import date

    from stock_assets.partitions import TICKERS_TAG

    partition = run.tags.get(PARTITION_TAG)
    try:
        date.fromisoformat(partition or "")
    except ValueError:
        return dg.SkipReason(f"daily run {run.run_id} has no single-date partition tag")
    tags = {"stock_assets/after_run": run.run_id}
    if TICKERS_TAG in run.tags:
        tags[TICKERS_TAG] = run.tags[TICKERS_TAG]
    return dg.RunRequest(run_key=f"report-{run.run_id}", partition_key=partition, tags=tags)


def build_daily_report_sensor(daily_job, job=reports_job) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        name="daily_report_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[daily_job],
        request_job=job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After each successful daily_job run, write that date's agent reports.",
    )
    def daily_report_sensor(context: dg.RunStatusSensorContext):
        return report_request_for(context.dagster_run)

    return daily_report_sensor
