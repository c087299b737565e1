"""dagster-mlflow's end_mlflow_on_run_finished hook on the training jobs: a step that leaves an
MLflow run active (here: a fluent run it never ends) has that run ended by the hook, FAILED when
the step failed, so no run stays RUNNING in a long-lived step process."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import mlflow
import pytest
from dagster_mlflow import end_mlflow_on_run_finished

from stock_assets.modeling.registry import MlflowResource


def test_every_training_job_carries_the_hook():
    from stock_assets.definitions import defs

    for name in ("retrain_job", "parent_retrain_job", "tuning_job"):
        hooks = {hook.name for hook in defs.resolve_job_def(name).hook_defs}
        assert end_mlflow_on_run_finished.name in hooks, name
    assert not defs.resolve_job_def("daily_job").hook_defs


@pytest.mark.parametrize(("fail", "status"), [(True, "FAILED"), (False, "FINISHED")])
def test_the_hook_ends_a_run_a_step_left_active(tmp_path: Path, fail: bool, status: str):
    resource = MlflowResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                              artifact_root=(tmp_path / "artifacts").as_uri())
    started: list[str] = []

    @dg.op(required_resource_keys={"mlflow"})
    def train(context) -> None:
        mlflow.set_tracking_uri(context.resources.mlflow.tracking_uri)
        run = mlflow.start_run(experiment_id=context.resources.mlflow.experiment_id("hooked"))
        started.append(run.info.run_id)
        if fail:
            raise RuntimeError("the step dies with its MLflow run open")

    @dg.job(resource_defs={"mlflow": resource}, hooks={end_mlflow_on_run_finished})
    def training():
        train()

    try:
        result = training.execute_in_process(raise_on_error=False)
        assert result.success is not fail
        assert mlflow.active_run() is None
        assert resource.client().get_run(started[0]).info.status == status
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
