"""Hyperparameter search with Optuna over the same training loop the models use.

Why: the defaults are a compromise for 2 CPU cores; a study stored in a database (sqlite:///...)
can be resumed run after run, and its median pruner stops hopeless trials early from their
per-epoch validation losses. Optuna is imported lazily so loading the Dagster code stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from stock_assets.datasets.windows import SequenceData

if TYPE_CHECKING:
    import optuna

    from stock_assets.modeling.training import TrainConfig

NETWORK_PARAMS: tuple[str, ...] = ("hidden_size", "num_layers", "dropout")
TRAIN_PARAMS: tuple[str, ...] = ("learning_rate", "batch_size")


@dataclass
class SearchSpace:
    """Ranges searched. Keep the choices stable for a study name: Optuna refuses a resumed
    study whose categorical choices changed."""

    learning_rate: tuple[float, float] = (1e-4, 3e-3)  # log-uniform
    hidden_size: tuple[int, ...] = (32, 64, 128)
    num_layers: tuple[int, int] = (1, 3)
    dropout: tuple[float, float] = (0.0, 0.4)
    batch_size: tuple[int, ...] = (32, 64, 128)
    architecture: tuple[str, ...] = ("lstm", "attention_lstm")


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


def tune(
    data: SequenceData,
    n_trials: int,
    storage: str,
    study_name: str,
    timeout_s: float | None = None,
    seed: int = 42,
    search_space: SearchSpace | None = None,
    train_config: TrainConfig | None = None,
    warmup_epochs: int = 2,
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
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction="minimize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed + len(_existing_trials(storage, study_name))),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=warmup_epochs),
    )

    def objective(trial: optuna.Trial) -> float:
        params = _suggest(trial, space)
        architecture, network_params, train_params = split_params(params)
        set_determinism(seed)
        model = build_network(
            architecture, n_features=data.n_features, horizon=data.horizon, **network_params
        )
        config = replace(base_config, seed=seed, **train_params)

        def report(epoch: int, train_loss: float, val_loss: float) -> None:
            trial.report(val_loss, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch} (val loss {val_loss:.4f})")

        result = train_network(model, data, config, on_epoch=report)
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("epochs_run", result.epochs_run)
        trial.set_user_attr("seconds", round(result.seconds, 3))
        return result.best_val_loss

    study.optimize(objective, n_trials=n_trials, timeout=timeout_s)
    return study


def _existing_trials(storage: str, study_name: str) -> list[object]:
    """Trials already stored, so a resumed study's sampler does not replay the same seeds."""
    import optuna

    try:
        return optuna.load_study(study_name=study_name, storage=storage).trials
    except KeyError:
        return []


def best_params(study: optuna.Study) -> dict[str, object] | None:
    """The best completed trial's params (see split_params), or None when none completed."""
    import optuna

    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        return None
    return dict(min(completed, key=lambda trial: trial.value).params)
