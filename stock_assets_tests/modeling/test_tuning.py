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
