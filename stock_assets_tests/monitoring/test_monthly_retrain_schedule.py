"""The monthly retrain schedule: which day acts (holidays, weekends), and what it requests."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from stock_assets.monitoring.retraining import RETRAIN_REASON_TAG, RETRAIN_TICKER_TAG
from stock_assets.monitoring.schedules import (
    MONTHLY_RETRAIN_REASON,
    is_first_session_of_month,
    monthly_retrain_run_requests,
)

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from stock_assets.definitions import defs

    return defs


@pytest.mark.parametrize(
    ("day", "first"),
    [
        (date(2024, 7, 1), True),  # a Monday session on the 1st
        (date(2024, 7, 2), False),
        (date(2024, 9, 2), False),  # Labor Day: no session
        (date(2024, 9, 3), True),  # ...so the Tuesday is the first
        (date(2024, 6, 1), False),  # a Saturday
        (date(2024, 6, 3), True),  # ...so the Monday is the first
        (date(2023, 1, 2), False),  # New Year's Day observed (the 1st was a Sunday)
        (date(2023, 1, 3), True),
        (date(2024, 7, 15), False),  # mid-month
    ],
)
def test_the_first_session_of_a_month(day: date, first: bool):
    assert is_first_session_of_month(day) is first


def test_the_first_session_requests_one_child_retrain_per_ticker():
    requests = monthly_retrain_run_requests(date(2024, 9, 3), ["AAPL", "MSFT"])
    assert [r.partition_key for r in requests] == ["AAPL", "MSFT"]
    assert [r.run_key for r in requests] == [
        "monthly-retrain-2024-09-AAPL",
        "monthly-retrain-2024-09-MSFT",
    ]
    for request, ticker in zip(requests, ["AAPL", "MSFT"], strict=True):
        assert request.tags[RETRAIN_REASON_TAG] == MONTHLY_RETRAIN_REASON == "monthly refresh"
        assert request.tags[RETRAIN_TICKER_TAG] == ticker
        assert request.tags["stock_assets/kind"] == "training"  # the queue's training slots


def test_run_keys_are_unique_per_month_and_ticker():
    firsts = [date(2024, 8, 1), date(2024, 9, 3), date(2024, 10, 1)]
    keys = [
        r.run_key for day in firsts for r in monthly_retrain_run_requests(day, ["AAPL", "MSFT"])
    ]
    assert len(keys) == len(set(keys)) == 6


def test_other_days_and_no_tickers_skip_and_say_why():
    labor_day = monthly_retrain_run_requests(date(2024, 9, 2), ["AAPL"])
    assert isinstance(labor_day, dg.SkipReason)
    assert "2024-09-02 is not the first NYSE session of 2024-09" in labor_day.skip_message
    mid_month = monthly_retrain_run_requests(date(2024, 9, 17), ["AAPL"])
    assert isinstance(mid_month, dg.SkipReason)
    assert "2024-09-17 is not the first NYSE session" in mid_month.skip_message
    empty = monthly_retrain_run_requests(date(2024, 9, 3), [])
    assert isinstance(empty, dg.SkipReason)
    assert "No ticker partitions are registered" in empty.skip_message


def test_run_config_is_passed_to_every_request():
    config = {"ops": {"child_model": {"config": {"epochs": 1}}}}
    requests = monthly_retrain_run_requests(date(2024, 9, 3), ["AAPL", "MSFT"], config)
    assert all(r.run_config == config for r in requests)


def test_the_schedule_retrains_children_on_the_months_first_session(defs, monkeypatch):
    monkeypatch.setenv("STOCK_ASSETS_RETRAIN_EPOCHS", "2")
    schedule = defs.resolve_schedule_def("monthly_retrain_schedule")
    assert schedule.job_name == "retrain_job"
    assert schedule.cron_schedule == "0 20 * * 1-5"
    assert schedule.execution_timezone == "America/New_York"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    # A persistent (temporary) instance: build_schedule_context refuses an ephemeral one.
    with dg.instance_for_test() as instance:
        no_tickers = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2024, 9, 3, 20, 0, tzinfo=NEW_YORK),
        )
        assert schedule.evaluate_tick(no_tickers).skip_message.startswith(
            "No ticker partitions are registered"
        )
        instance.add_dynamic_partitions("ticker", ["AAPL", "NVDA"])
        labor_day = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2024, 9, 2, 20, 0, tzinfo=NEW_YORK),
        )
        assert schedule.evaluate_tick(labor_day).skip_message.startswith(
            "2024-09-02 is not the first NYSE session"
        )
        first_session = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2024, 9, 3, 20, 0, tzinfo=NEW_YORK),
            repository_def=defs.get_repository_def(),  # resolves partition keys against the job
        )
        requests = schedule.evaluate_tick(first_session).run_requests
    assert [(r.partition_key, r.run_key) for r in requests] == [
        ("AAPL", "monthly-retrain-2024-09-AAPL"),
        ("NVDA", "monthly-retrain-2024-09-NVDA"),
    ]
    assert all(r.tags[RETRAIN_REASON_TAG] == "monthly refresh" for r in requests)
    # Unattended retrains honour the same overrides as the retraining sensor's.
    expected_config = {"ops": {"child_model": {"config": {"epochs": 2}}}}
    assert all(r.run_config == expected_config for r in requests)
