"""The parent model on ^GSPC, one child per ticker by transfer learning, and their tuning.

Each materialization trains one model and registers it (modeling/registration.py: train, score
against the point and volatility baselines, log, register, gate the `production` alias). The
asset's output is a one-row model card naming the exact version it produced and the version in
production, so forecasts downstream have lineage.
"""

import json
import warnings
from collections.abc import Iterator
from dataclasses import replace

import dagster as dg
import polars as pl

from stock_assets.datasets.windows import SequenceData
from stock_assets.lake import LakeResource
from stock_assets.metadata import markdown_table
from stock_assets.modeling.artifacts import ModelBundle
from stock_assets.modeling.config import ChildModelConfig, ModelTrainingConfig, TuningConfig
from stock_assets.modeling.registration import fit_and_register
from stock_assets.modeling.registry import MlflowResource, registered_model_name
from stock_assets.modeling.training import TrainConfig, init_child
from stock_assets.partitions import ticker_partitions
from stock_assets.settings import optuna_storage_url
from stock_assets.tickers import MARKET_INDEX_KEY

OPTUNA_STUDY = "parent_model"
MODEL_CHECKS = ("finite_weights", "test_metrics_present", "not_worse_than_naive")
__all__ = ["ChildModelConfig", "ModelTrainingConfig", "TuningConfig"]


def resolve_network_params(config: ModelTrainingConfig, data: SequenceData) -> tuple[str, dict, dict]:
    """(architecture, network kwargs, train overrides): tuned params when a study has them."""
    architecture = config.architecture
    network = {"hidden_size": config.hidden_size, "num_layers": config.num_layers,
               "dropout": config.dropout}
    train: dict = {}
    if config.use_tuned_params:
        from stock_assets.modeling.tuning import best_params, split_params

        study = _load_study()
        params = best_params(study) if study is not None else None
        if params:
            architecture, tuned_network, train = split_params(params)
            network.update(tuned_network)
    network |= {"n_features": data.n_features, "horizon": data.horizon}
    return architecture, network, train


def _load_study():
    import optuna

    try:
        return optuna.load_study(study_name=OPTUNA_STUDY, storage=optuna_storage_url())
    except KeyError:
        return None


def _check_specs(asset: str, partitions_def=None) -> list[dg.AssetCheckSpec]:
    """Blocking, per-ticker checks. Partitioned check specs are a Dagster preview feature that we
    rely on knowingly (a ticker's check must not judge another ticker), so its warning is muted
    rather than printed on every import of the code location."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(name, asset=asset, blocking=True, partitions_def=partitions_def)
            for name in MODEL_CHECKS
        ]


# --- assets -----------------------------------------------------------------------------------


@dg.asset(group_name="modeling", kinds={"optuna", "pytorch"})
def model_hyperparameters(
    context: dg.AssetExecutionContext, config: TuningConfig, market_index_sequences: SequenceData
) -> dg.Output:
    """An Optuna study on the parent's data, resumable in its RDB storage: training assets use its
    best parameters when it has any, their defaults otherwise."""
    from stock_assets.modeling.tuning import best_params, tune

    study = tune(
        market_index_sequences,
        n_trials=config.n_trials,
        storage=optuna_storage_url(),
        study_name=OPTUNA_STUDY,
        timeout_s=config.timeout_s,
        train_config=replace(TrainConfig(), epochs=config.epochs_per_trial),
    )
    trials = pl.DataFrame(
        [
            {"number": t.number, "state": t.state.name, "value": t.value, **t.params}
            for t in study.trials
        ]
    )
    best = best_params(study) or {}
    return dg.Output(
        pl.DataFrame([{"study": OPTUNA_STUDY, "n_trials": len(study.trials),
                       "best_value": study.best_value if best else None,
                       "best_params": json.dumps(best, sort_keys=True)}]),
        metadata={
            "n_trials": len(study.trials),
            "best_params": dg.MetadataValue.json(best),
            "trials": dg.MetadataValue.md(markdown_table(trials.tail(20))),
            "storage": dg.MetadataValue.text(optuna_storage_url().split("///")[-1]),
        },
    )


@dg.asset(
    group_name="modeling",
    deps=[model_hyperparameters],
    check_specs=_check_specs("parent_model"),
    kinds={"pytorch", "mlflow"},
)
def parent_model(
    context: dg.AssetExecutionContext,
    config: ModelTrainingConfig,
    market_index_sequences: SequenceData,
    mlflow: MlflowResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """The LSTM every child starts from, trained on ^GSPC's long history."""
    from stock_assets.modeling.networks import build_network
    from stock_assets.modeling.training import set_determinism

    data = market_index_sequences
    architecture, network_params, train_overrides = resolve_network_params(config, data)
    train_config = replace(config.train_config(), **train_overrides)
    set_determinism(train_config.seed)
    network = build_network(architecture, **network_params)
    trained = fit_and_register(
        context, mlflow=mlflow, data=data, network=network, architecture=architecture,
        network_params=network_params, train_config=train_config, lr_factor=1.0, config=config,
        experiment=mlflow.parent_experiment, strategy="parent",
    )
    yield dg.Output(trained.card, metadata=trained.metadata)
    yield from trained.checks


