"""Hyperparameter search with Optuna over the same training loop the models use.

Why: the defaults are a compromise for 2 CPU cores; a study stored in a database (sqlite:///...)
can be resumed run after run, and its median pruner stops hopeless trials early from their
per-epoch validation losses. The run command runs a small study before the parent trains (a few
trials of a few epochs on the most recent training windows); the parent then trains with the best
trial's parameters and every child inherits the ones that apply to it (see child_train_overrides).
Optuna is imported lazily so loading the Dagster code stays fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from stock_assets.datasets.windows import SequenceData

if TYPE_CHECKING:
    import optuna

    from stock_assets.modeling.training import TrainConfig

NETWORK_PARAMS: tuple[str, ...] = ("hidden_size", "num_layers", "dropout")
TRAIN_PARAMS: tuple[str, ...] = ("learning_rate", "batch_size")
# The median pruner's defaults: a trial is judged against the completed ones only once this many
# completed, and at epoch PRUNER_WARMUP_EPOCHS at the earliest (the first epoch's loss is noisy).
PRUNER_STARTUP_TRIALS = 2
PRUNER_WARMUP_EPOCHS = 2


@dataclass
class SearchSpace:
    """Ranges searched, sized for a CPU: the parent and every child inherit the tuned network, so a
    wide one would slow every training after it. Keep the choices stable for a study name: Optuna
    refuses a resumed study whose categorical choices changed."""

    learning_rate: tuple[float, float] = (1e-4, 3e-3)  # log-uniform
    hidden_size: tuple[int, ...] = (16, 32, 64)
    num_layers: tuple[int, int] = (1, 2)
    dropout: tuple[float, float] = (0.0, 0.4)
    batch_size: tuple[int, ...] = (32, 64, 128)
    architecture: tuple[str, ...] = ("lstm", "attention_lstm")


@dataclass(frozen=True)
class TunedParams:
    """The best completed trial of a study: what a model trained with, and where it came from."""

    study: str
    trial: int
    value: float  # the trial's best validation loss
    params: dict[str, object] = field(default_factory=dict)

    def mlflow_params(self) -> dict[str, str]:
        """MLflow params of a run trained with these (children read them back from the parent's run)."""
        return {
            "tuned_study": self.study,
            "tuned_trial": str(self.trial),
            "tuned_val_loss": f"{self.value:.6f}",
            "tuned_params": json.dumps(self.params, sort_keys=True),
        }

    @classmethod
    def from_mlflow_params(cls, params: dict[str, str]) -> TunedParams | None:
        """What mlflow_params logged, or None for a run trained without a study."""
        if "tuned_params" not in params:
            return None
        return cls(
            study=params["tuned_study"],
            trial=int(params["tuned_trial"]),
            value=float(params["tuned_val_loss"]),
            params=json.loads(params["tuned_params"]),
        )

    def label(self) -> str:
        return f"study {self.study}, trial #{self.trial} (val loss {self.value:.4f})"


def child_train_overrides(tuned: TunedParams | None) -> dict[str, object]:
    """TrainConfig overrides of a child whose parent trained with `tuned`.

    A child takes the network (architecture, hidden size, layers, dropout) with the parent's
    weights, so of the tuned values only the optimiser's apply: the learning rate, which
    train_network still multiplies by the child's lr_factor (fine_tune: 0.2 x the tuned rate;
    freeze: the tuned rate for the head), and the batch size. Epochs and patience stay the child's
    own: the study's trials ran a few epochs on a subset, to rank parameters, not to set a budget.
    """
    if tuned is None:
        return {}
    return {key: tuned.params[key] for key in TRAIN_PARAMS if key in tuned.params}


def _suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, object]:
    return {
        "architecture": trial.suggest_categorical("architecture", list(space.architecture)),
        "hidden_size": trial.suggest_categorical("hidden_size", list(space.hidden_size)),
        "num_layers": trial.suggest_int("num_layers", *space.num_layers),
        "dropout": trial.suggest_float("dropout", *space.dropout),
        "learning_rate": trial.suggest_float("learning_rate", *space.learning_rate, log=True),
        "batch_size": trial.suggest_categorical("batch_size", list(space.batch_size)),
    }


def split_params(params: dict[str, object]) -> tuple[str, dict[str, object], dict[str, object]]:
    """(architecture, network keyword arguments, TrainConfig overrides) from a trial's params."""
    network = {key: params[key] for key in NETWORK_PARAMS if key in params}
    train = {key: params[key] for key in TRAIN_PARAMS if key in params}
    return str(params.get("architecture", "lstm")), network, train


def recent_train_windows(data: SequenceData, max_windows: int | None) -> SequenceData:
    """`data` with only its last `max_windows` training windows (those nearest validation);
    validation, test and the train-only scalers are unchanged, so trials are scored as the full
    training would be, only faster. None or more windows than there are: `data` itself."""
    if max_windows is None or max_windows >= len(data.y_train):
        return data
    if max_windows < 1:
        raise ValueError(f"max_train_windows must be at least 1, got {max_windows}")
    keep = slice(len(data.y_train) - max_windows, None)
    return replace(
        data,
        X_train=data.X_train[keep],
        y_train=data.y_train[keep],
        anchor_dates_train=data.anchor_dates_train[keep],
        anchor_close_train=data.anchor_close_train[keep],
        anchor_rows_train=data.anchor_rows_train[keep],
    )


