"""Production scenarios on the real stack (conftest.py): the daily job whose failed check makes the
retraining sensor retrain the ticker, and a daemon that crashes between sensor ticks and resumes
from the sensor's stored cursor without duplicating or losing a retrain request.

Each test runs as soon as the code location defines what it needs (`daily_job`, `retrain_job`,
`retraining_sensor`, `daily_schedule`); until then it is skipped, saying what is missing.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from typing import Any

import dagster as dg
import pytest

from stock_assets.testing import TINY_MODEL

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("production_stack")]

SENSOR = "retraining_sensor"
RETRAIN_JOB = "retrain_job"
REPORTS_JOB = "reports_job"
REPORT_SENSOR = "daily_report_sensor"
DAILY_JOB = "daily_job"
DAILY_SCHEDULE = "daily_schedule"
WATCHED_CHECKS = ("forecast_mape", "feature_drift")
REASON_TAG = "stock_assets/retrain_reason"
SENSOR_TAG = "dagster/sensor_name"
RUN_KEY_TAG = "dagster/run_key"
# The environment that makes the forecast_mape check fail on any real forecast, so the scenario
# is deterministic. The monitoring stage must read its threshold from this variable.
FAILING_CHECK_ENV = {"STOCK_ASSETS_MAPE_THRESHOLD": "0.000001"}
# Sensor-launched retrains fine-tune the tiny child for one epoch, with TINY_MODEL's tolerance:
# on the noise-like synthetic market a retrain may land just above the naive forecast, and its
# blocking check would then fail a scenario that is about the loop, not about forecast skill.
RETRAIN_ENV = {"STOCK_ASSETS_RETRAIN_EPOCHS": "1",
               "STOCK_ASSETS_RETRAIN_NAIVE_TOLERANCE": str(TINY_MODEL["naive_tolerance"])}
MODEL_ASSETS = ("parent_model", "child_model")


@functools.cache
def defined() -> dict[str, set[str]]:
    """Names of the jobs, sensors, schedules and checks the code location defines."""
    try:
        from stock_assets.definitions import defs
    except Exception:  # noqa: BLE001 - a broken code location fails the definitions tests, not these
        return {"jobs": set(), "sensors": set(), "schedules": set(), "checks": set()}
    return {
        "jobs": {job.name for job in defs.jobs or []},
        "sensors": {sensor.name for sensor in defs.sensors or []},
        "schedules": {schedule.name for schedule in defs.schedules or []},
        "checks": {key.name for key in defs.resolve_asset_graph().asset_check_keys},
    }


def missing(jobs: Iterable[str] = (), sensors: Iterable[str] = (), schedules: Iterable[str] = (),
            checks: Iterable[str] = ()) -> list[str]:
    names = defined()
    return ([f"job {n}" for n in jobs if n not in names["jobs"]]
            + [f"sensor {n}" for n in sensors if n not in names["sensors"]]
            + [f"schedule {n}" for n in schedules if n not in names["schedules"]]
            + [f"check {n}" for n in checks if n not in names["checks"]])


def needs(**names: Iterable[str]) -> pytest.MarkDecorator:
    absent = missing(**names)
    return pytest.mark.skipif(bool(absent), reason=f"not defined yet: {', '.join(absent)}")


# --- helpers over the code location -------------------------------------------------------------------


def partition_key_for(partitions_def: dg.PartitionsDefinition | None, ticker: str, day: str) -> str | None:
    """The partition of `partitions_def` for one ticker on one day (None when unpartitioned)."""
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return str(dg.MultiPartitionKey({
            dim.name: ticker if isinstance(dim.partitions_def, dg.DynamicPartitionsDefinition) else day
            for dim in partitions_def.partitions_defs
        }))
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return ticker
    return day


def partition_tags(partition_key: str | None) -> dict[str, str]:
    """The tags the UI puts on a run of one partition (per dimension too, for multi-partitions)."""
    if partition_key is None:
        return {}
    return {"dagster/partition": partition_key}


def model_run_config(assets: Iterable[str]) -> dict[str, Any]:
    """Tiny training for the model assets among `assets`, sent as the Launchpad's config editor
    sends it: with the default config the parent fails its blocking not_worse_than_naive check on
    the noise-like synthetic market, and nothing downstream runs (TINY_MODEL's tolerance is 10)."""
    ops = {asset: {"config": TINY_MODEL} for asset in assets if asset in MODEL_ASSETS}
    return {"ops": ops} if ops else {}


def watched_checks() -> list[tuple[dg.AssetCheckKey, dg.PartitionsDefinition | None]]:
    from stock_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    return [(key, graph.get(key.asset_key).partitions_def)
            for key in graph.asset_check_keys if key.name in WATCHED_CHECKS]


def sensor_interval() -> int:
    from stock_assets.definitions import defs

    sensor = next(s for s in defs.sensors or [] if s.name == SENSOR)
    return int(sensor.minimum_interval_seconds or 30)


def ensure_sensor_running(stack, name: str) -> None:
    data = stack.graphql("""query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
        __typename ... on Sensor { sensorState { status } } } }""",
                         {"selector": {**stack.repository_selector, "sensorName": name}})
    if data["sensorOrError"]["sensorState"]["status"] != "RUNNING":
        stack.start_sensor(name)


def sensor_state(stack) -> dict[str, Any]:
    data = stack.graphql("""query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
        __typename ... on Sensor { sensorState {
          typeSpecificData { ... on SensorData { lastCursor } }
          ticks(limit: 50) { tickId status timestamp runIds skipReason error { message } }
        } } } }""", {"selector": {**stack.repository_selector, "sensorName": SENSOR}})
    state = data["sensorOrError"]["sensorState"]
    return {"cursor": (state["typeSpecificData"] or {}).get("lastCursor"), "ticks": state["ticks"]}


def retrain_runs(stack) -> list[dict[str, Any]]:
    runs = stack.runs({"tags": [{"key": SENSOR_TAG, "value": SENSOR}]})
    return [{**run, "tags": {t["key"]: t["value"] for t in run["tags"]}} for run in runs]


def report_failed_check(stack, check_key: dg.AssetCheckKey, partition: str | None,
                        ticker: str) -> None:
    """Record a failed evaluation of a watched check, as a check run would (runless event): a
    panel check's evaluation names the ticker in its `results`."""
    instance = stack.instance()
    try:
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=check_key.asset_key, check_name=check_key.name, passed=False,
            partition=partition, metadata={
                "reason": "injected by the daemon-restart test",
                "results": {ticker: {"passed": False, "description": "injected"}},
            },
        ))
    finally:
        instance.dispose()


