"""The parent model on ^GSPC, one child per ticker by transfer learning, and their tuning.

Each materialization trains one model, logs it to MLflow, registers a new version, scores the
current production version on the SAME test windows, and moves the `production` alias only when
the promotion gate says so. The asset's output is a one-row model card naming the exact version
it produced and the version in production, so forecasts downstream have lineage.
"""

import hashlib
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Literal

import dagster as dg
import numpy as np
import polars as pl

from stock_assets.datasets.windows import SequenceData
from stock_assets.lake import LakeResource
from stock_assets.metadata import figure_markdown, markdown_table, pyplot
from stock_assets.modeling.artifacts import ModelBundle, rescale_windows, weights_are_finite
from stock_assets.modeling.evaluation import evaluate_all, forecast_metrics, reconstruct_prices
from stock_assets.modeling.promotion import PromotionDecision, decide_promotion
from stock_assets.modeling.registry import MlflowResource, registered_model_name
from stock_assets.modeling.training import TrainConfig, TrainResult, init_child, predict_returns
from stock_assets.partitions import ticker_partitions
from stock_assets.settings import optuna_storage_url
from stock_assets.tickers import MARKET_INDEX_KEY

PROMOTION_METRIC = "mape_hH"  # MAPE at the full horizon, in percent
OPTUNA_STUDY = "parent_model"
MODEL_CHECKS = ("finite_weights", "test_metrics_present", "not_worse_than_naive")


class ModelTrainingConfig(dg.Config):
    """Network and training settings; tuned parameters (if a study exists) override the network's."""

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
    # A network that is worse than naive persistence on the test window is shrunk to persistence
    # (skill_weight 0) before it is registered: the ticker gets a production model that forecasts
    # "no change" and says so, instead of no model or a worse one. Off: such a model is rejected
    # by the not_worse_than_naive check. The network's own scores are logged either way.
    persistence_fallback: bool = True
    min_improvement: float = 0.0  # over the champion, as a fraction

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
    n_trials: int = 4
    timeout_s: float = 300.0
    epochs_per_trial: int = 8


@dataclass(frozen=True)
class TrainedModel:
    card: pl.DataFrame
    metadata: dict[str, dg.MetadataValue]
    checks: list[dg.AssetCheckResult]
    decision: PromotionDecision


# --- pure helpers ---------------------------------------------------------------------------


def dataset_fingerprint(data: SequenceData) -> str:
    return hashlib.sha256(data.to_npz_bytes()).hexdigest()[:16]


def champion_mape(champion: ModelBundle, data: SequenceData) -> float | None:
    """The production model's MAPE on the challenger's test windows, or None if it cannot read them."""
    if not champion.compatible_with(data):
        return None
    X = rescale_windows(data.X_test, data.scaler, champion.feature_scaler())
    predicted = reconstruct_prices(data.anchor_close_test, predict_returns(champion.network(), X))
    metrics = forecast_metrics(data.future_close_test, predicted, data.anchor_close_test)
    return metrics[PROMOTION_METRIC]


def loss_curve_chart(result: TrainResult, title: str) -> dg.MetadataValue:
    figure, axis = pyplot().subplots(figsize=(7, 3.5))
    epochs = list(range(1, result.epochs_run + 1))
    axis.plot(epochs, result.train_losses, label="train")
    axis.plot(epochs, result.val_losses, label="validation")
    if result.best_epoch:
        axis.axvline(result.best_epoch, color="grey", linestyle="--", linewidth=0.8, label="best")
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss (standardised)")
    axis.set_title(title)
    axis.legend()
    return figure_markdown(figure)


def test_forecast_chart(network, data: SequenceData, title: str) -> dg.MetadataValue:
    """Actual close H days ahead vs the model's and naive persistence's, over the test windows."""
    predicted = reconstruct_prices(data.anchor_close_test, predict_returns(network, data.X_test))
    dates = [d.astype(object) for d in data.anchor_dates_test]
    figure, axis = pyplot().subplots(figsize=(8, 3.5))
    axis.plot(dates, data.future_close_test[:, -1], color="black", linewidth=1, label="actual")
    axis.plot(dates, predicted[:, -1], linewidth=1, label="model")
    axis.plot(dates, data.anchor_close_test, linewidth=0.8, linestyle=":", label="naive")
    axis.set_title(f"{title}: close {data.horizon} trading days after each test date")
    axis.legend()
    return figure_markdown(figure)


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


