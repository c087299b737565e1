"""Train, score, log, register and gate one model: the work parent_model and child_model share.

One function per step, in the order they run: `train_and_log` trains the network in an MLflow
run and logs what `evaluate_challenger` (modeling/challenger.py) decides about it (the spread
model, the persistence fallback, the scores against the point and volatility baselines) and the
model as a pyfunc; `score_champion` scores the production version on the SAME test windows;
`register_version` registers the run's model with its blocking checks' outcome as tags (a version
whose checks failed never forecasts); `gate` is the promotion decision and `promote_and_tag`
moves the `production` alias and records why; modeling/model_card.py presents it all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import dagster as dg
import polars as pl

from stock_assets.contract import CHILD_MODEL
from stock_assets.datasets.windows import SequenceData
from stock_assets.modeling.artifacts import ModelBundle, weights_are_finite
from stock_assets.modeling.challenger import (
    INTERVAL_METRIC,
    ChallengerEvaluation,
    champion_incompatibility,
    champion_mape,
    evaluate_challenger,
    falls_back_to_persistence,
)
from stock_assets.modeling.config import ModelTrainingConfig
from stock_assets.modeling.model_card import (
    RegisteredOutcome,
    model_card,
    model_metadata,
)
from stock_assets.modeling.model_checks import (
    PROMOTION_METRIC,
    checks_detail,
    checks_tags,
    failed_checks,
    forecasting_version,
    model_check_results,
)
from stock_assets.modeling.promotion import PromotionDecision, decide_promotion
from stock_assets.modeling.registry import (
    MlflowResource,
    RegisteredVersion,
    registered_model_name,
)
from stock_assets.modeling.training import TrainConfig, TrainResult

__all__ = [
    "PROMOTION_METRIC", "TrainedModel", "champion_incompatibility", "champion_mape",
    "falls_back_to_persistence", "fit_and_register", "model_check_results",
]  # fmt: skip


@dataclass(frozen=True)
class TrainedModel:
    card: pl.DataFrame
    metadata: dict[str, dg.MetadataValue]
    checks: list[dg.AssetCheckResult]
    decision: PromotionDecision


@dataclass(frozen=True)
class LoggedRun:
    """A trained, scored and logged model: its MLflow run and what was decided about it."""

    run_id: str
    experiment_id: str
    result: TrainResult
    scores: ChallengerEvaluation


def dataset_fingerprint(data: SequenceData) -> str:
    return hashlib.sha256(data.to_npz_bytes()).hexdigest()[:16]


def train_and_log(
    mlflow: MlflowResource, data: SequenceData, network, *, architecture: str,
    network_params: dict, train_config: TrainConfig, lr_factor: float,
    config: ModelTrainingConfig, experiment: str, strategy: str, run_tags: dict[str, str],
    extra_params: dict | None = None,
) -> LoggedRun:
    """One MLflow run: parameters, the epochs' losses, the scores, the model as a pyfunc."""
    import mlflow as mlflow_api

    from stock_assets.modeling.pyfunc_model import pyfunc_files
    from stock_assets.modeling.training import train_network

    ticker = data.ticker
    with mlflow.start_run(experiment, run_name=f"{ticker}-{strategy}", tags=run_tags) as run:
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
        scores = evaluate_challenger(network, data, strategy, config)
        if scores.fallback:
            result.skill_weight = 0.0
            mlflow_api.set_tag("persistence_fallback", "true")
            mlflow_api.log_metrics(
                {f"network_test_{k}": v for k, v in scores.network_metrics.items()
                 if isinstance(v, float)}
            )
        mlflow_api.log_metrics(
            {
                "best_val_loss": result.best_val_loss,
                "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run,
                "train_seconds": result.seconds,
                "skill_weight": result.skill_weight,
                **scores.mlflow_metrics(),
            }
        )
        bundle = ModelBundle.from_network(
            network, ticker=ticker, architecture=architecture, network_params=network_params,
            data=data, spread=scores.spread,
        )
        mlflow.log_model_artifacts(run.info.run_id, pyfunc_files(bundle, data))
        mlflow_api.log_text(scores.evaluation.write_csv(), "evaluation.csv")
        mlflow_api.log_text(scores.intervals.write_csv(), "interval_evaluation.csv")
        return LoggedRun(run.info.run_id, run.info.experiment_id, result, scores)


def score_champion(
    mlflow: MlflowResource, name: str, data: SequenceData
) -> tuple[float | None, str | None]:
    """(the production version's MAPE on `data`'s test windows, why it cannot be scored)."""
    champion = mlflow.production_version(name)
    if champion is None:
        return None, None
    bundle = ModelBundle.from_files(mlflow.load_model_artifacts(name, champion.version))
    incompatible = champion_incompatibility(champion.version, bundle, data)
    return (None if incompatible else champion_mape(bundle, data)), incompatible