# --- scenarios --------------------------------------------------------------------------------------


@needs(jobs=(DAILY_JOB, RETRAIN_JOB, REPORTS_JOB), sensors=(SENSOR, REPORT_SENSOR), schedules=(DAILY_SCHEDULE,),
       checks=("forecast_mape",))
def test_a_failed_check_in_the_daily_job_makes_the_sensor_retrain_the_ticker(start_stack):
    from datetime import date

    from stock_assets.definitions import defs
    from stock_assets.plan import plan_stages

    stack = start_stack("daily", env={**FAILING_CHECK_ENV, **RETRAIN_ENV})
    synthetic_end = stack.env["STOCK_ASSETS_SYNTHETIC_END"]
    ticker = "NVDA"
    stack.add_dynamic_partition("ticker", ticker)

    # The daily schedule is loaded in the production code location and targets the daily job.
    schedule = stack.graphql("""query($s: ScheduleSelector!) { scheduleOrError(scheduleSelector: $s) {
        __typename ... on Schedule { pipelineName cronSchedule } } }""",
                             {"s": {**stack.repository_selector, "scheduleName": DAILY_SCHEDULE}})
    assert schedule["scheduleOrError"]["pipelineName"] == DAILY_JOB

    # What the daily job reads: the CLI's plan up to the models, each step launched as the UI would
    # (no tuning study: this test is about the sensor, and its models do not use tuned values).
    stages = plan_stages([ticker], as_of={ticker: date.fromisoformat(synthetic_end)}, workers=1,
                         groups=("data", "models"), tuning_trials=0)
    for launch in [launch for stage in stages for launch in stage.launches]:
        assets = [k.to_user_string() for k in defs.resolve_job_def(launch.job).asset_layer.executable_asset_keys]
        run_id = stack.launch_run(launch.job, tags={**dict(launch.tags), **partition_tags(launch.partition_key)},
                                  run_config=model_run_config(assets))
        assert stack.wait_for_run(run_id, timeout=600) == "SUCCESS", f"{launch.label}\n{stack.logs()}"

    ensure_sensor_running(stack, SENSOR)
    daily_key = partition_key_for(defs.resolve_job_def(DAILY_JOB).partitions_def, ticker, synthetic_end)
    daily_run = stack.launch_run(DAILY_JOB, tags=partition_tags(daily_key))
    assert stack.wait_for_run(daily_run, timeout=600) == "SUCCESS", stack.logs()

    failed = {row[0] for row in stack.sql(
        "SELECT check_name FROM asset_check_executions WHERE run_id = %s AND execution_status = 'FAILED'",
        (daily_run,))}
    assert "forecast_mape" in failed, f"checks failed in the daily run: {failed}"

    interval = sensor_interval()
    [retrain] = stack_wait_for_retrains(stack, count=1, timeout=3 * interval + 120)
    assert retrain["jobName"] == RETRAIN_JOB
    assert retrain["tags"][REASON_TAG]
    assert ticker in retrain["tags"].get("dagster/partition", "")
    assert stack.wait_for_run(retrain["runId"], timeout=600) == "SUCCESS", stack.logs()

    # The day's agent report follows the daily run in a run of its own (daily_report_sensor); with
    # Ollama and Qdrant down, the deterministic analyst writes it.
    def report_runs() -> list[dict[str, Any]] | None:
        return stack.runs({"tags": [{"key": SENSOR_TAG, "value": REPORT_SENSOR}]}) or None

    [report] = stack.wait_until(report_runs, 3 * 30 + 120, "the daily report's run", interval=2.0)
    assert report["jobName"] == REPORTS_JOB
    assert stack.wait_for_run(report["runId"], timeout=600) == "SUCCESS", stack.logs()
    report_tags = {t["key"]: t["value"] for t in report["tags"]}
    assert report_tags["dagster/partition"] == daily_key
    assert report_tags["stock_assets/after_run"] == daily_run


