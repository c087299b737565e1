"""Optuna tuning: a study stored in SQLite resumes where it stopped, its pruner stops a hopeless
trial, and a child trains with the optimiser values its parent was tuned with."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from stock_assets.datasets.windows import SequenceData
from stock_assets.modeling.training import TrainConfig
from stock_assets.modeling.tuning import (
    PRUNER_WARMUP_EPOCHS,
    SearchSpace,
    TunedParams,
    best_params,
    best_trial,
    child_train_overrides,
    log_trials,
    recent_train_windows,
    split_params,
    tune,
)

TINY_SPACE = SearchSpace(
    learning_rate=(1e-3, 5e-3),
    hidden_size=(4, 8),
    num_layers=(1, 1),
    dropout=(0.0, 0.2),
    batch_size=(64,),
    architecture=("lstm", "attention_lstm"),
)
TINY_TRAINING = TrainConfig(epochs=2, patience=2)


def test_study_resumes_from_its_storage(child_data: SequenceData, tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = tune(child_data, 2, storage, "child-CHD", search_space=TINY_SPACE,
                 train_config=TINY_TRAINING)
    assert len(first.trials) == 2
    resumed = tune(child_data, 1, storage, "child-CHD", search_space=TINY_SPACE,
                   train_config=TINY_TRAINING)
    assert len(resumed.trials) == 3
    reloaded = optuna.load_study(study_name="child-CHD", storage=storage)
    assert [trial.number for trial in reloaded.trials] == [0, 1, 2]
    completed = [t for t in reloaded.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert completed and all(t.user_attrs["epochs_run"] >= 1 for t in completed)
    # each trial reported its per-epoch validation loss (what the median pruner compares)
    assert all(set(t.intermediate_values) <= {1, 2} and t.intermediate_values for t in completed)

    params = best_params(reloaded)
    assert params is not None
    assert set(params) == {"architecture", "hidden_size", "num_layers", "dropout",
                           "learning_rate", "batch_size"}
    assert params == min(completed, key=lambda t: t.value).params
    architecture, network, training = split_params(params)
    assert architecture in ("lstm", "attention_lstm")
    assert set(network) == {"hidden_size", "num_layers", "dropout"}
    assert set(training) == {"learning_rate", "batch_size"}


def test_a_stored_study_with_other_choices_fails_before_training_and_says_why(
    child_data: SequenceData, tmp_path
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    tune(child_data, 1, storage, "s", search_space=TINY_SPACE, train_config=TINY_TRAINING)
    wider = replace(TINY_SPACE, hidden_size=(4, 8, 16))
    with pytest.raises(ValueError, match=r"searched hidden_size in \[4, 8\].*delete-study"):
        tune(child_data, 1, storage, "s", search_space=wider, train_config=TINY_TRAINING)
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 1  # nothing lost


def test_best_params_of_an_empty_study_is_none(tmp_path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'empty.db'}", study_name="x")
    assert best_params(study) is None


# --- the pruner --------------------------------------------------------------------------------


def test_the_configured_pruner_prunes_a_hopeless_trial(child_data: SequenceData, tmp_path) -> None:
    """Two trials complete; a third whose validation losses are far worse (its validation targets
    shifted by 3 standard deviations, so any network misses them) is stopped at the pruner's
    first judged epoch and never counts as the best."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    training = TrainConfig(epochs=4, patience=10)
    tune(child_data, 2, storage, "parent", search_space=TINY_SPACE, train_config=training)
    hopeless = replace(child_data, y_val=child_data.y_val + 3.0 * child_data.target_scale)
    study = tune(hopeless, 1, storage, "parent", search_space=TINY_SPACE, train_config=training)

    good, hopeless_trial = study.trials[:2], study.trials[2]
    assert [t.state for t in good] == [TrialState.COMPLETE] * 2
    assert hopeless_trial.state == TrialState.PRUNED
    # judged from epoch PRUNER_WARMUP_EPOCHS on (the median pruner's warm-up), pruned right there
    assert sorted(hopeless_trial.intermediate_values) == list(range(1, PRUNER_WARMUP_EPOCHS + 1))
    judged = hopeless_trial.intermediate_values[PRUNER_WARMUP_EPOCHS]
    assert judged > 2 * max(t.intermediate_values[PRUNER_WARMUP_EPOCHS] for t in good)
    assert all(len(t.intermediate_values) == 4 for t in good)  # the good ones ran every epoch
    assert best_trial(study).trial in {0, 1}

    # The MLflow UI lists each trial as a run; the pruned one is KILLED, its curve cut short.
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("tuning", artifact_location=(tmp_path / "a").as_uri())
    run_ids = log_trials(client, experiment, study, first_trial=1)  # trial 0 logged before
    runs = [client.get_run(run_id) for run_id in run_ids]
    assert [r.data.tags["optuna_trial"] for r in runs] == ["1", "2"]
    assert [r.info.status for r in runs] == ["FINISHED", "KILLED"]
    assert [r.data.tags["optuna_state"] for r in runs] == ["COMPLETE", "PRUNED"]
    curve = client.get_metric_history(run_ids[1], "val_loss")
    assert [(m.step, m.value) for m in curve] == sorted(hopeless_trial.intermediate_values.items())
    assert "best_val_loss" not in runs[1].data.metrics
    assert float(runs[0].data.params["learning_rate"]) == good[1].params["learning_rate"]


