"""The daily loop end to end on a real Dagster instance: a regime shock hits one ticker, its
forecast check fails, the retraining sensor retrains that ticker only, the registry's gate decides,
and the sensor does not ask again.

Synthetic market from 2019 with a -25 % crash and 3x volatility on NVDA from 2024-05-01. Models
are trained on data up to 2024-04-12; the daily job is replayed the session before the shock and
two sessions a week after it (single-run back-tests fill the days between, as a user would).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

from stock_assets.ingestion.sources import ShockConfig
from stock_assets.modeling.registry import registered_model_name
from stock_assets.monitoring.retraining import RETRAIN_REASON_TAG
from stock_assets.testing import (
    QUIET,
    LoopHome,
    failures,
    loop_home,
)

TICKERS = ("AAPL", "NVDA")
SHOCKED = "NVDA"
SHOCK = "2024-05-01"
TRAINED_UNTIL = "2024-04-12"
MARKET_END = "2024-05-10"
BEFORE = ("2024-04-30",)
AFTER = ("2024-05-09", "2024-05-10")


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def per_ticker(result: dg.ExecuteInProcessResult, day: str) -> dict[tuple[str, str], dict]:
    """(day, ticker) -> {check: that ticker's verdict} from ONE panel run's evaluations."""
    verdicts: dict[tuple[str, str], dict] = {}
    for name, evaluation in evaluations(result).items():
        assert evaluation.partition == day  # one evaluation per date, for every ticker
        failing = evaluation.metadata["failing_tickers"].value
        for ticker, verdict in evaluation.metadata["results"].value.items():
            assert (not verdict["passed"]) == (ticker in failing)
            verdicts.setdefault((day, ticker), {})[name] = verdict
    return verdicts


@contextmanager
def replayed_home(root: Path) -> Iterator[tuple[LoopHome, dict]]:
    """The home after the replay, and every daily run's check verdicts by (day, ticker)."""
    shock = ShockConfig(ticker=SHOCKED, date=SHOCK, price_jump=-0.25, vol_multiplier=3.0)
    with loop_home(root, "2019-01-02", [shock], STOCK_ASSETS_RETRAIN_EPOCHS="1") as home:
        home.ingest(TICKERS, TRAINED_UNTIL)
        home.train(TICKERS)
        home.ingest(TICKERS, MARKET_END)
        verdicts: dict[tuple[str, str], dict[str, dg.AssetCheckEvaluation]] = {}
        for ticker in TICKERS:
            home.backtest(ticker, "2024-04-15", "2024-04-29")
        for day in BEFORE:
            verdicts |= per_ticker(home.daily(day), day)  # the whole universe in one run
        for ticker in TICKERS:
            home.backtest(ticker, "2024-05-01", "2024-05-08")
        for day in AFTER:
            verdicts |= per_ticker(home.daily(day), day)
        yield home, verdicts


def failed(verdict: dict[str, dict]) -> set[str]:
    return {name for name, evaluation in verdict.items() if not evaluation["passed"]}


def test_a_shock_fails_one_ticker_whose_retrain_the_sensor_requests_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # The bands of 1-epoch networks on a synthetic market are not what this test judges (the
    # interval_coverage check has tests of its own): it never has enough matured forecasts here.
    monkeypatch.setenv("STOCK_ASSETS_COVERAGE_MIN_MATURED", "1000000")
    with replayed_home(tmp_path) as (home, verdicts):
        shock_fails_the_shocked_ticker_only(verdicts)
        the_sensor_retrains_it_once_and_the_gate_decides(home)


def shock_fails_the_shocked_ticker_only(verdicts: dict) -> None:
    for (day, ticker), verdict in verdicts.items():
        assert set(verdict) == {"feature_drift", "forecast_mape", "interval_coverage"}, (day, ticker)
        if ticker == SHOCKED and day in AFTER:
            assert failed(verdict), (day, ticker, {k: v["description"] for k, v in verdict.items()})
        else:
            assert not failed(verdict), (
                day,
                ticker,
                {k: v["description"] for k, v in verdict.items()},
            )
    after = verdicts[(AFTER[-1], SHOCKED)]["forecast_mape"]
    assert after["evidence"].startswith("live:")
    assert after["mape"] > 0.05  # the default threshold


def the_sensor_retrains_it_once_and_the_gate_decides(home: LoopHome) -> None:
    defs = home.definitions()
    sensor = defs.resolve_sensor_def("retraining_sensor")
    mlflow = home.mlflow
    name = registered_model_name(SHOCKED)
    versions_before = len(mlflow.client().search_model_versions(f"name = '{name}'"))

    first = sensor(dg.build_sensor_context(instance=home.instance, definitions=defs))
    [request] = first.run_requests
    assert request.job_name == "retrain_job" and request.partition_key == SHOCKED
    assert request.tags[RETRAIN_REASON_TAG].startswith(f"forecast_mape failed on {AFTER[-1]}")
    assert request.run_key.startswith(f"retrain-{SHOCKED}-")
    assert request.run_config == {"ops": {"child_model": {"config": {"epochs": 1}}}}

    run = defs.resolve_job_def("retrain_job").execute_in_process(
        partition_key=request.partition_key,
        run_config={**QUIET, **request.run_config},
        tags={**request.tags, "dagster/run_key": request.run_key},
        instance=home.instance,
        raise_on_error=False,
    )
    assert run.success, failures(run)
    assert len(mlflow.client().search_model_versions(f"name = '{name}'")) == versions_before + 1
    card = home.lake.read("child_model", SHOCKED).row(0, named=True)
    production = mlflow.production_version(name)
    assert card["model_version"] == str(versions_before + 1)
    assert card["production_version"] == production.version
    assert card["promoted"] == (production.version == card["model_version"])
    assert card["decision_reason"]
    [stored] = home.instance.get_runs(dg.RunsFilter(job_name="retrain_job"))
    assert stored.tags["dagster/partition"] == SHOCKED and stored.tags[RETRAIN_REASON_TAG]

    # The next tick sees nothing new: no request.
    second = sensor(
        dg.build_sensor_context(instance=home.instance, definitions=defs, cursor=first.cursor)
    )
    assert second.run_requests == []
    assert "0 new check evaluations" in second.skip_reason.skip_message

    # The check fails again the next evening: the cooldown holds the retrain back.
    again = per_ticker(home.daily(AFTER[-1], SHOCKED), AFTER[-1])
    assert set(again) == {(AFTER[-1], SHOCKED)}  # a run for one ticker judges that ticker only
    assert failed(again[(AFTER[-1], SHOCKED)])
    third = sensor(
        dg.build_sensor_context(instance=home.instance, definitions=defs, cursor=second.cursor)
    )
    assert third.run_requests == []
    assert (
        f"skip {SHOCKED}: retrained 0.0 h ago, within the 24 h cooldown"
        in third.skip_reason.skip_message
    )