def stack_wait_for_retrains(stack, count: int, timeout: float) -> list[dict[str, Any]]:
    """Wait until the sensor has requested `count` retrain runs; fail if it requests more."""
    def enough() -> list[dict[str, Any]] | None:
        runs = retrain_runs(stack)
        return runs if len(runs) >= count else None

    try:
        runs = stack.wait_until(enough, timeout, f"{count} retrain request(s)", interval=2.0)
    except TimeoutError as exc:  # say what the sensor decided on each tick
        ticks = [(t["status"], t.get("skipReason"), t.get("runIds")) for t in sensor_state(stack)["ticks"]]
        runs = [(r.get("jobName"), r.get("status"), {t["key"]: t["value"] for t in r["tags"]})
                for r in stack.runs({})]
        raise TimeoutError(f"{str(exc)[:2000]}\nretraining_sensor ticks: {ticks}\nruns: {runs}") from exc
    assert len(runs) == count, f"more retrain requests than failures: {runs}"
    return runs


@needs(jobs=(RETRAIN_JOB,), sensors=(SENSOR,), checks=("forecast_mape",))
def test_the_sensor_resumes_from_its_cursor_after_the_daemon_crashes(start_stack):
    # Runs stay queued (max_concurrent_runs: 0): this test is about requests, not training.
    stack = start_stack("restart", instance_overrides={"run_coordinator": {"config": {"max_concurrent_runs": 0}}})
    tickers = ("AAPL", "MSFT")
    for ticker in tickers:
        stack.add_dynamic_partition("ticker", ticker)
    check_key, partitions_def = next((k, p) for k, p in watched_checks() if k.name == "forecast_mape")
    day = stack.env["STOCK_ASSETS_SYNTHETIC_END"]
    from datetime import date, timedelta

    earlier = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    interval = sensor_interval()
    timeout = 3 * interval + 120
    ensure_sensor_running(stack, SENSOR)

    # A failure before the crash: one retrain request, recorded with its run key.
    report_failed_check(stack, check_key, partition_key_for(partitions_def, tickers[0], day), tickers[0])
    [first] = stack_wait_for_retrains(stack, count=1, timeout=timeout)
    cursor_before_crash = sensor_state(stack)["cursor"]

    # The daemon dies without cleaning up (SIGKILL) between ticks; a failure arrives while it is down.
    daemon = stack.processes["daemon"]
    daemon.crash()
    # another date: a runless evaluation per (check, partition) is unique
    report_failed_check(stack, check_key, partition_key_for(partitions_def, tickers[1], earlier), tickers[1])
    time.sleep(1)
    assert len(retrain_runs(stack)) == 1  # nobody evaluates the sensor while the daemon is down
    daemon.stop()
    crashed_at = time.time()
    stack.start_daemon()
    stack.wait_for_daemon(after=crashed_at)

    # The new daemon resumes from the stored cursor: the failure it missed is requested once...
    runs = stack_wait_for_retrains(stack, count=2, timeout=timeout)
    # ...and later ticks request nothing more (neither the old failure again nor the new one twice).
    def ticks_after_restart() -> int:
        return sum(1 for t in sensor_state(stack)["ticks"] if t["timestamp"] > crashed_at
                   and t["status"] in ("SUCCESS", "SKIPPED"))

    stack.wait_until(lambda: ticks_after_restart() >= 2, 2 * interval + 60,
                     "two sensor ticks after the restart", interval=2.0)
    runs = retrain_runs(stack)
    assert len(runs) == 2, runs
    assert first["runId"] in {r["runId"] for r in runs}
    run_keys = [r["tags"].get(RUN_KEY_TAG) for r in runs]
    assert all(run_keys) and len(set(run_keys)) == 2, run_keys
    assert all(r["jobName"] == RETRAIN_JOB and r["tags"].get(REASON_TAG) for r in runs)
    assert {r["status"] for r in runs} == {"QUEUED"}
    assert sensor_state(stack)["cursor"] != cursor_before_crash
