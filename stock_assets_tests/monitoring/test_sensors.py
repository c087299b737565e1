"""The retraining sensors against a real instance, with check evaluations reported directly (the
way the production tests inject failures): each failure is requested once, with its reason."""

from collections.abc import Iterator

import dagster as dg
import pytest

from stock_assets.monitoring.retraining import RETRAIN_REASON_TAG, RETRAIN_TICKER_TAG

DAY = "2024-06-28"
MAPE = dg.AssetCheckKey(dg.AssetKey("forecast_performance"), "forecast_mape")
COVERAGE = dg.AssetCheckKey(dg.AssetKey("forecast_performance"), "interval_coverage")
TICKER_DRIFT = dg.AssetCheckKey(dg.AssetKey("daily_forecast"), "feature_drift")
INDEX_DRIFT = dg.AssetCheckKey(dg.AssetKey("market_index_indicators"), "feature_drift")


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from stock_assets.definitions import defs

    return defs


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        test_instance.add_dynamic_partitions("ticker", ["AAPL", "MSFT"])
        yield test_instance


def report(instance, key: dg.AssetCheckKey, passed: bool, partition: str | None, why: str = ""):
    """One evaluation; "DATE|TICKER" is reported the way the panel checks report it: partition
    DATE, the ticker's verdict in `results`."""
    metadata = {}
    if partition and "|" in partition:
        partition, ticker = partition.split("|")
        metadata = {"results": dg.MetadataValue.json({ticker: {"passed": passed, "description": why}})}
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=key.asset_key,
            check_name=key.name,
            passed=passed,
            partition=partition,
            description=why or None,
            metadata=metadata,
        )
    )


def report_panel(instance, key: dg.AssetCheckKey, verdicts: dict[str, tuple[bool, str]]):
    """One panel evaluation on DAY: every ticker's verdict in `results`."""
    results = {t: {"passed": ok, "description": why} for t, (ok, why) in verdicts.items()}
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=key.asset_key, check_name=key.name, partition=DAY,
            passed=all(ok for ok, _ in verdicts.values()),
            metadata={"results": dg.MetadataValue.json(results)},
        )
    )


def test_one_panel_evaluation_retrains_only_its_failing_tickers(defs, instance):
    instance.add_dynamic_partitions("ticker", [f"T{i:03d}" for i in range(300)])
    results = {f"T{i:03d}": {"passed": i not in (7, 250), "description": f"verdict {i}"}
               for i in range(300)}
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=MAPE.asset_key, check_name=MAPE.name, passed=False, partition=DAY,
            description="2 of 300 tickers failed", metadata={"results": dg.MetadataValue.json(results)},
        )
    )
    requests = Ticks(defs, instance)().run_requests
    assert sorted(r.partition_key for r in requests) == ["T007", "T250"]
    assert all(r.job_name == "retrain_job" for r in requests)
    assert "verdict 7" in next(r for r in requests if r.partition_key == "T007").tags[RETRAIN_REASON_TAG]


