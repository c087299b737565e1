"""daily_forecast and forecast_performance through Dagster, on a real instance, MLflow and Feast.

One module-scoped home (synthetic market 2023-01-03.., AAPL, tiny models) ingested up to
2024-06-14; AAPL's production model is a copy of the trained one whose forecasts react to their
inputs (tiny models calibrate to pure persistence), so "same forecast" means "same inputs".
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from stock_assets.forecasting.inference import FORECAST_SCHEMA
from stock_assets.forecasting.performance import PERFORMANCE_SCHEMA
from stock_assets.market_calendar import next_sessions, trading_sessions
from stock_assets.testing import LoopHome, failures, loop_home

# Each test only relies on the module's home, not on another test's outputs (under xdist both
# workers may build the home); the last test corrupts the home's prices, so it stays last.
pytestmark = pytest.mark.xdist_group("forecast_assets")

LAST_INGESTED = date(2024, 6, 14)
TICKER = "AAPL"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopHome]:
    with loop_home(
        tmp_path_factory.mktemp("forecast_assets"), synthetic_start="2023-01-03"
    ) as loop:
        loop.ingest([TICKER], LAST_INGESTED)
        loop.train([TICKER])
        loop.responsive_version = loop.register_responsive_model(TICKER)
        yield loop


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        event.event_specific_data.check_name: event.event_specific_data
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    """The metadata of the asset's materialization (a range run records one per partition)."""
    event = [
        e
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key == dg.AssetKey(asset)
    ][-1]
    return {k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()}


def test_a_daily_run_forecasts_the_next_sessions_with_the_production_model(home: LoopHome):
    day = LAST_INGESTED
    result = home.daily(day, TICKER)
    forecast = home.forecast(TICKER, day)
    prices = home.lake.read("raw_prices", TICKER)
    assert forecast.height == 5
    assert forecast["as_of_date"].to_list() == [day] * 5
    assert forecast["target_date"].to_list() == next_sessions(day, 5)
    assert forecast["horizon"].to_list() == [1, 2, 3, 4, 5]
    assert forecast["last_close"][0] == pytest.approx(
        prices.filter(pl.col("date") == day)["close"][0]
    )
    assert forecast["model_name"].unique().to_list() == ["stock_assets.AAPL"]
    assert forecast["model_version"].unique().to_list() == [home.responsive_version]
    assert forecast["predicted_return"].n_unique() > 1  # a model that reacts, not persistence
    metadata = materialization_metadata(result, "daily_forecast")
    assert metadata["market"] == "open"
    assert metadata["input_window"].endswith(f"..{day} (60 sessions)")
    # what a person looks at in the UI: the fan, the model's reliability, the 80 % range
    for chart in ("fan_chart", "reliability_diagram"):
        assert metadata[chart].startswith("![chart](data:image/png;base64,")
    frame = home.forecast(TICKER, day)
    last = frame.row(4, named=True)
    assert metadata["range_80_last_step"] == (
        f"{last['close_q10']:.2f}..{last['close_q90']:.2f} on {last['target_date']} "
        f"(p_up {last['p_up']:.2f})"
    )

    drift = check_evaluations(result)["feature_drift"]
    assert drift.partition == day.isoformat()  # one evaluation per date: the panel's
    assert drift.metadata["failing_tickers"].value == ([] if drift.passed else [TICKER])
    assert drift.metadata["results"].value[TICKER]["passed"] == drift.passed
    assert 0.0 <= drift.metadata["drift_share"].value <= 1.0
    assert drift.metadata["as_of_date"].value == day.isoformat()
    assert drift.metadata["drift_threshold"].value == 0.5
    report = Path(drift.metadata["report"].value)
    assert report.is_file() and report.stat().st_size > 100_000
    assert report == home.home / "lake" / "drift_reports" / TICKER / f"{day}.html"

    # Re-materializing replaces the partition exactly: same rows, no duplicates.
    again = home.daily(day, TICKER)
    assert again.success
    replaced = home.forecast(TICKER, day)
    assert replaced.drop("created_at").equals(forecast.drop("created_at"))
    assert replaced["created_at"][0] > forecast["created_at"][0]


def test_a_holiday_has_no_forecast_and_says_so(home: LoopHome):
    juneteenth = date(2024, 6, 19)  # a Wednesday, NYSE closed
    if not home.lake.path("daily_forecast", TICKER, LAST_INGESTED.isoformat()).exists():
        home.daily(LAST_INGESTED, TICKER)  # the schema to compare with, whatever ran before
    result = home.daily(juneteenth, TICKER)
    assert home.forecast(TICKER, juneteenth).height == 0
    assert home.performance(TICKER, juneteenth).height == 0
    assert home.forecast(TICKER, juneteenth).schema == pl.Schema(FORECAST_SCHEMA)
    assert home.performance(TICKER, juneteenth).schema == pl.Schema(PERFORMANCE_SCHEMA)
    assert "market closed" in materialization_metadata(result, "daily_forecast")["market"]
    assert "market closed" in materialization_metadata(result, "forecast_performance")["market"]
    assert check_evaluations(result) == {}  # nothing to judge on a closed day


