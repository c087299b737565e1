"""daily_report_sensor: a successful daily run of (date, ticker) requests that partition's report,
once, in its own run."""

from __future__ import annotations

import dagster as dg

from stock_assets.agents.sensors import REPORT_RUN_TAGS, report_request_for


def daily_run(run_id: str, tags: dict[str, str]) -> dg.DagsterRun:
    return dg.DagsterRun(job_name="daily_job", run_id=run_id, tags=tags)


def test_a_daily_run_requests_the_report_of_its_partition_keyed_by_the_run():
    run = daily_run("a1b2c3", {"dagster/partition": "2024-07-03|AAPL"})
    request = report_request_for(run)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2024-07-03|AAPL"
    assert request.run_key == "report-a1b2c3"  # the same daily run never asks twice
    assert request.tags["stock_assets/after_run"] == "a1b2c3"
    assert report_request_for(run).run_key == request.run_key


def test_a_daily_run_without_a_date_ticker_partition_requests_nothing():
    for tags in ({}, {"dagster/partition": "AAPL"}):
        skip = report_request_for(daily_run("d4e5f6", tags))
        assert isinstance(skip, dg.SkipReason) and "d4e5f6" in skip.skip_message


def test_the_sensor_watches_daily_job_and_launches_the_partitioned_reports_job():
    from stock_assets.definitions import defs
    from stock_assets.partitions import date_ticker_partitions

    sensor = defs.resolve_sensor_def("daily_report_sensor")
    assert isinstance(sensor, dg.RunStatusSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.job_name == "reports_job"
    reports = defs.resolve_job_def("reports_job")
    assert reports.partitions_def == date_ticker_partitions
    assert reports.tags.items() >= REPORT_RUN_TAGS.items()
    assert {k.to_user_string() for k in reports.asset_layer.executable_asset_keys} == {"agent_report"}
    # The request's key is a partition of the reports job (the production scenario runs it live).
    request = report_request_for(daily_run("f0", {"dagster/partition": "2024-07-03|AAPL"}))
    key = date_ticker_partitions.get_partition_key_from_str(request.partition_key)
    assert key.keys_by_dimension == {"date": "2024-07-03", "ticker": "AAPL"}