def register_version(
    mlflow: MlflowResource, name: str, logged: LoggedRun, strategy: str, ticker: str,
    checks: list[dg.AssetCheckResult], detail: str,
) -> RegisteredVersion:
    """A new version, born with its checks' outcome: never visible without it."""
    tags = {"strategy": strategy, "ticker": ticker, **checks_tags(checks, detail)}
    return mlflow.register(name, logged.run_id, tags=tags)


def gate(
    scores: ChallengerEvaluation, finite: bool, champion_score: float | None,
    incompatible: str | None, config: ModelTrainingConfig, checks_failed_detail: str,
) -> PromotionDecision:
    """The promotion decision; a fallback says why the median is persistence, and a version
    whose blocking checks failed is never promoted."""
    served, best = scores.served, scores.best
    decision = decide_promotion(
        scores.metrics[PROMOTION_METRIC] if finite else float("nan"),
        champion_score,
        scores.naive[PROMOTION_METRIC],
        min_improvement=config.min_improvement,
        naive_tolerance=config.naive_tolerance,
        challenger_interval=served[INTERVAL_METRIC] if finite else float("nan"),
        baseline_interval=best[INTERVAL_METRIC],
        baseline_name=str(best["model"]),
        interval_tolerance=config.interval_tolerance,
        champion_incompatible=incompatible,
        replace_incompatible_champion=config.replace_incompatible_champion,
    )
    if scores.fallback:
        decision = replace(
            decision,
            reason=f"the network's validation MAPE {scores.val_network:.4f}% did not beat naive "
            f"persistence's {scores.val_naive:.4f}% by {config.fallback_margin:.1%}, so this "
            f"version's median is persistence; {decision.reason}",
        )
    if decision.promote and checks_failed_detail:
        decision = replace(
            decision, promote=False, outcome="rejected",
            reason=f"blocking checks failed ({checks_failed_detail}); {decision.reason}",
        )
    return decision


def promote_and_tag(
    mlflow: MlflowResource, name: str, version: str, run_id: str, decision: PromotionDecision,
    scores: ChallengerEvaluation, champion_score: float | None, incompatible: str | None,
) -> dict[str, str]:
    """Move `production` if the gate says so; the decision's numbers on the version and run."""
    if decision.promote:
        mlflow.promote(name, version)
    served, best = scores.served, scores.best
    tags = {
        "promotion_decision": decision.outcome,
        "promotion_reason": decision.reason,
        "persistence_fallback": str(scores.fallback).lower(),
        "challenger_mape": f"{decision.challenger_mape:.6f}",
        "champion_mape": "" if champion_score is None else f"{champion_score:.6f}",
        "naive_mape": f"{decision.naive_mape:.6f}",
        "challenger_winkler_80": f"{served[INTERVAL_METRIC]:.6f}",
        "baseline_winkler_80": f"{best[INTERVAL_METRIC]:.6f} ({best['model']})",
        **({"champion_incompatible": incompatible} if incompatible else {}),
    }
    mlflow.tag_version(name, version, tags)
    mlflow.client().set_tag(run_id, "promotion_decision", tags["promotion_decision"])
    return tags


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
    """Train -> evaluate against baselines -> register with the checks' outcome -> gate the
    production alias -> card and metadata."""
    ticker = data.ticker
    name = registered_model_name(ticker)
    logged = train_and_log(
        mlflow, data, network, architecture=architecture, network_params=network_params,
        train_config=train_config, lr_factor=lr_factor, config=config, experiment=experiment,
        strategy=strategy, extra_params=extra_params,
        run_tags={"ticker": ticker, "strategy": strategy, "dagster_run_id": context.run.run_id},
    )
    scores = logged.scores
    finite = weights_are_finite(network)
    # The model card's key: child_model's op also writes model_history, so ask for the output's.
    model_key = (context.asset_key_for_output(CHILD_MODEL) if len(context.assets_def.keys) > 1
                 else context.asset_key)
    checks = model_check_results(model_key, finite, scores.metrics, scores.naive, config)
    detail = checks_detail(checks, scores.metrics, scores.naive, config)
    champion_score, incompatible = score_champion(mlflow, name, data)
    registered = register_version(mlflow, name, logged, strategy, ticker, checks, detail)
    decision = gate(scores, finite, champion_score, incompatible, config, detail)
    decision_tags = promote_and_tag(
        mlflow, name, registered.version, logged.run_id, decision, scores, champion_score,
        incompatible,
    )
    production = mlflow.production_version(name)
    forecasting, _, _ = forecasting_version(mlflow, name)
    outcome = RegisteredOutcome(
        name, registered.version, logged.run_id, logged.experiment_id, decision, decision_tags,
        champion_score, incompatible, production.version if production else None,
        failed_checks(checks), detail, forecasting.version if forecasting else None,
    )
    card = model_card(data, strategy=strategy, architecture=architecture, result=logged.result,
                      scores=scores, outcome=outcome)
    metadata = model_metadata(data, strategy=strategy, network=network, result=logged.result,
                              scores=scores, outcome=outcome, mlflow=mlflow)
    return TrainedModel(card, metadata, checks, decision)