def test_a_session_whose_prices_are_not_ingested_fails_clearly(home: LoopHome):
    result = home.daily(date(2024, 6, 17), TICKER, raise_on_error=False)
    assert not result.success
    [message] = [m for m in failures(result) if m.startswith("daily_forecast")]
    assert "prices for 2024-06-17 not ingested yet (raw_prices[AAPL] ends on 2024-06-14)" in message
    assert not home.lake.path("daily_forecast", TICKER, "2024-06-17").exists()


WALK_FORWARD = {"refit_every": 5, "epochs": 1, "hidden_size": 8, "num_layers": 1}


def test_a_walk_forward_never_forecasts_with_a_model_trained_on_or_after_its_date(home: LoopHome):
    from stock_assets.forecasting.backtest import backtest_tags
    from stock_assets.forecasting.model_choice import load_bundle
    from stock_assets.modeling.registry import registered_model_name

    start, end = date(2024, 5, 20), date(2024, 6, 7)
    production = home.mlflow.production_version(registered_model_name(TICKER)).version
    runs_before = home.instance.get_runs_count()
    result = home.materialize(
        ["daily_forecast", "forecast_performance"], tags=backtest_tags(TICKER, start, end),
        ops={"daily_forecast": WALK_FORWARD},
    )
    assert home.instance.get_runs_count() == runs_before + 1  # one run for the whole range
    assert check_evaluations(result) == {}
    forecasts = pl.concat(
        [home.forecast(TICKER, d) for d in trading_sessions(start, end).to_list()]
    )
    assert forecasts.height == 14 * 5  # 14 sessions (Memorial Day closed), 5 steps each
    refits = forecasts.select("model_name", "model_version", "as_of_date").unique()
    assert set(refits["model_name"]) == {registered_model_name(TICKER) + ".walk_forward"}
    assert refits["model_version"].n_unique() == 3  # blocks of 5, 5 and 4 sessions
    for name, version, as_of in refits.iter_rows():
        bundle = load_bundle(home.mlflow, name, version)
        assert date.fromisoformat(bundle.train_end) < as_of, (version, as_of)
    # each block's model is the newest one that could exist before its first date
    first_dates = refits.group_by("model_version").agg(pl.col("as_of_date").min())
    assert sorted(first_dates["as_of_date"].to_list()) == [
        date(2024, 5, 20), date(2024, 5, 28), date(2024, 6, 4)
    ]
    # evaluation artifacts only: production has not moved, and what matured is out of sample
    assert home.mlflow.production_version(registered_model_name(TICKER)).version == production
    performance = home.performance(TICKER, end)
    assert performance.height and not performance["in_sample"].any()
    assert performance["covered_80"].null_count() == 0


def test_a_backtest_is_one_run_and_writes_what_single_runs_would(home: LoopHome):
    start, end = date(2024, 5, 20), date(2024, 6, 14)
    runs_before = home.instance.get_runs_count()
    result = home.backtest(TICKER, start, end)
    assert home.instance.get_runs_count() == runs_before + 1
    weekdays = [d for d in pl.date_range(start, end, eager=True).to_list() if d.weekday() < 5]
    assert len(weekdays) == 20
    for day in weekdays:
        frame = home.forecast(TICKER, day)
        assert frame.height == (0 if day == date(2024, 5, 27) else 5), day  # Memorial Day
        assert home.lake.path("forecast_performance", TICKER, day.isoformat()).exists()
    assert check_evaluations(result) == {}  # a back-test judges no model
    materializations = [
        e.partition
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and e.asset_key == dg.AssetKey("daily_forecast")
    ]
    assert sorted(materializations) == [d.isoformat() for d in weekdays]
    assert materialization_metadata(result, "daily_forecast")["files_written"] == 20

    from_range = home.forecast(TICKER, date(2024, 6, 3))
    home.daily(date(2024, 6, 3), TICKER)
    assert (
        home.forecast(TICKER, date(2024, 6, 3))
        .drop("created_at")
        .equals(from_range.drop("created_at"))
    )

    performance = home.performance(TICKER, end)
    assert performance.height == 5  # the forecasts of the 5 previous sessions, h = 5..1
    assert sorted(performance["as_of_date"].to_list()) == [
        date(2024, 6, 7),
        date(2024, 6, 10),
        date(2024, 6, 11),
        date(2024, 6, 12),
        date(2024, 6, 13),
    ]
    # 18 forecasts made 05-20..06-13, x 5 horizons, minus the 4+3+2+1 not matured by 06-14.
    assert performance["rolling_n"].to_list() == [80] * 5
    assert performance["ape"].to_list() == pytest.approx(
        (
            (performance["predicted_close"] - performance["actual_close"]).abs()
            / performance["actual_close"]
        ).to_list()
    )
    assert performance["naive_close"].to_list() == pytest.approx(
        [home.forecast(TICKER, d)["last_close"][0] for d in performance["as_of_date"].to_list()]
    )


