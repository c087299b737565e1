"""The retraining policy (`decide_retraining`) and the sensor's cursor, on crafted inputs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from stock_assets.monitoring.retraining import (
    CheckEvaluation,
    EvaluationCursor,
    decide_retraining,
    newest_per_check,
)

NOW = datetime(2024, 6, 28, 23, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def evaluation(
    record_id: int,
    ticker: str,
    passed: bool,
    check: str = "forecast_mape",
    day: date | None = date(2024, 6, 28),
    description: str = "",
) -> CheckEvaluation:
    return CheckEvaluation(record_id, check, ticker, passed, day, description)


def test_a_failed_check_retrains_that_ticker_only_with_its_reason_and_a_run_key():
    decision = decide_retraining(
        [
            evaluation(10, "AAPL", True),
            evaluation(11, "NVDA", False, description="MAPE 8.77% > threshold 5.00%"),
            evaluation(12, "MSFT", True, check="feature_drift"),
        ],
        last_retrain={},
        now=NOW,
        cooldown=DAY,
    )
    [request] = decision.requests
    assert request.ticker == "NVDA" and not request.is_parent
    assert request.reason == "forecast_mape failed on 2024-06-28: MAPE 8.77% > threshold 5.00%"
    assert request.run_key == "retrain-NVDA-11"
    assert request.record_ids == (11,)
    assert decision.skipped == ()


def test_both_checks_failing_make_one_request_naming_both():
    decision = decide_retraining(
        [evaluation(20, "NVDA", False), evaluation(21, "NVDA", False, check="feature_drift")],
        {},
        NOW,
        DAY,
    )
    [request] = decision.requests
    assert request.reason.startswith("feature_drift failed on 2024-06-28")
    assert "; forecast_mape failed on 2024-06-28" in request.reason
    assert request.run_key == "retrain-NVDA-21" and request.record_ids == (20, 21)


def test_only_the_newest_evaluation_per_check_counts():
    # Failed on Monday, passed on Tuesday: nothing to do.
    healed = [
        evaluation(5, "AAPL", False, day=date(2024, 6, 24)),
        evaluation(6, "AAPL", True, day=date(2024, 6, 25)),
    ]
    assert decide_retraining(healed, {}, NOW, DAY).requests == ()
    # A re-run of an OLD date (record 9) does not outrank the newer date's result.
    rerun_old = [*healed, evaluation(9, "AAPL", False, day=date(2024, 6, 24))]
    assert decide_retraining(rerun_old, {}, NOW, DAY).requests == ()
    assert newest_per_check(rerun_old)[("AAPL", "forecast_mape")].record_id == 6
    # Same date evaluated twice: the later record wins.
    twice = [evaluation(7, "AAPL", True), evaluation(8, "AAPL", False)]
    assert [r.ticker for r in decide_retraining(twice, {}, NOW, DAY).requests] == ["AAPL"]


def test_the_cooldown_keeps_a_ticker_from_retraining_in_a_loop():
    failures = [evaluation(30, "NVDA", False), evaluation(31, "AAPL", False)]
    decision = decide_retraining(
        failures, {"NVDA": NOW - timedelta(hours=3), "AAPL": NOW - timedelta(hours=25)}, NOW, DAY
    )
    assert [r.ticker for r in decision.requests] == ["AAPL"]
    [(ticker, why)] = decision.skipped
    assert ticker == "NVDA" and why == "retrained 3.0 h ago, within the 24 h cooldown"
    # With no cooldown both go.
    assert len(decide_retraining(failures, {"NVDA": NOW}, NOW, timedelta(0)).requests) == 2


def test_index_drift_retrains_the_parent_and_folds_the_children_into_it():
    decision = decide_retraining(
        [
            evaluation(40, "GSPC", False, check="feature_drift", day=None),
            evaluation(41, "NVDA", False),
        ],
        {},
        NOW,
        DAY,
    )
    [request] = decision.requests
    assert request.is_parent and request.run_key == "retrain-GSPC-40"
    assert request.reason == "feature_drift failed"
    assert decision.skipped == (("NVDA", "its children retrain after the parent (index drift)"),)
    # A parent in cooldown does not hold the children back.
    cooling = decide_retraining(
        [
            evaluation(40, "GSPC", False, check="feature_drift", day=None),
            evaluation(41, "NVDA", False),
        ],
        {"GSPC": NOW - timedelta(hours=1)},
        NOW,
        DAY,
    )
    assert [r.ticker for r in cooling.requests] == ["NVDA"]


def test_the_same_evaluations_give_the_same_run_keys():
    failures = [evaluation(50, "JPM", False), evaluation(52, "XOM", False, check="feature_drift")]
    first = decide_retraining(failures, {}, NOW, DAY)
    again = decide_retraining(list(reversed(failures)), {}, NOW + timedelta(minutes=1), DAY)
    assert (
        [r.run_key for r in first.requests]
        == [r.run_key for r in again.requests]
        == ["retrain-JPM-50", "retrain-XOM-52"]
    )


def test_the_cursor_holds_back_at_a_planned_record_and_never_repeats_one():
    cursor = EvaluationCursor()
    key = "forecast_performance:forecast_mape"
    # Records 3 and 5 are evaluated; 4 is still planned (its run has not reached the check).
    cursor.advance(key, handled=[3, 5], pending=[4])
    assert cursor.watermarks[key] == 3 and cursor.seen[key] == [5]
    assert [i for i in (3, 4, 5, 6) if cursor.is_new(key, i)] == [4, 6]
    # Next tick: 4 and 6 complete; everything up to 6 is handled.
    cursor.advance(key, handled=[4, 6], pending=[])
    assert cursor.watermarks[key] == 6 and cursor.seen[key] == []
    restored = EvaluationCursor.parse(cursor.serialize())
    assert restored == cursor and not restored.is_new(key, 5)
    assert EvaluationCursor.parse(None) == EvaluationCursor()


@pytest.mark.parametrize("bad", ["not json", '{"watermarks": {"k": "x"}}'])
def test_a_corrupt_cursor_is_an_error_not_a_silent_restart(bad):
    with pytest.raises(ValueError):
        EvaluationCursor.parse(bad)
