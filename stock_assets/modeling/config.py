"""Training settings of the parent and child models, as Dagster run config."""

from typing import Literal

import dagster as dg

from stock_assets.modeling.training import TrainConfig


class ModelTrainingConfig(dg.Config):
    """Network and training settings. With `use_tuned_params`, the parent trains with the best
    trial of the Optuna study (network and optimiser), and a child with the learning rate and
    batch size its parent trained with (tuning.child_train_overrides)."""

    architecture: Literal["lstm", "attention_lstm"] = "lstm"
    # Sized for a 2-core CPU: benchmarks/bench_models.py measured this at seconds per child.
    hidden_size: int = 32
    num_layers: int = 2
    dropout: float = 0.1
    epochs: int = TrainConfig.epochs
    batch_size: int = TrainConfig.batch_size
    learning_rate: float = TrainConfig.learning_rate
    patience: int = TrainConfig.patience
    seed: int = TrainConfig.seed
    use_tuned_params: bool = True
    naive_tolerance: float = 1.0  # challenger MAPE must be <= naive MAPE x this
    # challenger's 80 % interval score (last step) must be <= the best volatility baseline's x this
    interval_tolerance: float = 1.0
    # A network that is worse than naive persistence on the VALIDATION windows is shrunk to
    # persistence (skill_weight 0) before it is registered: the ticker gets a model whose median
    # is "no change" and says so. The decision is made on validation and reported on test, so the
    # reported score is not the one it was selected on. Off: such a model goes to the gate (and
    # the not_worse_than_naive check) as it is. The network's own scores are logged either way.
    persistence_fallback: bool = True
    # ...and "worse" means not better than naive by this fraction on validation: 55 overlapping
    # windows are a noisy judge (on the shared prices AAPL's network was 11 % better than naive on
    # validation and 9 % worse on test: MLflow's val_mape_hH vs test_mape_hH), so an edge smaller
    # than this is not trusted at all.
    fallback_margin: float = 0.01
    min_improvement: float = 0.0  # over the champion, as a fraction
    # A production model that cannot read the challenger's windows (another lookback, feature set
    # or horizon) cannot be compared, so by default it stays (the version is tagged
    # `kept_incompatible_champion`); True: the challenger replaces it if it passes its own gates.
    replace_incompatible_champion: bool = False

    def train_config(self, lr_factor_default: float = TrainConfig.fine_tune_lr_factor) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
            seed=self.seed,
            fine_tune_lr_factor=lr_factor_default,
        )


class ChildModelConfig(ModelTrainingConfig):
    """`fine_tune`: all weights from the parent at a lower rate; `freeze`: encoder frozen, head
    retrained; `scratch`: no transfer (the comparison)."""

    strategy: Literal["freeze", "fine_tune", "scratch"] = "fine_tune"
    fine_tune_lr_factor: float = TrainConfig.fine_tune_lr_factor


class TuningConfig(dg.Config):
    """One materialization of model_hyperparameters adds `n_trials` trials to the stored study.

    The defaults keep the run command's tuning step under a minute on 2 cores (a few short trials
    on the most recent training windows, rank the parameters, not train a model). A bigger study:
    more trials and epochs, all windows (`max_train_windows: null`), a longer timeout, e.g. from
    the UI's launchpad on tuning_job, or `--tuning-trials 50` on the run command."""

    n_trials: int = 4
    timeout_s: float | None = 45.0  # no new trial starts after this (None: no limit)
    epochs_per_trial: int = 3
    max_train_windows: int | None = 1500  # the last N training windows (None: all)
    warmup_epochs: int = 2  # the median pruner prunes from this epoch on