def study_pruner(
    startup_trials: int = PRUNER_STARTUP_TRIALS, warmup_epochs: int = PRUNER_WARMUP_EPOCHS
) -> optuna.pruners.BasePruner:
    """The pruner every study here uses: a trial whose validation loss at an epoch is worse than
    the median of the completed trials' at that epoch stops there."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)


def tune(
    data: SequenceData,
    n_trials: int,
    storage: str,
    study_name: str,
    timeout_s: float | None = None,
    seed: int = 42,
    search_space: SearchSpace | None = None,
    train_config: TrainConfig | None = None,
    warmup_epochs: int = PRUNER_WARMUP_EPOCHS,
    max_train_windows: int | None = None,
) -> optuna.Study:
    """Run n_trials more trials (minimising the best validation loss) in the study
    `study_name` at `storage`, creating it or resuming it. Returns the study."""
    import optuna

    from stock_assets.modeling.networks import build_network
    from stock_assets.modeling.training import (
        TrainConfig,
        set_determinism,
        train_network,
    )

    space = search_space or SearchSpace()
    base_config = train_config or TrainConfig(seed=seed)
    data = recent_train_windows(data, max_train_windows)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction="minimize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed + len(_existing_trials(storage, study_name))),
        pruner=study_pruner(warmup_epochs=warmup_epochs),
    )

    def objective(trial: optuna.Trial) -> float:
        params = _suggest(trial, space)
        architecture, network_params, train_params = split_params(params)
        set_determinism(seed)
        model = build_network(
            architecture, n_features=data.n_features, horizon=data.horizon, **network_params
        )
        config = replace(base_config, seed=seed, **train_params)
        trial.set_user_attr("n_train_windows", len(data.y_train))

        def report(epoch: int, train_loss: float, val_loss: float) -> None:
            trial.report(val_loss, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} (val loss {val_loss:.4f})")

        result = train_network(model, data, config, on_epoch=report)
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("epochs_run", result.epochs_run)
        trial.set_user_attr("seconds", round(result.seconds, 3))
        return result.best_val_loss

    if n_trials > 0:
        _check_choices(study, space, storage)
        study.optimize(objective, n_trials=n_trials, timeout=timeout_s)
    return study


def _check_choices(study: optuna.Study, space: SearchSpace, storage: str) -> None:
    """Fail before any training when the stored study searched other categorical choices (Optuna
    would fail every new trial with a bare 'dynamic value space' error), saying what to do."""
    for trial in study.trials:
        for name, distribution in trial.distributions.items():
            choices = getattr(distribution, "choices", None)
            wanted = getattr(space, name, None)
            if choices is not None and wanted is not None and tuple(choices) != tuple(wanted):
                raise ValueError(
                    f"Optuna study {study.study_name!r} in {storage} searched {name} in "
                    f"{list(choices)}, this search space has {list(wanted)}: delete the study "
                    f"(optuna delete-study --study-name {study.study_name} --storage {storage}) "
                    "or point OPTUNA_STORAGE elsewhere"
                )


def stored_trial_count(storage: str, study_name: str) -> int:
    """Trials the stored study holds (0 before its first trial): the next trial's number."""
    return len(_existing_trials(storage, study_name))


def _existing_trials(storage: str, study_name: str) -> list[object]:
    """Trials already stored, so a resumed study's sampler does not replay the same seeds."""
    import optuna

    try:
        return optuna.load_study(study_name=study_name, storage=storage).trials
    except KeyError:
        return []


def best_trial(study: optuna.Study) -> TunedParams | None:
    """The best completed trial, or None when none completed (pruned and failed ones never count)."""
    import optuna

    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        return None
    best = min(completed, key=lambda trial: trial.value)
    return TunedParams(study.study_name, best.number, float(best.value), dict(best.params))


def best_params(study: optuna.Study) -> dict[str, object] | None:
    """The best completed trial's params (see split_params), or None when none completed."""
    tuned = best_trial(study)
    return None if tuned is None else dict(tuned.params)


def load_tuned(storage: str, study_name: str) -> TunedParams | None:
    """The best trial of the stored study `study_name`, or None when there is no such study or
    it has no completed trial."""
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return None
    return best_trial(study)


TRIAL_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


def log_trials(client, experiment_id: str, study: optuna.Study, first_trial: int) -> list[str]:
    """One finished MLflow run per trial numbered `first_trial` or later (those this call of
    `tune` ran), so the MLflow UI lists the trials beside the models: params, the per-epoch
    validation loss (the curve the pruner judged), the best value, the state (a pruned trial is
    KILLED). Returns the run ids."""
    from mlflow.entities import Metric, Param, RunTag

    run_ids = []
    for trial in study.trials[first_trial:]:
        state = trial.state.name
        run = client.create_run(experiment_id, run_name=f"{study.study_name}-trial-{trial.number}",
                                tags={"optuna_study": study.study_name,
                                      "optuna_trial": str(trial.number), "optuna_state": state})
        metrics = [Metric("val_loss", float(v), 0, int(step))
                   for step, v in sorted(trial.intermediate_values.items())]
        if state == "COMPLETE":  # a pruned trial's value is its last epoch's, not a result
            metrics.append(Metric("best_val_loss", float(trial.value), 0, 0))
        client.log_batch(
            run.info.run_id, metrics=metrics,
            params=[Param(k, str(v)) for k, v in sorted(trial.params.items())],
            tags=[RunTag(f"user_{k}", str(v)) for k, v in sorted(trial.user_attrs.items())],
        )
        client.set_terminated(run.info.run_id, status=TRIAL_STATUS.get(state, "FAILED"))
        run_ids.append(run.info.run_id)
    return run_ids
