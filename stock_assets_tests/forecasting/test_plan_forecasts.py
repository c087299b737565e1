"""The CLI's plan: real jobs per stage, the forecasts stage dated by the source, tickers chunked per worker."""

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from stock_assets.forecasting.sessions import latest_forecast_dates
from stock_assets.ingestion.sources import PriceSourceResource
from stock_assets.plan import chunks, forecast_stages, plan_stages


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
    [warmups, latest] = forecast_stages(dates, workers=2)
    # One daily_job run per chunk of tickers: a single-date run (checks on) after a back-test of
    # the 20 sessions before it (a range run: no checks). 2023-09-29 .. 2023-10-26 are 20 NYSE
    # sessions (no holiday in between).
    assert [(l.job, l.partition_key) for l in latest.launches] == [
        ("daily_job", "2023-10-27"), ("daily_job", "2023-10-27")
    ]
    assert [dict(l.tags)["stock_assets/tickers"] for l in latest.launches] == ["AAPL", "MSFT"]
    assert dict(warmups.launches[0].tags) == {
        "dagster/asset_partition_range_start": "2023-09-29",
        "dagster/asset_partition_range_end": "2023-10-26",
        "stock_assets/tickers": "AAPL",
    }
    # With one worker, one run covers both tickers.
    [_, [single]] = [s.launches for s in forecast_stages(dates, workers=1)]
    assert dict(single.tags)["stock_assets/tickers"] == "AAPL,MSFT"


def test_the_plan_launches_real_jobs_in_data_flow_order():
    from stock_assets.definitions import defs

    dates = {"AAPL": date(2024, 6, 28), "MSFT": date(2024, 6, 28), "NVDA": date(2024, 6, 28)}
    stages = plan_stages(["AAPL", "MSFT", "NVDA"], as_of=dates, workers=2)
    assert [s.name for s in stages] == [
        "data", "feast", "tuning", "parent", "children", "warm-up", "forecasts", "reports",
        "strategy",
    ]
    jobs = {j.name for j in defs.resolve_all_job_defs()}
    assert {l.job for s in stages for l in s.launches} <= jobs
    [index, *ranges] = stages[0].launches
    assert index.job == "market_data_job"
    # ticker ranges in partition order, one per worker: AAPL..MSFT and NVDA
    assert [dict(r.tags)["dagster/asset_partition_range_start"] for r in ranges] == ["AAPL", "NVDA"]
    assert [l.partition_key for l in stages[4].launches] == ["AAPL", "MSFT", "NVDA"]
    assert {s.group for s in plan_stages(["AAPL"], as_of=dates, groups=("models",))} == {"models"}


def test_chunks_are_contiguous_nearly_equal_and_never_empty():
    assert chunks(list("abcde"), 2) == [["a", "b", "c"], ["d", "e"]]
    assert chunks(["a"], 4) == [["a"]]
    assert sum(len(c) for c in chunks([str(i) for i in range(500)], 2)) == 500


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


def test_a_walk_forward_launch_carries_refit_every_as_daily_forecast_config():
    from stock_assets.plan import backtest_launch

    launch = backtest_launch("AAPL", "2023-01-03", "2023-10-27", refit_every=63)
    assert launch.job == "daily_job" and launch.partition_key is None
    assert launch.run_config() == {"ops": {"daily_forecast": {"config": {"refit_every": 63}}}}
    assert dict(launch.tags)["stock_assets/tickers"] == "AAPL"
    assert "walk-forward (refit every 63)" in launch.label
    assert backtest_launch("AAPL", "2023-01-03", "2023-10-27").run_config() == {}
    with pytest.raises(ValueError, match="positive number of sessions"):
        backtest_launch("AAPL", "2023-01-03", "2023-10-27", refit_every=0)


def test_refetch_days_reaches_both_price_assets_as_run_config():
    from stock_assets.definitions import defs

    [data, _] = plan_stages(["AAPL"], as_of={"AAPL": date(2024, 6, 28)}, groups=("data",),
                            refetch_days=5)
    index, tickers = data.launches
    assert index.run_config() == {"ops": {"market_index_prices": {"config": {"refetch_days": 5}}}}
    assert tickers.run_config() == {"ops": {"raw_prices": {"config": {"refetch_days": 5}}}}
    for launch in (index, tickers):
        dg.validate_run_config(defs.resolve_job_def(launch.job), launch.run_config())


def test_the_tuning_stage_runs_the_study_before_the_parent_and_can_be_skipped():
    from stock_assets.definitions import defs
    from stock_assets.modeling.config import TuningConfig

    dates = {"AAPL": date(2024, 6, 28)}
    names = [s.name for s in plan_stages(["AAPL"], as_of=dates, groups=("models",))]
    assert names == ["tuning", "parent", "children"]
    [default] = plan_stages(["AAPL"], as_of=dates, groups=("models",))[0].launches
    assert (default.job, default.run_config()) == ("tuning_job", {})  # the asset's small default
    assert TuningConfig().n_trials > 0 and TuningConfig().timeout_s is not None

    [stage] = [s for s in plan_stages(["AAPL"], as_of=dates, tuning_trials=12) if s.name == "tuning"]
    [launch] = stage.launches
    config = launch.run_config()
    # An explicit number of trials runs them all (the default timeout lifted), and the config is
    # one the real job accepts.
    assert config == {"ops": {"model_hyperparameters": {"config": {"n_trials": 12, "timeout_s": None}}}}
    job = defs.resolve_job_def("tuning_job")
    assert dg.validate_run_config(job, config)
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "market_index_sequences", "model_hyperparameters"
    }
    assert "+12 trials" in launch.label

    skipped = [s.name for s in plan_stages(["AAPL"], as_of=dates, groups=("models",), tuning_trials=0)]
    assert skipped == ["parent", "children"]
    with pytest.raises(ValueError, match="--tuning-trials"):
        plan_stages(["AAPL"], as_of=dates, tuning_trials=-1)
