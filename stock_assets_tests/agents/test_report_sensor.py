"""daily_report_sensor: a successful daily run of a date requests that date's reports (for the same
tickers when the run named them), once, in its own run."""

from __future__ import annotations

import dagster as dg

from stock_assets.agents.sensors import REPORT_RUN_TAGS, report_request_for


def daily_run(run_id: str, tags: dict[str, str]) -> dg.DagsterRun:
    return dg.DagsterRun(job_name="daily_job", run_id=run_id, tags=tags)


def test_a_daily_run_requests_the_reports_of_its_date_keyed_by_the_run():
    run = daily_run("a1b2c3", {"dagster/partition": "2024-07-03"})
    request = report_request_for(run)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2024-07-03"
    assert request.run_key == "report-a1b2c3"  # the same daily run never asks twice
    assert request.tags["stock_assets/after_run"] == "a1b2c3"
    assert "stock_assets/tickers" not in request.tags  # every ticker forecast that day
    assert report_request_for(run).run_key == request.run_key


def test_a_daily_run_for_some_tickers_requests_their_reports_only():
    run = daily_run("b2", {"dagster/partition": "2024-07-03", "stock_assets/tickers": "AAPL,MSFT"})
    assert report_request_for(run).tags["stock_assets/tickers"] == "AAPL,MSFT"


def test_a_daily_run_without_a_single_date_partition_requests_nothing():
    for tags in ({}, {"dagster/partition": "AAPL"}):
        skip = report_request_for(daily_run("d4e5f6", tags))
        assert isinstance(skip, dg.SkipReason) and "d4e5f6" in skip.skip_message


def test_the_sensor_watches_daily_job_and_launches_the_partitioned_reports_job():
    from stock_assets.definitions import defs
    from stock_assets.partitions import trading_date_partitions

    sensor = defs.resolve_sensor_def("daily_report_sensor")
    assert isinstance(sensor, dg.RunStatusSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.job_name == "reports_job"
    reports = defs.resolve_job_def("reports_job")
    assert reports.partitions_def == trading_date_partitions
    assert reports.tags.items() >= REPORT_RUN_TAGS.items()
    assert {k.to_user_string() for k in reports.asset_layer.executable_asset_keys} == {"agent_report"}
    request = report_request_for(daily_run("f0", {"dagster/partition": "2024-07-03"}))
    assert request.partition_key in trading_date_partitions.get_partition_keys()