def falls_back_to_persistence(network, metrics: dict, naive: dict, naive_tolerance: float) -> bool:
    """True when a finite network is worse than naive persistence on the test window (the gate's
    limit) and can be shrunk to it (it has a `skill_weight`); a broken network never falls back,
    so the blocking checks still catch it."""
    score = metrics[PROMOTION_METRIC]
    return (
        hasattr(network, "skill_weight")
        and weights_are_finite(network)
        and bool(np.isfinite(score))
        and score > naive[PROMOTION_METRIC] * naive_tolerance
    )


# --- training + registry, shared by parent and child ----------------------------------------


def fit_and_register(
    context: dg.AssetExecutionContext,
    *,
    mlflow: MlflowResource,
    data: SequenceData,
    network,
    architecture: str,
    network_params: dict,
    train_config: TrainConfig,
    lr_factor: float,
    config: ModelTrainingConfig,
    experiment: str,
    strategy: str,
    extra_params: dict | None = None,
) -> TrainedModel:
    """Train, evaluate against baselines, log and register, gate the production alias."""
    import mlflow as mlflow_api

    from stock_assets.modeling.training import train_network

    ticker = data.ticker
    name = registered_model_name(ticker)
    with mlflow.start_run(
        experiment,
        run_name=f"{ticker}-{strategy}",
        tags={"ticker": ticker, "strategy": strategy, "dagster_run_id": context.run.run_id},
    ) as run:
        mlflow_api.log_params(
            {
                "ticker": ticker,
                "strategy": strategy,
                "architecture": architecture,
                **{f"net_{k}": v for k, v in network_params.items()},
                **{f"train_{k}": v for k, v in vars(train_config).items()},
                "lr_factor": lr_factor,
                "dataset_fingerprint": dataset_fingerprint(data),
                **{f"data_{k}": v for k, v in data.summary().items()},
                **(extra_params or {}),
            }
        )

        def log_epoch(epoch: int, train_loss: float, val_loss: float) -> None:
            mlflow_api.log_metrics({"train_loss": train_loss, "val_loss": val_loss}, step=epoch)

        result = train_network(network, data, train_config, on_epoch=log_epoch, lr_factor=lr_factor)
        evaluation = evaluate_all(network, data, name=strategy)
        by_model = {row["model"]: row for row in evaluation.iter_rows(named=True)}
        network_metrics = metrics = by_model[strategy]
        fallback = config.persistence_fallback and falls_back_to_persistence(
            network, metrics, by_model["naive"], config.naive_tolerance
        )
        if fallback:
            network.skill_weight.fill_(0.0)
            result.skill_weight = 0.0
            # Only the network's row changes; the baselines (a Ridge fit among them) stand.
            served = evaluate_all(network, data, name=strategy, baselines=False)
            evaluation = pl.concat([served, evaluation.filter(pl.col("model") != strategy)])
            by_model = {row["model"]: row for row in evaluation.iter_rows(named=True)}
            metrics = by_model[strategy]
            mlflow_api.set_tag("persistence_fallback", "true")
            mlflow_api.log_metrics(
                {f"network_test_{k}": v for k, v in network_metrics.items() if isinstance(v, float)}
            )
        mlflow_api.log_metrics(
            {
                "best_val_loss": result.best_val_loss,
                "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run,
                "train_seconds": result.seconds,
                "skill_weight": result.skill_weight,
                **{f"test_{k}": v for k, v in metrics.items() if isinstance(v, float)},
                **{
                    f"{baseline}_{k}": v
                    for baseline in ("naive", "drift", "linear")
                    for k, v in by_model[baseline].items()
                    if isinstance(v, float)
                },
            }
        )
        bundle = ModelBundle.from_network(
            network, ticker=ticker, architecture=architecture, network_params=network_params, data=data
        )
        mlflow.log_model_artifacts(run.info.run_id, bundle.to_files())
        mlflow_api.log_text(evaluation.write_csv(), "evaluation.csv")
        experiment_id = run.info.experiment_id
        run_id = run.info.run_id

    champion = mlflow.production_version(name)
    champion_score = None
    if champion is not None:
        champion_bundle = ModelBundle.from_files(mlflow.load_model_artifacts(name, champion.version))
        champion_score = champion_mape(champion_bundle, data)
    registered = mlflow.register(name, run_id, tags={"strategy": strategy, "ticker": ticker})
    finite = weights_are_finite(network)
    challenger_score = metrics[PROMOTION_METRIC] if finite else float("nan")
    decision = decide_promotion(
        challenger_score,
        champion_score,
        by_model["naive"][PROMOTION_METRIC],
        min_improvement=config.min_improvement,
        naive_tolerance=config.naive_tolerance,
    )
    if fallback:
        decision = replace(
            decision,
            reason=f"the network's MAPE {network_metrics[PROMOTION_METRIC]:.4f}% was worse than naive "
            f"persistence, so this version forecasts persistence; {decision.reason}",
        )
    if decision.promote:
        mlflow.promote(name, registered.version)
    decision_tags = {
        "promotion_decision": "promoted" if decision.promote else "rejected",
        "promotion_reason": decision.reason,
        "persistence_fallback": str(bool(fallback)).lower(),
        "challenger_mape": f"{decision.challenger_mape:.6f}",
        "champion_mape": "" if champion_score is None else f"{champion_score:.6f}",
        "naive_mape": f"{decision.naive_mape:.6f}",
    }
    mlflow.tag_version(name, registered.version, decision_tags)
    mlflow.client().set_tag(run_id, "promotion_decision", decision_tags["promotion_decision"])
    production = mlflow.production_version(name)

    card = pl.DataFrame(
        [
            {
                "ticker": ticker,
                "model_name": name,
                "model_version": registered.version,
                "run_id": run_id,
                "strategy": strategy,
                "architecture": architecture,
                "trained_at": datetime.now(timezone.utc),
                "train_start": data.boundaries.train_first_anchor,
                "train_end": data.boundaries.train_last_target,
                "test_mape_h1": metrics["mape_h1"],
                "test_mape_h5": metrics["mape_hH"],
                "naive_mape_h5": by_model["naive"]["mape_hH"],
                "directional_accuracy_h5": metrics["dir_acc_hH"],
                "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run,
                "train_seconds": result.seconds,
                "champion_mape_h5": champion_score,
                "promoted": decision.promote,
                "production_version": production.version if production else None,
                "decision_reason": decision.reason,
                "persistence_fallback": bool(fallback),
                "network_test_mape_h5": network_metrics["mape_hH"],
            }
        ],
        schema_overrides={"champion_mape_h5": pl.Float64, "production_version": pl.String},
    )
    metric_table = evaluation.select(
        "model", "kind", "mape_h1", "mape_hH", "rmse_hH", "mae_hH", "dir_acc_h1", "dir_acc_hH"
    )
    metadata = {
        "model_version": dg.MetadataValue.text(f"{name} v{registered.version}"),
        "production_version": dg.MetadataValue.text(production.version if production else "none"),
        "promotion": dg.MetadataValue.text(decision.reason),
        "test_mape_h5": float(metrics["mape_hH"]),
        "naive_mape_h5": float(by_model["naive"]["mape_hH"]),
        # The production model's score on the same test windows, beside the challenger's.
        **({"champion_mape_h5": float(champion_score)} if champion_score is not None else {}),
        "directional_accuracy_h5": float(metrics["dir_acc_hH"]),
        "best_epoch": result.best_epoch,
        "skill_weight": dg.MetadataValue.float(result.skill_weight),
        "persistence_fallback": dg.MetadataValue.bool(bool(fallback)),
        "network_test_mape_h5": float(network_metrics["mape_hH"]),
        "train_seconds": round(result.seconds, 2),
        "metrics_vs_baselines": dg.MetadataValue.md(markdown_table(metric_table)),
        "loss_curve": loss_curve_chart(result, f"{ticker} ({strategy})"),
        "test_forecast": test_forecast_chart(network, data, ticker),
        "mlflow_run": dg.MetadataValue.url(mlflow.run_url(experiment_id, run_id)),
        "mlflow_run_id": dg.MetadataValue.text(run_id),
        "mlflow_model_version": dg.MetadataValue.url(mlflow.model_version_url(name, registered.version)),
    }
    checks = model_check_results(context.asset_key, finite, metrics, by_model["naive"], config)
    return TrainedModel(card, metadata, checks, decision)


def model_check_results(
    asset_key: dg.AssetKey, finite: bool, metrics: dict, naive: dict, config: ModelTrainingConfig
) -> list[dg.AssetCheckResult]:
    """Blocking checks: a broken model never feeds forecasts."""
    present = all(np.isfinite(metrics[k]) for k in ("mape_h1", "mape_hH", "dir_acc_hH"))
    limit = naive[PROMOTION_METRIC] * config.naive_tolerance
    return [
        dg.AssetCheckResult(asset_key=asset_key, check_name="finite_weights", passed=finite,
                            metadata={"finite": finite}),
        dg.AssetCheckResult(asset_key=asset_key, check_name="test_metrics_present", passed=bool(present),
                            metadata={k: float(metrics[k]) for k in ("mape_h1", "mape_hH", "dir_acc_hH")}),
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name="not_worse_than_naive",
            passed=bool(present and metrics[PROMOTION_METRIC] <= limit),
            metadata={"test_mape_h5": float(metrics[PROMOTION_METRIC]),
                      "naive_mape_h5": float(naive[PROMOTION_METRIC]),
                      "naive_tolerance": config.naive_tolerance},
        ),
    ]


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
