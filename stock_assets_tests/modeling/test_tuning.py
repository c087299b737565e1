"""Optuna tuning: a study stored in SQLite resumes where it stopped."""

from __future__ import annotations

import optuna

from stock_assets.datasets.windows import SequenceData
from stock_assets.modeling.training import TrainConfig
from stock_assets.modeling.tuning import SearchSpace, best_params, split_params, tune

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