@dg.asset(
    partitions_def=ticker_partitions,
    group_name="modeling",
    ins={"parent_model": dg.AssetIn(dagster_type=pl.DataFrame)},
    check_specs=_check_specs("child_model", ticker_partitions),
    kinds={"pytorch", "mlflow"},
)
def child_model(
    context: dg.AssetExecutionContext,
    config: ChildModelConfig,
    training_sequences: SequenceData,
    parent_model: pl.DataFrame,
    mlflow: MlflowResource,
    lake: LakeResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """One ticker's model, initialised from the production parent (transfer learning)."""
    from stock_assets.modeling.training import set_determinism

    data = training_sequences
    parent_name = registered_model_name(MARKET_INDEX_KEY)
    # Transfer starts from the production parent. Until a parent has ever been promoted (the
    # index is hard to beat too), it starts from the version parent_model last registered: a warm
    # start is not a forecast, and this child's own gate still decides what reaches production.
    parent_version = mlflow.production_version(parent_name)
    parent_source = "production"
    if parent_version is None and parent_model.height:
        parent_version = mlflow.version(parent_name, str(parent_model["model_version"][0]))
        parent_source = "latest registered (no parent promoted yet)"
    if parent_version is None and config.strategy != "scratch":
        raise dg.Failure(f"No parent model ({parent_name}) in MLflow: materialize parent_model first.")
    parent = (
        ModelBundle.from_files(mlflow.load_model_artifacts(parent_name, parent_version.version))
        if parent_version and config.strategy != "scratch"
        else None
    )
    if parent is not None:
        architecture, network_params = parent.architecture, dict(parent.network_params)
        train_overrides: dict = {}
    else:
        architecture, network_params, train_overrides = resolve_network_params(config, data)
    if network_params["n_features"] != data.n_features or network_params["horizon"] != data.horizon:
        raise dg.Failure(
            f"The production parent reads {network_params['n_features']} features / horizon "
            f"{network_params['horizon']}, these sequences have {data.n_features} / {data.horizon}: "
            "retrain parent_model with the same sequence config."
        )
    train_config = replace(
        config.train_config(config.fine_tune_lr_factor), **train_overrides
    )
    set_determinism(train_config.seed)
    network, lr_factor = init_child(
        parent.state_dict if parent else {}, config.strategy, architecture, network_params,
        fine_tune_lr_factor=config.fine_tune_lr_factor,
    )
    trained = fit_and_register(
        context, mlflow=mlflow, data=data, network=network, architecture=architecture,
        network_params=network_params, train_config=train_config, lr_factor=lr_factor,
        config=config, experiment=mlflow.child_experiment, strategy=config.strategy,
        extra_params={"parent_version": parent_version.version if parent else "none",
                      "parent_source": parent_source if parent else "none"},
    )
    card = trained.card.with_columns(
        pl.lit(parent_version.version if parent else None, dtype=pl.String).alias("parent_version")
    )
    history = lake.read_if_exists("model_history", data.ticker)
    lake.write(
        pl.concat([history, card], how="diagonal_relaxed") if history is not None else card,
        "model_history",
        data.ticker,
    )
    yield dg.Output(
        card,
        metadata={**trained.metadata,
                  "parent_version": dg.MetadataValue.text(
                      f"v{parent_version.version} ({parent_source})" if parent else "none (scratch)")},
    )
    yield from trained.checks
