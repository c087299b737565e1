"""The CLI's "forecasts" stage: the latest session's daily cycle per ticker, dated by the source."""

from datetime import date
from pathlib import Path

import pytest
import polars as pl

from stock_assets.forecasting.sessions import latest_forecast_dates
from stock_assets.ingestion.sources import PriceSourceResource
from stock_assets.plan import forecast_steps


def write_csv(folder: Path, ticker: str, last: date) -> None:
    days = pl.date_range(date(2022, 12, 1), last, eager=True)
    pl.DataFrame({"date": days, "close": [1.0] * len(days)}).write_csv(folder / f"{ticker}.csv")


def test_a_csv_folder_dates_each_tickers_forecast_by_its_last_row(tmp_path: Path):
    write_csv(tmp_path, "AAPL", date(2023, 10, 27))
    write_csv(tmp_path, "MSFT", date(2023, 10, 29))  # a Sunday: Friday's session
    write_csv(tmp_path, "OLD", date(2022, 12, 30))  # before the first forecast partition
    source = PriceSourceResource(kind="csv", csv_dir=str(tmp_path))
    dates = latest_forecast_dates(["AAPL", "MSFT", "OLD", "NONE"], source)
    assert dates == {"AAPL": date(2023, 10, 27), "MSFT": date(2023, 10, 27)}
    steps = forecast_steps(["AAPL", "MSFT"], dates)
    assert [s.partition_key for s in steps] == [None, "2023-10-27|AAPL", None, "2023-10-27|MSFT"]
    assert all(s.stage == "forecasts" and s.optional for s in steps)
    assert all(s.assets == ("daily_forecast", "forecast_performance") for s in steps)
    # Each latest session is preceded by a back-test of the 20 sessions before it (no checks):
    # 2023-09-29 .. 2023-10-26 are 20 NYSE sessions (no holiday in between).
    warmup, latest = steps[0], steps[1]
    assert dict(warmup.tags) == {
        "dagster/asset_partition_range_start": "2023-09-29|AAPL",
        "dagster/asset_partition_range_end": "2023-10-26|AAPL",
        "stock_assets/backtest": "AAPL",
    }
    assert warmup.checks is False and latest.checks is True and latest.tags == ()


def test_the_warmup_skips_holidays_and_stops_at_the_first_forecast_partition():
    from stock_assets.plan import warmup_range

    # Juneteenth (06-19) and 07-04 are holidays: 20 sessions before 2023-07-14 start on 06-14.
    assert warmup_range(date(2023, 7, 14)) == (date(2023, 6, 14), date(2023, 7, 13))
    # The first forecast partition is 2023-01-02: a warm-up never reaches before it.
    assert warmup_range(date(2023, 1, 10)) == (date(2023, 1, 3), date(2023, 1, 9))
    assert warmup_range(date(2023, 1, 3)) is None
    assert warmup_range(date(2023, 7, 14), sessions=0) is None


def test_the_synthetic_market_is_forecast_on_its_last_session():
    source = PriceSourceResource(kind="synthetic", synthetic_end="2024-06-30")  # a Sunday
    assert latest_forecast_dates(["AAPL"], source) == {"AAPL": date(2024, 6, 28)}


def test_a_walk_forward_step_carries_refit_every_as_daily_forecast_config():
    from stock_assets.plan import backtest_step

    step = backtest_step("AAPL", "2023-01-03", "2023-10-27", refit_every=63)
    assert step.run_config() == {"daily_forecast": {"config": {"refit_every": 63}}}
    assert "walk-forward (refit every 63)" in step.label and not step.checks
    assert backtest_step("AAPL", "2023-01-03", "2023-10-27").run_config() == {}
    with pytest.raises(ValueError, match="positive number of sessions"):
        backtest_step("AAPL", "2023-01-03", "2023-10-27", refit_every=0)
