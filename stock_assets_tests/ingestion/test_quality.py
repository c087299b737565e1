"""Data-quality rules: each passes on every real price file and fails on crafted bad data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from stock_assets.ingestion.quality import (
    QualityResult,
    check_finite,
    check_freshness,
    check_gaps,
    check_ohlc_consistency,
    check_unique_dates,
)
from stock_assets.market_calendar import (
    last_completed_session,
    last_session_on_or_before,
    trading_sessions,
)


def _prices_dir() -> Path:
    here = Path(__file__).resolve()
    root = next(p for p in here.parents if (p / "pyproject.toml").is_file())
    return root.parent / "shared" / "data" / "prices"


def _real_files() -> list[Path]:
    files = sorted(_prices_dir().glob("*.csv"))
    if not files:
        pytest.skip(
            f"real price data not found at {_prices_dir()} (../shared/data/prices is absent)"
        )
    return files


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, try_parse_dates=True).with_columns(pl.lit(path.stem).alias("ticker"))


@pytest.fixture(scope="module")
def real() -> dict[str, pl.DataFrame]:
    return {path.stem: _read(path) for path in _real_files()}


@pytest.fixture()
def good() -> pl.DataFrame:
    """A clean two-week frame on real NYSE sessions (2024-01-02 .. 2024-01-12, MLK day after)."""
    sessions = trading_sessions(date(2024, 1, 2), date(2024, 1, 12))
    n = sessions.len()
    close = [100.0 + i for i in range(n)]
    return pl.DataFrame(
        {
            "date": sessions,
            "open": [c - 0.5 for c in close],
            "high": [c + 1.0 for c in close],
            "low": [c - 1.0 for c in close],
            "close": close,
            "adj_close": close,
            "volume": [1_000_000] * n,
            "ticker": ["TEST"] * n,
        }
    )


def _set(frame: pl.DataFrame, row: int, column: str, value: object) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row)
        .then(pl.lit(value))
        .otherwise(pl.col(column))
        .alias(column)
    )


# --- real data -----------------------------------------------------------------------------------


def test_every_rule_passes_on_every_real_file(real: dict[str, pl.DataFrame]) -> None:
    assert "GSPC" in real and len(real) == 13
    for ticker, prices in real.items():
        results = [
            check_ohlc_consistency(prices),
            check_finite(prices),
            check_unique_dates(prices),
            check_freshness(prices, as_of=prices["date"].max()),
            check_gaps(prices),
        ]
        for result in results:
            assert isinstance(result, QualityResult)
            assert result.passed, f"{ticker}: {result.description}"


def test_gaps_on_real_data_know_the_real_closures(real: dict[str, pl.DataFrame]) -> None:
    gspc = real["GSPC"]
    result = check_gaps(gspc)
    assert result.metadata["first_date"] == "1982-04-20"
    assert result.metadata["n_sessions"] == gspc.height == 10512
    assert result.metadata["n_missing"] == 0
    dates = set(gspc["date"].to_list())
    for closed in (date(2012, 10, 29), date(2012, 10, 30), date(2007, 1, 2), date(2001, 9, 11)):
        assert closed not in dates  # absent from the data AND from the calendar


def test_freshness_of_real_data_long_after_its_end(real: dict[str, pl.DataFrame]) -> None:
    aapl = real["AAPL"]  # ends Friday 2023-10-27
    result = check_freshness(aapl, as_of=date(2023, 11, 3))  # the next Friday: 5 sessions later
    assert not result.passed
    assert result.metadata == {
        "last_date": "2023-10-27",
        "expected_last_session": "2023-11-03",
        "lag_sessions": 5,
        "max_lag_sessions": 3,
        "as_of": "2023-11-03",
    }


# --- OHLC ----------------------------------------------------------------------------------------


def test_ohlc_passes_on_clean_bars(good: pl.DataFrame) -> None:
    result = check_ohlc_consistency(good)
    assert result.passed and result.metadata["n_bad_rows"] == 0


def test_high_below_close_fails(good: pl.DataFrame) -> None:
    bad = _set(good, 3, "high", 100.0)  # close on row 3 is 103
    result = check_ohlc_consistency(bad)
    assert not result.passed
    assert result.metadata["high_below_open_or_close"] == 1
    assert result.metadata["n_bad_rows"] == 1
    assert result.metadata["first_bad_dates"] == str(good["date"][3])
    assert "high_below_open_or_close=1" in result.description


@pytest.mark.parametrize(
    ("column", "value", "counter"),
    [
        ("low", 200.0, "low_above_open_or_close"),
        ("open", -5.0, "non_positive_price"),
        ("adj_close", 0.0, "non_positive_price"),
        ("volume", -1, "negative_volume"),
    ],
)
def test_other_impossible_bars_fail(
    good: pl.DataFrame, column: str, value: float, counter: str
) -> None:
    result = check_ohlc_consistency(_set(good, 5, column, value))
    assert not result.passed
    assert result.metadata[counter] == 1
    assert result.metadata["first_bad_dates"] == str(good["date"][5])


def test_high_below_low_is_counted(good: pl.DataFrame) -> None:
    bad = _set(_set(_set(good, 2, "high", 90.0), 2, "low", 95.0), 2, "open", 92.0)
    result = check_ohlc_consistency(_set(bad, 2, "close", 92.0))
    assert not result.passed
    assert result.metadata["high_below_low"] == 1


def test_first_bad_dates_lists_at_most_five_in_date_order(good: pl.DataFrame) -> None:
    bad = good.with_columns(pl.col("close") + 10.0).reverse()  # every close above its high
    result = check_ohlc_consistency(bad)
    assert result.metadata["n_bad_rows"] == good.height
    listed = result.metadata["first_bad_dates"].split(", ")
    assert listed == [str(d) for d in good["date"].head(5)]


# --- finite --------------------------------------------------------------------------------------


def test_finite_passes_on_clean_data(good: pl.DataFrame) -> None:
    result = check_finite(good)
    assert result.passed
    assert result.metadata["n_null"] == result.metadata["n_nan"] == result.metadata["n_inf"] == 0


@pytest.mark.parametrize(
    ("value", "kind"), [(float("nan"), "n_nan"), (float("inf"), "n_inf"), (None, "n_null")]
)
def test_nan_inf_and_null_fail(good: pl.DataFrame, value: float | None, kind: str) -> None:
    result = check_finite(_set(good, 4, "close", value))
    assert not result.passed
    assert result.metadata[kind] == 1
    assert result.metadata["bad_columns"] == "close"
    assert result.metadata["first_bad_dates"] == str(good["date"][4])


def test_finite_only_looks_at_the_columns_asked(good: pl.DataFrame) -> None:
    bad = _set(good, 4, "adj_close", float("nan"))
    assert check_finite(bad, columns=["open", "high", "low", "close"]).passed
    assert not check_finite(bad).passed
    missing = check_finite(good, columns=["close", "vwap"])
    assert not missing.passed and "vwap" in missing.description


def test_null_volume_fails(good: pl.DataFrame) -> None:
    result = check_finite(_set(good, 0, "volume", None))
    assert not result.passed and result.metadata["bad_columns"] == "volume"


# --- unique dates --------------------------------------------------------------------------------


def test_unique_dates_pass_and_a_duplicate_fails(good: pl.DataFrame) -> None:
    assert check_unique_dates(good).passed
    duplicated = pl.concat([good, good.slice(6, 1)])
    result = check_unique_dates(duplicated)
    assert not result.passed
    assert result.metadata["n_duplicated_dates"] == 1
    assert result.metadata["n_extra_rows"] == 1
    assert result.metadata["first_duplicated_dates"] == str(good["date"][6])


def test_null_date_fails(good: pl.DataFrame) -> None:
    result = check_unique_dates(_set(good, 1, "date", None))
    assert not result.passed and result.metadata["n_null_dates"] == 1


# --- freshness -----------------------------------------------------------------------------------


def test_fresh_up_to_max_lag_and_stale_beyond(good: pl.DataFrame) -> None:
    # last row Friday 2024-01-12; Monday 01-15 is MLK day, so the next sessions are 16, 17, 18, 19
    on_time = check_freshness(good, as_of=date(2024, 1, 15))
    assert on_time.passed and on_time.metadata["lag_sessions"] == 0
    assert on_time.metadata["expected_last_session"] == "2024-01-12"
    three_behind = check_freshness(good, as_of=date(2024, 1, 18))
    assert three_behind.passed and three_behind.metadata["lag_sessions"] == 3
    stale = check_freshness(good, as_of=date(2024, 1, 19))
    assert not stale.passed and stale.metadata["lag_sessions"] == 4
    assert "4 sessions behind 2024-01-19" in stale.description
    assert check_freshness(good, as_of=date(2024, 1, 19), max_lag_sessions=4).passed


def test_a_stale_last_date_fails(good: pl.DataFrame) -> None:
    stale = good.filter(pl.col("date") <= date(2024, 1, 5))
    result = check_freshness(stale, as_of=date(2024, 1, 12))
    assert not result.passed
    assert result.metadata["last_date"] == "2024-01-05"
    assert result.metadata["lag_sessions"] == 5


def test_rows_after_as_of_count_as_fresh(good: pl.DataFrame) -> None:
    result = check_freshness(good, as_of=date(2024, 1, 5))
    assert result.passed and result.metadata["lag_sessions"] == 0


# --- gaps ----------------------------------------------------------------------------------------


def test_no_gaps_and_a_removed_trading_day_fails(good: pl.DataFrame) -> None:
    assert check_gaps(good).passed
    removed = good.filter(pl.col("date") != date(2024, 1, 8))
    result = check_gaps(removed)
    assert not result.passed
    assert result.metadata["n_missing"] == 1
    assert result.metadata["first_missing_dates"] == "2024-01-08"
    assert check_gaps(removed, max_missing=1).passed


def test_a_row_on_a_holiday_or_weekend_fails(good: pl.DataFrame) -> None:
    extra = pl.concat([good, good.tail(1).with_columns(pl.lit(date(2024, 1, 13)).alias("date"))])
    result = check_gaps(extra)
    assert not result.passed
    assert result.metadata["n_non_session_dates"] == 1
    assert result.metadata["first_non_session_dates"] == "2024-01-13"


def test_weekends_and_holidays_are_not_gaps() -> None:
    frame = pl.DataFrame({"date": [date(2023, 12, 22), date(2023, 12, 26)]})  # Fri, Tue (Xmas Mon)
    assert check_gaps(frame).passed


# --- every rule on degenerate input --------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        check_ohlc_consistency,
        check_finite,
        check_unique_dates,
        lambda df: check_freshness(df, as_of=date(2024, 1, 12)),
        check_gaps,
    ],
)
def test_an_empty_frame_fails_every_rule(good: pl.DataFrame, rule) -> None:
    result = rule(good.clear())
    assert not result.passed and "no rows" in result.description


def test_missing_columns_fail_without_raising(good: pl.DataFrame) -> None:
    result = check_ohlc_consistency(good.drop("volume"))
    assert not result.passed and result.metadata["missing_columns"] == "volume"
    assert not check_gaps(good.drop("date")).passed


# --- calendar helpers ----------------------------------------------------------------------------


def test_calendar_helpers() -> None:
    assert last_session_on_or_before(date(2024, 1, 15)) == date(2024, 1, 12)  # MLK Monday
    assert last_session_on_or_before(date(2024, 1, 16)) == date(2024, 1, 16)
    assert trading_sessions(date(1982, 4, 20), date(1982, 4, 23)).len() == 4
    assert trading_sessions(date(2024, 1, 5), date(2024, 1, 1)).len() == 0
    # before the close on a session day, the previous session is the last completed one
    morning = datetime(2024, 7, 5, 15, 0, tzinfo=UTC)  # 11:00 New York
    evening = datetime(2024, 7, 5, 21, 0, tzinfo=UTC)  # 17:00 New York
    assert last_completed_session(morning) == date(2024, 7, 3)  # 07-04 is a holiday
    assert last_completed_session(evening) == date(2024, 7, 5)
    with pytest.raises(ValueError, match="timezone"):
        last_completed_session(datetime(2024, 7, 5, 21, 0))
    with pytest.raises(ValueError, match="outside"):
        last_session_on_or_before(date(1900, 1, 2))
