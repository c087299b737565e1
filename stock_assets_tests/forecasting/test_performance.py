"""Scoring matured forecasts: the numbers, the in-sample flag, the window, no look-ahead."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from stock_assets.forecasting.inference import forecast_rows
from stock_assets.forecasting.performance import (
    PERFORMANCE_SCHEMA,
    TrainingWindow,
    performance_partition,
    rolling_metrics,
    score_matured,
)
from stock_assets.market_calendar import next_sessions, trading_sessions

CREATED = datetime(2024, 7, 1, tzinfo=UTC)


def prices(closes: dict[date, float]) -> pl.DataFrame:
    return pl.DataFrame({"date": list(closes), "close": list(closes.values())})


# Each step's quantiles as multiples of its predicted close (q05 ... q95).
BAND = np.array([0.96, 0.97, 0.99, 1.0, 1.01, 1.03, 1.04])


def forecast(
    as_of: date, last: float, predicted: list[float], version: str = "2", p_up: float = 0.6
) -> pl.DataFrame:
    return forecast_rows(
        ticker="SYN",
        as_of=as_of,
        last_close=last,
        log_returns=np.log(np.array(predicted) / last),
        model_name="stock_assets.SYN",
        model_version=version,
        created_at=CREATED,
        quantile_closes=np.array(predicted)[:, None] * BAND[None, :],
        p_up=np.full(len(predicted), p_up),
    )


WINDOWS = {
    ("stock_assets.SYN", "1"): TrainingWindow(date(2020, 1, 2), date(2024, 6, 28)),
    ("stock_assets.SYN", "2"): TrainingWindow(date(2020, 1, 2), date(2024, 5, 31)),
    ("stock_assets.SYN", "old"): TrainingWindow(date(2018, 1, 2), date(2023, 12, 29)),
    # a walk-forward refit numbered like a production version, trained on other dates
    ("stock_assets.SYN.walk_forward", "1"): TrainingWindow(date(2019, 1, 2), date(2024, 5, 1)),
}


def test_ape_error_direction_and_naive_on_one_matured_forecast():
    as_of = date(2024, 6, 3)
    targets = next_sessions(as_of, 2)  # 06-04, 06-05
    frame = forecast(as_of, 100.0, [102.0, 99.0])
    closes = prices({as_of: 100.0, targets[0]: 104.0, targets[1]: 98.0})
    scored = score_matured(frame, closes, targets[1], WINDOWS)
    assert scored["target_date"].to_list() == targets
    assert scored["ape"].to_list() == pytest.approx([2 / 104, 1 / 98])  # fractions, not percent
    assert scored["naive_ape"].to_list() == pytest.approx([4 / 104, 2 / 98])
    assert scored["error"].to_list() == pytest.approx([-2.0, 1.0])
    assert scored["direction_hit"].to_list() == [True, True]  # up & up, down & down
    assert scored["in_sample"].to_list() == [False, False]  # v2 trained up to 2024-05-31


def test_forecasts_made_inside_the_training_window_are_in_sample_and_not_in_the_metrics():
    days = trading_sessions(date(2024, 5, 28), date(2024, 6, 7)).to_list()
    closes = prices({d: 100.0 + i for i, d in enumerate(days)})
    inside = forecast(date(2024, 5, 31), 103.0, [150.0], version="2")  # as_of == train_end
    outside = forecast(date(2024, 6, 3), 104.0, [104.0], version="2")
    scored = score_matured(pl.concat([inside, outside]), closes, date(2024, 6, 7), WINDOWS)
    assert dict(zip(scored["as_of_date"].to_list(), scored["in_sample"].to_list())) == {
        date(2024, 5, 31): True,
        date(2024, 6, 3): False,
    }
    rolling = rolling_metrics(scored, days, date(2024, 6, 7))
    assert rolling.n == 1 and rolling.n_in_sample == 1
    assert rolling.mape == pytest.approx(1 / 105)  # only the out-of-sample 104 vs 105
    # The same forecast by a model trained later (v1, up to 06-28) is in-sample too.
    again = score_matured(
        outside.with_columns(pl.lit("1").alias("model_version")), closes, date(2024, 6, 7), WINDOWS
    )
    assert again["in_sample"].to_list() == [True]


def test_prices_after_the_partition_date_are_never_read():
    as_of = date(2024, 6, 3)
    frame = forecast(as_of, 100.0, [101.0, 102.0, 103.0])
    known = {as_of: 100.0, date(2024, 6, 4): 101.0, date(2024, 6, 5): 105.0}
    clean = score_matured(frame, prices(known), date(2024, 6, 5), WINDOWS)
    future = prices({**known, date(2024, 6, 6): 1e9, date(2024, 6, 7): -5.0})
    assert score_matured(frame, future, date(2024, 6, 5), WINDOWS).equals(clean)
    assert clean["target_date"].max() == date(2024, 6, 5)  # h3 has not matured on 06-05


def test_a_partition_holds_what_matured_that_day_and_rolling_metrics_over_the_window():
    days = trading_sessions(date(2024, 5, 1), date(2024, 6, 28)).to_list()
    closes = {d: 100.0 * (1.001**i) for i, d in enumerate(days)}
    forecasts = pl.concat(
        [forecast(d, closes[d], [closes[d] * 1.01] * 5, "old") for d in days[:-1]]
    )
    day = date(2024, 6, 14)
    window = [d for d in days if d <= day][-20:]
    rows, rolling = performance_partition(forecasts, prices(closes), day, window, WINDOWS)
    assert rows.schema == pl.Schema(PERFORMANCE_SCHEMA)
    assert rows.height == 5 and set(rows["target_date"].to_list()) == {day}
    assert sorted(rows["horizon"].to_list()) == [1, 2, 3, 4, 5]
    assert rows["in_sample"].to_list() == [False] * 5
    # 20 target dates x 5 horizons, each APE exactly 1.01 * 1.001^-h - 1 in size.
    assert rolling.n == 100 and rows["rolling_n"].to_list() == [100] * 5
    expected = np.mean([abs(1.01 / 1.001**h - 1) / 1 for h in range(1, 6)])
    assert rolling.mape == pytest.approx(expected, rel=1e-9)
    assert rolling.naive_mape == pytest.approx(
        np.mean([1 - 1.001**-h for h in range(1, 6)]), rel=1e-9
    )
    assert rolling.directional_accuracy == pytest.approx(1.0)  # both up
    # Deterministic: the same inputs give the same partition.
    again, _ = performance_partition(forecasts, prices(closes), day, window, WINDOWS)
    assert again.equals(rows)


def test_no_matured_forecasts_gives_an_empty_partition_and_no_metrics():
    rows, rolling = performance_partition(
        forecast(date(2024, 6, 27), 100.0, [101.0]).head(0),
        prices({date(2024, 6, 28): 1.0}),
        date(2024, 6, 28),
        [date(2024, 6, 28)],
        WINDOWS,
    )
    assert rows.height == 0 and rows.schema == pl.Schema(PERFORMANCE_SCHEMA)
    assert rolling.n == 0 and rolling.mape is None


def test_distribution_scores_of_crafted_forecasts():
    """One forecast per case, quantiles = predicted x BAND, p_up 0.6, scored by hand."""
    as_of = date(2024, 6, 3)
    [target] = next_sessions(as_of, 1)
    history = {d: 100.0 for d in trading_sessions(date(2023, 1, 3), as_of).to_list()}
    cases = {  # actual close -> (covered 50, 80, 90)
        100.5: (True, True, True),  # inside q25..q75 = 99..101
        102.0: (False, True, True),  # inside q10..q90 = 97..103 only
        103.5: (False, False, True),  # inside q05..q95 = 96..104 only
        110.0: (False, False, False),
    }
    for actual, expected in cases.items():
        row = score_matured(
            forecast(as_of, 100.0, [100.0]), prices({**history, target: actual}), target, WINDOWS
        ).row(0, named=True)
        assert (row["covered_50"], row["covered_80"], row["covered_90"]) == expected
        # Winkler 80 %: width 6 plus 2 / 0.2 x the miss, as a fraction of the actual close
        miss = max(0.0, actual - 103.0)
        assert row["winkler_80"] == pytest.approx((6.0 + 10.0 * miss) / actual)
        pinball = np.mean([max(q * (actual - v), (q - 1) * (actual - v))
                           for q, v in zip((0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95), 100 * BAND)])
        assert row["pinball"] == pytest.approx(pinball / actual)
        assert row["brier"] == pytest.approx((0.6 - 1.0) ** 2)  # it went up
        # a flat year before: no up moves, the climatological base rate is 0
        assert row["brier_climatology"] == pytest.approx(1.0)


def test_a_flat_forecast_makes_no_directional_call():
    as_of = date(2024, 6, 3)
    targets = next_sessions(as_of, 2)
    flat = forecast(as_of, 100.0, [100.0, 100.05])  # persistence, and a 0.05 % move
    moved = forecast(as_of, 100.0, [101.0, 98.0])
    closes = prices({as_of: 100.0, targets[0]: 99.0, targets[1]: 99.0})
    scored = score_matured(pl.concat([flat, moved]), closes, targets[1], WINDOWS)
    flat_rows = scored.filter((pl.col("predicted_close") - 100.0).abs() < 0.1)
    assert flat_rows["called"].to_list() == [False, False]
    assert flat_rows["direction_hit"].to_list() == [None, None]  # not "called down"
    moved_rows = scored.filter((pl.col("predicted_close") - 100.0).abs() >= 0.1).sort("horizon")
    assert moved_rows["called"].to_list() == [True, True]
    assert moved_rows["direction_hit"].to_list() == [False, True]
    rolling = rolling_metrics(scored, targets, targets[1])
    assert rolling.call_rate == pytest.approx(0.5)
    assert rolling.hit_rate == rolling.directional_accuracy == pytest.approx(0.5)


def test_rolling_coverage_skill_and_mase():
    days = trading_sessions(date(2023, 5, 1), date(2024, 6, 14)).to_list()
    closes = {d: 100.0 + 2 * (i % 2) for i, d in enumerate(days)}  # alternates 100, 102
    as_of = [d for d in days if d >= date(2024, 6, 3)][:5]
    frames = [forecast(d, closes[d], [closes[d]]) for d in as_of]
    target = next_sessions(as_of[-1], 1)[0]
    scored = score_matured(pl.concat(frames), prices(closes), target, WINDOWS)
    window = [d for d in days if as_of[0] < d <= target]
    rolling = rolling_metrics(scored, window, target)
    assert rolling.n == 5 and rolling.n_scored == 5
    # the forecast is persistence: skill 0; every 1-session change is 2, so ase = |error| / 2 = 1
    assert rolling.skill == pytest.approx(0.0)
    assert rolling.mase == pytest.approx(1.0)
    assert rolling.coverage_80 == pytest.approx(1.0)  # 100 <-> 102 is inside x0.97..x1.03
    assert rolling.coverage_50 == pytest.approx(0.0)  # ...but outside x0.99..x1.01


def test_a_walk_forward_refit_and_a_production_version_with_one_number_are_told_apart():
    days = trading_sessions(date(2024, 5, 28), date(2024, 6, 7)).to_list()
    closes = prices({d: 100.0 + i for i, d in enumerate(days)})
    production = forecast(date(2024, 6, 3), 104.0, [104.0], version="1")  # v1 trained to 06-28
    refit = production.with_columns(pl.lit("stock_assets.SYN.walk_forward").alias("model_name"))
    in_sample = [
        score_matured(frame, closes, date(2024, 6, 7), WINDOWS)["in_sample"].to_list()
        for frame in (production, refit)
    ]
    assert in_sample == [[True], [False]]  # the refit was trained to 05-01 only