def test_trials_train_on_the_most_recent_windows_only(child_data: SequenceData, tmp_path) -> None:
    subset = recent_train_windows(child_data, 50)
    assert len(subset.y_train) == len(subset.X_train) == len(subset.anchor_rows_train) == 50
    np.testing.assert_array_equal(subset.X_train, child_data.X_train[-50:])
    np.testing.assert_array_equal(subset.anchor_dates_train, child_data.anchor_dates_train[-50:])
    np.testing.assert_array_equal(subset.X_val, child_data.X_val)  # judged as the full training
    assert recent_train_windows(child_data, None) is child_data
    with pytest.raises(ValueError, match="max_train_windows"):
        recent_train_windows(child_data, 0)

    study = tune(child_data, 1, f"sqlite:///{tmp_path / 'o.db'}", "s", search_space=TINY_SPACE,
                 train_config=TINY_TRAINING, max_train_windows=50)
    assert study.trials[0].user_attrs["n_train_windows"] == 50


# --- what a model takes from the study ---------------------------------------------------------


def test_a_childs_overrides_are_the_tuned_optimiser_values_only() -> None:
    tuned = TunedParams("parent_model", 3, 0.71234567, {
        "architecture": "attention_lstm", "hidden_size": 16, "num_layers": 2, "dropout": 0.3,
        "learning_rate": 0.0021, "batch_size": 128,
    })
    logged = tuned.mlflow_params()
    assert all(isinstance(value, str) for value in logged.values())  # what MLflow stores
    assert logged["tuned_study"] == "parent_model" and logged["tuned_trial"] == "3"
    assert TunedParams.from_mlflow_params({**logged, "other": "x"}) == replace(tuned, value=0.712346)
    assert TunedParams.from_mlflow_params({"train_learning_rate": "0.001"}) is None
    assert child_train_overrides(tuned) == {"learning_rate": 0.0021, "batch_size": 128}
    assert child_train_overrides(None) == {}


# --- through Dagster: the study, the parent, a child -------------------------------------------

TINY_MODEL = {"epochs": 1, "hidden_size": 8, "num_layers": 1, "batch_size": 32,
              "learning_rate": 3e-3, "seed": 1, "naive_tolerance": 10.0, "interval_tolerance": 10.0}


@pytest.fixture(scope="module")
def tuned_home(tmp_path_factory: pytest.TempPathFactory):
    """A real instance, MLflow store, Feast repo and Optuna storage under one home: data, a
    2-trial study, a parent trained with its best trial, then children with and without it."""
    import dagster as dg

    from stock_assets.datasets.definitions import defs as datasets
    from stock_assets.features.definitions import defs as features
    from stock_assets.ingestion.definitions import defs as ingestion
    from stock_assets.modeling.definitions import defs as modeling
    from stock_assets.partitions import ticker_partitions
    from stock_assets.testing import loop_home

    with loop_home(tmp_path_factory.mktemp("tuned"), "2023-01-03") as loop:
        home, instance = loop.home, loop.instance
        resources = loop.resources("2024-06-28")
        assets = [*ingestion.assets, *features.assets, *datasets.assets, *modeling.assets]
        instance.add_dynamic_partitions(ticker_partitions.name, ["AAPL"])

        def run(selection: list[str], partition: str | None = None, **configs: dict):
            result = dg.materialize(
                assets, selection=dg.AssetSelection.assets(*selection), partition_key=partition,
                resources=resources, instance=instance, raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}},
                            "ops": {op: {"config": c} for op, c in configs.items()}},
            )
            [materialization] = [  # child_model's node also materializes model_history
                m for m in result.asset_materializations_for_node(selection[-1])
                if m.asset_key.to_user_string() == selection[-1]
            ]
            return {k: v.value for k, v in materialization.metadata.items()}

        sequences = {"context_length": 20, "horizon": 5}
        run(["market_index_prices", "market_index_indicators"])
        run(["raw_prices", "price_indicators"], "AAPL")
        run(["feast_features"])
        run(["market_index_sequences"], market_index_sequences=sequences)
        outputs = {
            "study": run(["model_hyperparameters"], model_hyperparameters={
                "n_trials": 2, "epochs_per_trial": 1, "max_train_windows": 100}),
            "parent": run(["parent_model"], parent_model=TINY_MODEL),
            "fine_tune": run(["training_sequences", "model_history", "child_model"], "AAPL",
                             training_sequences=sequences, child_model=TINY_MODEL),
            "freeze": run(["training_sequences", "model_history", "child_model"], "AAPL",
                          training_sequences=sequences,
                          child_model={**TINY_MODEL, "strategy": "freeze"}),
            "untuned": run(["training_sequences", "model_history", "child_model"], "AAPL",
                           training_sequences=sequences,
                           child_model={**TINY_MODEL, "use_tuned_params": False}),
        }
        yield home, resources, outputs


