"""Scoring matured forecasts: the numbers, the in-sample flag, the window, no look-ahead."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from stock_assets.calendar import next_sessions, trading_sessions
from stock_assets.forecasting.inference import forecast_rows
from stock_assets.forecasting.performance import (
    PERFORMANCE_SCHEMA,
    TrainingWindow,
    performance_partition,
    rolling_metrics,
    score_matured,
)

CREATED = datetime(2024, 7, 1, tzinfo=UTC)


def prices(closes: dict[date, float]) -> pl.DataFrame:
    return pl.DataFrame({"date": list(closes), "close": list(closes.values())})


def forecast(as_of: date, last: float, predicted: list[float], version: str = "2") -> pl.DataFrame:
    return forecast_rows(
        ticker="SYN",
        as_of=as_of,
        last_close=last,
        log_returns=np.log(np.array(predicted) / last),
        model_name="stock_assets.SYN",
        model_version=version,
        created_at=CREATED,
    )


WINDOWS = {
    "1": TrainingWindow(date(2020, 1, 2), date(2024, 6, 28)),
    "2": TrainingWindow(date(2020, 1, 2), date(2024, 5, 31)),
    "old": TrainingWindow(date(2018, 1, 2), date(2023, 12, 29)),
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