class Ticks:
    """Evaluates a sensor tick after tick, carrying its cursor as the daemon would."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.sensor = defs.resolve_sensor_def("retraining_sensor")
        self.defs, self.instance, self.cursor = defs, instance, None

    def __call__(self) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=self.instance, definitions=self.defs, cursor=self.cursor
        )
        result = self.sensor(context)
        self.cursor = result.cursor
        return result


def test_retrain_overrides_are_valid_run_config_of_the_retrain_jobs(defs, monkeypatch):
    from stock_assets.monitoring.sensors import retrain_run_config
    from stock_assets.monitoring_settings import MonitoringSettings

    monkeypatch.delenv("STOCK_ASSETS_RETRAIN_EPOCHS", raising=False)
    monkeypatch.delenv("STOCK_ASSETS_RETRAIN_NAIVE_TOLERANCE", raising=False)
    assert retrain_run_config(MonitoringSettings.from_env(), parent=False) == {}
    monkeypatch.setenv("STOCK_ASSETS_RETRAIN_EPOCHS", "3")
    monkeypatch.setenv("STOCK_ASSETS_RETRAIN_NAIVE_TOLERANCE", "1.5")
    settings = MonitoringSettings.from_env()
    for job_name, asset, parent in (("retrain_job", "child_model", False),
                                    ("parent_retrain_job", "parent_model", True)):
        config = retrain_run_config(settings, parent=parent)
        assert config == {"ops": {asset: {"config": {"epochs": 3, "naive_tolerance": 1.5}}}}
        dg.validate_run_config(defs.resolve_job_def(job_name), config)


def test_each_failure_is_requested_once_with_its_reason(defs, instance, monkeypatch):
    monkeypatch.setenv("STOCK_ASSETS_RETRAIN_EPOCHS", "3")
    tick = Ticks(defs, instance)
    report_panel(instance, MAPE, {"AAPL": (False, "MAPE 9.00% > threshold 5.00%"), "MSFT": (True, "")})
    [request] = tick().run_requests
    assert request.job_name == "retrain_job" and request.partition_key == "AAPL"
    assert request.tags[RETRAIN_REASON_TAG] == (
        f"forecast_mape failed on {DAY}: MAPE 9.00% > threshold 5.00%"
    )
    assert (
        request.tags[RETRAIN_TICKER_TAG] == "AAPL"
        and request.tags["stock_assets/kind"] == "training"
    )
    assert request.run_config == {"ops": {"child_model": {"config": {"epochs": 3}}}}
    assert request.run_key.startswith("retrain-AAPL-")

    second = tick()
    assert second.run_requests == []
    assert second.skip_reason.skip_message == "0 new check evaluations; no failed forecast checks"

    report(instance, TICKER_DRIFT, False, f"{DAY}|MSFT", "12 of 21 features drifted")
    [msft] = tick().run_requests
    assert msft.partition_key == "MSFT"
    assert msft.tags[RETRAIN_REASON_TAG].startswith(f"feature_drift failed on {DAY}")
    assert msft.run_key != request.run_key


def test_a_failed_interval_coverage_retrains_that_ticker_with_its_reason(defs, instance):
    tick = Ticks(defs, instance)
    why = "80 % interval covered 52.00% of 60 matured forecasts, outside [70.00%, 90.00%]."
    report_panel(instance, COVERAGE, {"MSFT": (False, why), "AAPL": (True, "")})
    [request] = tick().run_requests
    assert request.job_name == "retrain_job" and request.partition_key == "MSFT"
    assert request.tags[RETRAIN_REASON_TAG] == f"interval_coverage failed on {DAY}: {why}"


def test_evaluations_without_a_ticker_are_ignored(defs, instance):
    report(instance, MAPE, False, None)  # a back-test range records no partition
    result = Ticks(defs, instance)()
    assert result.run_requests == []
    assert result.skip_reason.skip_message == "0 new check evaluations; no failed forecast checks"


def after_parent_run(defs, instance, tags: dict[str, str]):
    """A successful stand-in parent_retrain_job run with `tags`, and what the children sensor does."""
    @dg.op
    def noop() -> None:
        pass

    @dg.job(name="parent_retrain_job")
    def stand_in():
        noop()

    run = stand_in.execute_in_process(instance=instance, tags=tags)
    context = dg.build_run_status_sensor_context(
        sensor_name="parent_retrain_children_sensor", dagster_instance=instance,
        dagster_run=run.dagster_run, dagster_event=run.get_run_success_event(),
    )
    return run, defs.resolve_sensor_def("parent_retrain_children_sensor")(context)


def test_index_drift_retrains_the_parent_then_the_children(defs, instance):
    report(instance, INDEX_DRIFT, False, None, "15 of 21 features drifted")
    report(instance, MAPE, False, f"{DAY}|AAPL")
    [parent] = Ticks(defs, instance)().run_requests
    assert parent.job_name == "parent_retrain_job" and parent.partition_key is None
    assert parent.tags[RETRAIN_REASON_TAG] == "feature_drift failed: 15 of 21 features drifted"

    # The parent's run succeeds: every registered child follows, each once.
    run, children = after_parent_run(defs, instance, parent.tags)
    assert [(r.partition_key, r.run_key) for r in children] == [
        ("AAPL", f"after-parent-{run.run_id}-AAPL"),
        ("MSFT", f"after-parent-{run.run_id}-MSFT"),
    ]
    assert all("15 of 21 features drifted" in r.tags[RETRAIN_REASON_TAG] for r in children)


def test_a_parent_run_whose_children_the_plan_trains_retrains_no_child(defs, instance):
    from stock_assets.plan import CHILDREN_IN_PLAN_TAG, model_stages

    [parent_stage, _] = model_stages(["AAPL", "MSFT"])
    [launch] = parent_stage.launches
    assert dict(launch.tags) == dict([CHILDREN_IN_PLAN_TAG])

    _, result = after_parent_run(defs, instance, dict(launch.tags))
    assert isinstance(result, dg.SkipReason) and "trained by the same plan" in result.skip_message
