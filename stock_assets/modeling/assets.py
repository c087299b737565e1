"""The parent model on ^GSPC, one child per ticker by transfer learning, and their tuning.

Each materialization trains one model and registers it (modeling/registration.py: train, score
against the point and volatility baselines, log, register, gate the `production` alias). The
asset's output is a one-row model card naming the exact version it produced and the version in
production, so forecasts downstream have lineage.
"""

import json
from collections.abc import Iterator
from dataclasses import replace

import dagster as dg
import polars as pl

from stock_assets.contract import CHILD_MODEL, MODEL_HISTORY, PARENT_MODEL
from stock_assets.datasets.windows import SequenceData
from stock_assets.lake import LakeResource
from stock_assets.metadata import markdown_table
from stock_assets.modeling.artifacts import ModelBundle
from stock_assets.modeling.config import ChildModelConfig, ModelTrainingConfig, TuningConfig
from stock_assets.modeling.registration import fit_and_register
from stock_assets.modeling.registry import (
    MlflowResource,
    OptunaStorageResource,
    registered_model_name,
)
from stock_assets.modeling.training import TrainConfig, init_child
from stock_assets.modeling.tuning import (
    TunedParams,
    child_train_overrides,
    load_tuned,
    split_params,
)
from stock_assets.partitions import ticker_partitions
from stock_assets.tickers import MARKET_INDEX_KEY

OPTUNA_STUDY = "parent_model"
TUNING_EXPERIMENT = "stock_assets-tuning"  # the MLflow experiment listing the study's trials
MODEL_CHECKS = ("finite_weights", "test_metrics_present", "not_worse_than_naive")
__all__ = ["ChildModelConfig", "ModelTrainingConfig", "TuningConfig"]


def resolve_network_params(
    config: ModelTrainingConfig, data: SequenceData, storage: str
) -> tuple[str, dict, dict, TunedParams | None]:
    """(architecture, network kwargs, train overrides, the trial they came from): the best trial
    of the study in `storage` when `use_tuned_params` and it has one, the config's values
    otherwise."""
    architecture = config.architecture
    network = {"hidden_size": config.hidden_size, "num_layers": config.num_layers,
               "dropout": config.dropout}
    train: dict = {}
    tuned = load_tuned(storage, OPTUNA_STUDY) if config.use_tuned_params else None
    if tuned is not None:
        architecture, tuned_network, train = split_params(tuned.params)
        network.update(tuned_network)
    network |= {"n_features": data.n_features, "horizon": data.horizon}
    return architecture, network, train, tuned


def parent_tuning(mlflow: MlflowResource, run_id: str | None) -> TunedParams | None:
    """The trial the parent version's run trained with (its MLflow params), None if untuned."""
    if not run_id:
        return None
    return TunedParams.from_mlflow_params(dict(mlflow.client().get_run(run_id).data.params))


def tuning_record(
    tuned: TunedParams | None, train_config: TrainConfig, lr_factor: float
) -> tuple[dict[str, str], dict[str, object], dict[str, dg.MetadataValue]]:
    """(MLflow params, model-card columns, asset metadata) saying which values a model trained
    with and which study trial they came from: the same facts in the three places users look."""
    effective = train_config.learning_rate * lr_factor
    params = {**(tuned.mlflow_params() if tuned else {"tuned_study": "none"}),
              "effective_learning_rate": f"{effective:.6g}"}
    columns = {
        "tuned_study": tuned.study if tuned else None,
        "tuned_trial": tuned.trial if tuned else None,
        "tuned_params": json.dumps(tuned.params, sort_keys=True) if tuned else None,
        "learning_rate": effective,
        "batch_size": train_config.batch_size,
    }
    metadata = {
        "tuned_from": dg.MetadataValue.text(tuned.label() if tuned else "none (config values)"),
        "tuned_params": dg.MetadataValue.json(tuned.params if tuned else {}),
        "learning_rate": dg.MetadataValue.float(effective),
        "batch_size": dg.MetadataValue.int(train_config.batch_size),
    }
    return params, columns, metadata