def test_the_parent_and_its_children_train_with_the_studys_best_trial(tuned_home) -> None:
    home, resources, outputs = tuned_home
    study = optuna.load_study(study_name="parent_model", storage=f"sqlite:///{home / 'optuna.db'}")
    best = study.best_trial
    assert len(study.trials) == 2 and outputs["study"]["n_trials"] == 2
    assert all(t.user_attrs["n_train_windows"] == 100 for t in study.trials)
    assert outputs["study"]["best_params"] == best.params
    client = resources["mlflow"].client()
    trial_runs = client.search_runs(
        [client.get_experiment_by_name("stock_assets-tuning").experiment_id])
    assert sorted(r.data.tags["optuna_trial"] for r in trial_runs) == ["0", "1"]
    assert outputs["study"]["mlflow_trial_runs"] == 2

    def params(output: dict) -> dict[str, str]:
        return dict(client.get_run(output["mlflow_run_id"]).data.params)

    # The parent: the whole trial (network and optimiser), and where it came from.
    parent = params(outputs["parent"])
    assert (parent["tuned_study"], parent["tuned_trial"]) == ("parent_model", str(best.number))
    assert float(parent["train_learning_rate"]) == best.params["learning_rate"]
    assert int(parent["train_batch_size"]) == best.params["batch_size"]
    assert int(parent["net_hidden_size"]) == best.params["hidden_size"]
    assert outputs["parent"]["tuned_from"].startswith(f"study parent_model, trial #{best.number}")

    # fine_tune: the tuned rate x 0.2 and the tuned batch size, not its config's 3e-3 and 32.
    child = params(outputs["fine_tune"])
    assert (child["tuned_study"], child["tuned_trial"]) == ("parent_model", str(best.number))
    assert float(child["train_learning_rate"]) == best.params["learning_rate"]
    assert float(child["lr_factor"]) == 0.2
    assert float(child["effective_learning_rate"]) == pytest.approx(
        0.2 * best.params["learning_rate"], rel=1e-5)
    assert int(child["train_batch_size"]) == best.params["batch_size"]
    assert int(child["net_hidden_size"]) == best.params["hidden_size"]  # the parent's network
    assert outputs["fine_tune"]["batch_size"] == best.params["batch_size"]
    # freeze: the head trains at the tuned rate itself
    freeze = params(outputs["freeze"])
    assert float(freeze["effective_learning_rate"]) == pytest.approx(
        best.params["learning_rate"], rel=1e-5)
    # use_tuned_params false: the config's own values
    untuned = params(outputs["untuned"])
    assert untuned["tuned_study"] == "none"
    assert (float(untuned["train_learning_rate"]), untuned["train_batch_size"]) == (3e-3, "32")


def test_the_model_cards_show_the_tuned_values_and_their_trial(tuned_home) -> None:
    import polars as pl

    home, _, _ = tuned_home
    best = optuna.load_study(study_name="parent_model",
                             storage=f"sqlite:///{home / 'optuna.db'}").best_trial
    parent = pl.read_parquet(home / "lake" / "parent_model.parquet").row(0, named=True)
    assert (parent["tuned_study"], parent["tuned_trial"]) == ("parent_model", best.number)
    assert parent["learning_rate"] == best.params["learning_rate"]
    assert parent["batch_size"] == best.params["batch_size"]
    history = pl.read_parquet(home / "lake" / "model_history" / "AAPL.parquet")
    assert history["tuned_trial"].to_list() == [best.number, best.number, None]
    assert history["batch_size"].to_list() == [best.params["batch_size"]] * 2 + [32]
    assert history["learning_rate"].to_list() == pytest.approx(
        [0.2 * best.params["learning_rate"], best.params["learning_rate"], 3e-3 * 0.2])