def test_forecasts_inside_the_training_window_are_in_sample(home: LoopHome):
    from stock_assets.forecasting.model_choice import load_bundle

    bundle = load_bundle(home.mlflow, "stock_assets.AAPL", home.responsive_version)
    train_end = date.fromisoformat(bundle.train_end)
    sessions = trading_sessions(date(2023, 6, 1), LAST_INGESTED).to_list()
    index = sessions.index(train_end)
    start, end = sessions[index - 10], sessions[index + 20]
    home.backtest(TICKER, start, end)
    frames = [home.performance(TICKER, d) for d in sessions[index - 10 : index + 21]]
    scored = pl.concat([f for f in frames if f.height])
    expected = scored["as_of_date"] <= train_end
    assert scored["in_sample"].to_list() == expected.to_list()
    assert scored["in_sample"].any() and not scored["in_sample"].all()
    last = home.performance(TICKER, end)
    out_of_sample = scored.filter(~pl.col("in_sample"))
    assert last["rolling_n"][0] == out_of_sample.height  # the window covers all of them here
    assert last["rolling_mape"][0] == pytest.approx(out_of_sample["ape"].mean())


def test_rerunning_performance_replaces_one_date_and_keeps_the_others(home: LoopHome):
    home.backtest(TICKER, date(2024, 6, 10), date(2024, 6, 14))
    before = {d: home.performance(TICKER, d) for d in (date(2024, 6, 13), date(2024, 6, 14))}
    home.materialize(["forecast_performance"], "2024-06-14")
    for day, frame in before.items():
        assert home.performance(TICKER, day).equals(frame), day


def test_dagsters_cli_backfills_a_date_range_in_one_run(home: LoopHome):
    """The documented user path: `dagster asset materialize --partition-range`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "MLFLOW_", "PYTEST_"))
    }
    env.update(DAGSTER_HOME=str(home.instance.root_directory), STOCK_ASSETS_HOME=str(home.home))
    runs_before = home.instance.get_runs_count()
    command = [
        str(Path(sys.executable).parent / "dagster"), "asset", "materialize",
        "-m", "stock_assets.definitions", "-a", "defs",
        "--select", "daily_forecast,forecast_performance",
        "--partition-range", "2024-04-01...2024-04-12",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert home.instance.get_runs_count() == runs_before + 1
    [run] = home.instance.get_runs(limit=1)
    assert run.tags["dagster/asset_partition_range_start"] == "2024-04-01"
    assert run.status == dg.DagsterRunStatus.SUCCESS
    days = [d for d in trading_sessions(date(2024, 4, 1), date(2024, 4, 12)).to_list()]
    assert all(home.forecast(TICKER, d).height == 5 for d in days)
    assert home.performance(TICKER, date(2024, 4, 12))["rolling_n"][0] > 0


def test_a_past_forecast_never_reads_later_prices(home: LoopHome):
    day = date(2024, 5, 15)
    home.daily(day, TICKER)
    clean = home.forecast(TICKER, day)

    # Corrupt every price after `day` in the lake, then rebuild indicators and Feast from them
    # (the last test of the module: the home keeps the corrupted prices).
    lake = home.lake
    prices = lake.read("raw_prices", TICKER)
    later = pl.col("date") > day
    corrupted = prices.with_columns(
        [
            pl.when(later).then(pl.col(c) * 3.0).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close", "adj_close")
        ]
        + [pl.when(later).then(pl.col("volume") * 50).otherwise(pl.col("volume")).alias("volume")]
    )
    lake.write(corrupted, "raw_prices", TICKER)
    home.materialize(["price_indicators"], TICKER)
    home.materialize(["feast_features"])
    home.backtest(TICKER, date(2024, 5, 13), day)  # a back-test over past dates...
    replayed = home.forecast(TICKER, day)
    assert replayed.drop("created_at").equals(clean.drop("created_at"))  # ...reads the same inputs
    # The corruption is real: a later date's forecast now starts from a tripled close.
    home.daily(date(2024, 6, 3), TICKER)
    assert home.forecast(TICKER, date(2024, 6, 3))["last_close"][0] == pytest.approx(
        3.0 * prices.filter(pl.col("date") == date(2024, 6, 3))["close"][0]
    )