def _with_columns(card: pl.DataFrame, columns: dict[str, object]) -> pl.DataFrame:
    dtypes = {"tuned_study": pl.String, "tuned_trial": pl.Int64, "tuned_params": pl.String,
              "learning_rate": pl.Float64, "batch_size": pl.Int64, "parent_version": pl.String}
    return card.with_columns(pl.lit(v, dtype=dtypes[k]).alias(k) for k, v in columns.items())


def _check_specs(asset: str, partitions_def=None) -> list[dg.AssetCheckSpec]:
    """Blocking, per-ticker checks. Partitioned check specs are a Dagster preview feature that we
    rely on knowingly (a ticker's check must not judge another ticker); its warning is filtered
    once, in stock_assets/__init__.py."""
    return [
        dg.AssetCheckSpec(name, asset=asset, blocking=True, partitions_def=partitions_def)
        for name in MODEL_CHECKS
    ]


# --- assets -----------------------------------------------------------------------------------


@dg.asset(group_name="modeling", kinds={"optuna", "pytorch"})
def model_hyperparameters(
    context: dg.AssetExecutionContext,
    config: TuningConfig,
    market_index_sequences: SequenceData,
    mlflow: MlflowResource,
    optuna_storage: OptunaStorageResource,
) -> dg.Output:
    """An Optuna study on the parent's data, resumable in its RDB storage (the run command's
    tuning step adds a few trials each run): parent_model trains with its best trial, and the
    children inherit the parameters that apply to them. Each trial is also an MLflow run."""
    import optuna

    from stock_assets.modeling.tuning import best_trial, log_trials, stored_trial_count, tune

    # Optuna's own per-trial lines would interleave with the run command's progress on stderr;
    # the trials go to the run's log (below), the metadata table and MLflow instead.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna_storage.url
    first_new = stored_trial_count(storage, OPTUNA_STUDY)
    study = tune(
        market_index_sequences,
        n_trials=config.n_trials,
        storage=storage,
        study_name=OPTUNA_STUDY,
        timeout_s=config.timeout_s,
        train_config=replace(TrainConfig(), epochs=config.epochs_per_trial),
        warmup_epochs=config.warmup_epochs,
        max_train_windows=config.max_train_windows,
    )
    trials = pl.DataFrame(
        [
            {"number": t.number, "state": t.state.name, "value": t.value,
             "epochs": len(t.intermediate_values), **t.params}
            for t in study.trials
        ]
    )
    states = {s: int(n) for s, n in trials["state"].value_counts().iter_rows()} if trials.height else {}
    best = best_trial(study)
    experiment_id = mlflow.experiment_id(TUNING_EXPERIMENT)
    logged = log_trials(mlflow.client(), experiment_id, study, first_new)
    for trial in study.trials[first_new:]:
        context.log.info(f"trial #{trial.number} {trial.state.name} after "
                         f"{len(trial.intermediate_values)} epochs, value {trial.value}: {trial.params}")
    context.log.info(f"{OPTUNA_STUDY}: {len(study.trials)} trials {states}, best "
                     f"{best.label() if best else 'none'}")
    return dg.Output(
        pl.DataFrame([{"study": OPTUNA_STUDY, "n_trials": len(study.trials),
                       "best_trial": best.trial if best else None,
                       "best_value": best.value if best else None,
                       "best_params": json.dumps(best.params if best else {}, sort_keys=True)}],
                     schema_overrides={"best_trial": pl.Int64, "best_value": pl.Float64}),
        metadata={
            "n_trials": len(study.trials),
            "trials_this_run": config.n_trials,
            "trial_states": dg.MetadataValue.json(states),
            "best_trial": dg.MetadataValue.text(best.label() if best else "none completed"),
            "best_params": dg.MetadataValue.json(best.params if best else {}),
            "trials": dg.MetadataValue.md(markdown_table(trials.tail(20))),
            "storage": dg.MetadataValue.text(storage.split("///")[-1]),
            "dashboard": dg.MetadataValue.text(f"optuna-dashboard {storage}"),
            "mlflow_trial_runs": len(logged),
            "mlflow_experiment": dg.MetadataValue.url(
                f"{mlflow.ui_base()}/#/experiments/{experiment_id}"),
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
    optuna_storage: OptunaStorageResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """The LSTM every child starts from, trained on ^GSPC's long history."""
    from stock_assets.modeling.networks import build_network
    from stock_assets.modeling.training import set_determinism

    data = market_index_sequences
    architecture, network_params, train_overrides, tuned = resolve_network_params(
        config, data, optuna_storage.url
    )
    train_config = replace(config.train_config(), **train_overrides)
    params, columns, metadata = tuning_record(tuned, train_config, 1.0)
    set_determinism(train_config.seed)
    network = build_network(architecture, **network_params)
    trained = fit_and_register(
        context, mlflow=mlflow, data=data, network=network, architecture=architecture,
        network_params=network_params, train_config=train_config, lr_factor=1.0, config=config,
        experiment=mlflow.parent_experiment, strategy="parent", extra_params=params,
    )
    yield dg.Output(_with_columns(trained.card, columns), metadata={**trained.metadata, **metadata})
    yield from trained.checks


@dg.multi_asset(
    name=CHILD_MODEL,
    partitions_def=ticker_partitions,
    group_name="modeling",
    ins={PARENT_MODEL: dg.AssetIn(dagster_type=pl.DataFrame)},
    outs={
        CHILD_MODEL: dg.AssetOut(
            description="The ticker's latest model card: the version this run registered and "
            "the version in production.", kinds={"pytorch", "mlflow"},
        ),
        MODEL_HISTORY: dg.AssetOut(
            description="Every model card the ticker has had, oldest first (rejected versions "
            "too: the gate's decision is on each row).", is_required=False,
        ),
    },
    check_specs=_check_specs(CHILD_MODEL, ticker_partitions),
    can_subset=True,
)
def child_model(
    context: dg.AssetExecutionContext,
    config: ChildModelConfig,
    training_sequences: SequenceData,
    parent_model: pl.DataFrame,
    mlflow: MlflowResource,
    lake: LakeResource,
    optuna_storage: OptunaStorageResource,
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
        # The network comes with the parent's weights; of its tuning, the optimiser's values.
        architecture, network_params = parent.architecture, dict(parent.network_params)
        tuned = parent_tuning(mlflow, parent_version.run_id) if config.use_tuned_params else None
        train_overrides = child_train_overrides(tuned)
    else:
        architecture, network_params, train_overrides, tuned = resolve_network_params(
            config, data, optuna_storage.url
        )
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
    params, columns, metadata = tuning_record(tuned, train_config, lr_factor)
    trained = fit_and_register(
        context, mlflow=mlflow, data=data, network=network, architecture=architecture,
        network_params=network_params, train_config=train_config, lr_factor=lr_factor,
        config=config, experiment=mlflow.child_experiment, strategy=config.strategy,
        extra_params={"parent_version": parent_version.version if parent else "none",
                      "parent_source": parent_source if parent else "none", **params},
    )
    card = _with_columns(
        trained.card,
        {"parent_version": parent_version.version if parent else None, **columns},
    )
    yield dg.Output(
        card,
        output_name=CHILD_MODEL,
        metadata={**trained.metadata, **metadata,
                  "parent_version": dg.MetadataValue.text(
                      f"v{parent_version.version} ({parent_source})" if parent else "none (scratch)")},
    )
    if MODEL_HISTORY in context.selected_output_names:
        yield model_history_output(lake.read_if_exists(MODEL_HISTORY, data.ticker), card)
    yield from trained.checks


def model_history_output(history: pl.DataFrame | None, card: pl.DataFrame) -> dg.Output:
    """The history with this run's card appended (a re-run of the same version replaces its row),
    and a table of the versions for the UI."""
    if history is not None:
        history = history.filter(pl.col("model_version") != card["model_version"][0])
    rows = pl.concat([history, card], how="diagonal_relaxed") if history is not None else card
    shown = [c for c in ("model_version", "trained_at", "test_mape_h5", "naive_mape_h5",
                         "promoted", "checks_passed") if c in rows.columns]
    return dg.Output(
        rows,
        output_name=MODEL_HISTORY,
        metadata={"versions": rows.height,
                  "history": dg.MetadataValue.md(markdown_table(rows.select(shown).tail(20)))},
    )
