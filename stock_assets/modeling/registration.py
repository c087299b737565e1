"""Train, score, log, register and gate one model: the work parent_model and child_model share.

Each call trains one network, fits its spread model (the forecast distribution) on the training
part, decides the persistence fallback on validation, scores the network and the baselines (naive,
drift, linear; trailing-volatility, EWMA and GARCH-t bands) on the test windows, logs it all to
MLflow, registers a new version, scores the production version on the SAME test windows, and moves
the `production` alias only when the promotion gate says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import dagster as dg
import numpy as np
import polars as pl

from stock_assets.datasets.windows import SequenceData
from stock_assets.metadata import markdown_table
from stock_assets.modeling.artifacts import ModelBundle, rescale_windows, weights_are_finite
from stock_assets.modeling.config import ModelTrainingConfig
from stock_assets.modeling.evaluation import (
    evaluate_all,
    forecast_metrics,
    reconstruct_prices,
    validation_mapes,
)
from stock_assets.modeling.model_charts import model_charts
from stock_assets.modeling.probabilistic import (
    INTERVAL_METRIC,
    best_vol_baseline,
    fit_model_spread,
    interval_evaluation,
)
from stock_assets.modeling.promotion import PromotionDecision, decide_promotion
from stock_assets.modeling.registry import MlflowResource, registered_model_name
from stock_assets.modeling.training import TrainConfig, predict_returns

PROMOTION_METRIC = "mape_hH"  # MAPE at the full horizon, in percent


@dataclass(frozen=True)
class TrainedModel:
    card: pl.DataFrame
    metadata: dict[str, dg.MetadataValue]
    checks: list[dg.AssetCheckResult]
    decision: PromotionDecision


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


def champion_incompatibility(
    version: str, champion: ModelBundle, data: SequenceData
) -> str | None:
    """Why production version `version` cannot be scored on `data`'s windows, or None if it can."""
    why = champion.incompatibility(data)
    return None if why is None else f"v{version}: {why}"


def falls_back_to_persistence(network, metrics: dict, naive: dict, naive_tolerance: float) -> bool:
    """True when a finite network is worse than naive persistence on the windows scored in
    `metrics` / `naive` (validation, as fit_and_register calls it) and can be shrunk to it (it has
    a `skill_weight`); a broken network never falls back, so the blocking checks still catch it."""
    score = metrics[PROMOTION_METRIC]
    return (
        hasattr(network, "skill_weight")
        and weights_are_finite(network)
        and bool(np.isfinite(score))
        and score > naive[PROMOTION_METRIC] * naive_tolerance
    )


def _interval_metrics(intervals: pl.DataFrame) -> dict[str, float]:
    """MLflow metrics of every row of the interval evaluation: `<model>_<score>`."""
    return {
        f"{row['model'] if row['kind'] == 'vol_baseline' else 'test'}_{key}": float(value)
        for row in intervals.iter_rows(named=True)
        for key, value in row.items()
        if isinstance(value, float)
    }


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
        spread = fit_model_spread(data)
        evaluation = evaluate_all(network, data, name=strategy)
        network_metrics = evaluation.row(0, named=True)
        val_network, val_naive = validation_mapes(network, data)
        fallback = config.persistence_fallback and falls_back_to_persistence(
            network, {PROMOTION_METRIC: val_network}, {PROMOTION_METRIC: val_naive},
            config.naive_tolerance * (1.0 - config.fallback_margin),
        )
        if fallback:
            network.skill_weight.fill_(0.0)
            result.skill_weight = 0.0
            mlflow_api.set_tag("persistence_fallback", "true")
            mlflow_api.log_metrics(
                {f"network_test_{k}": v for k, v in network_metrics.items() if isinstance(v, float)}
            )
            # Only the network's row changes; the baselines (a Ridge fit among them) stand.
            served_row = evaluate_all(network, data, name=strategy, baselines=False)
            evaluation = pl.concat([served_row, evaluation.filter(pl.col("model") != strategy)])
        by_model = {row["model"]: row for row in evaluation.iter_rows(named=True)}
        metrics = by_model[strategy]
        intervals = interval_evaluation(network, spread, data, strategy)
        best = best_vol_baseline(intervals)
        served = intervals.row(0, named=True)
        mlflow_api.log_metrics(
            {
                "best_val_loss": result.best_val_loss,
                "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run,
                "train_seconds": result.seconds,
                "skill_weight": result.skill_weight,
                "val_mape_hH": val_network,
                "val_naive_mape_hH": val_naive,
                **{f"test_{k}": v for k, v in metrics.items() if isinstance(v, float)},
                **{
                    f"{baseline}_{k}": v
                    for baseline in ("naive", "drift", "linear")
                    for k, v in by_model[baseline].items()
                    if isinstance(v, float)
                },
                **_interval_metrics(intervals),
            }
        )
        bundle = ModelBundle.from_network(
            network, ticker=ticker, architecture=architecture, network_params=network_params,
            data=data, spread=spread,
        )
        mlflow.log_model_artifacts(run.info.run_id, bundle.to_files())
        mlflow_api.log_text(evaluation.write_csv(), "evaluation.csv")
        mlflow_api.log_text(intervals.write_csv(), "interval_evaluation.csv")
        experiment_id = run.info.experiment_id
        run_id = run.info.run_id

    champion = mlflow.production_version(name)
    champion_score = incompatible = None
    if champion is not None:
        champion_bundle = ModelBundle.from_files(mlflow.load_model_artifacts(name, champion.version))
        incompatible = champion_incompatibility(champion.version, champion_bundle, data)
        champion_score = None if incompatible else champion_mape(champion_bundle, data)
    registered = mlflow.register(name, run_id, tags={"strategy": strategy, "ticker": ticker})
    finite = weights_are_finite(network)
    challenger_score = metrics[PROMOTION_METRIC] if finite else float("nan")
    decision = decide_promotion(
        challenger_score,
        champion_score,
        by_model["naive"][PROMOTION_METRIC],
        min_improvement=config.min_improvement,
        naive_tolerance=config.naive_tolerance,
        challenger_interval=served[INTERVAL_METRIC] if finite else float("nan"),
        baseline_interval=best[INTERVAL_METRIC],
        baseline_name=str(best["model"]),
        interval_tolerance=config.interval_tolerance,
        champion_incompatible=incompatible,
        replace_incompatible_champion=config.replace_incompatible_champion,
    )
    if fallback:
        decision = replace(
            decision,
            reason=f"the network's validation MAPE {val_network:.4f}% did not beat naive "
            f"persistence's {val_naive:.4f}% by {config.fallback_margin:.1%}, so this version's "
            "median is persistence; "
            f"{decision.reason}",
        )
    if decision.promote:
        mlflow.promote(name, registered.version)
    decision_tags = {
        "promotion_decision": decision.outcome,
        "promotion_reason": decision.reason,
        "persistence_fallback": str(bool(fallback)).lower(),
        "challenger_mape": f"{decision.challenger_mape:.6f}",
        "champion_mape": "" if champion_score is None else f"{champion_score:.6f}",
        "naive_mape": f"{decision.naive_mape:.6f}",
        "challenger_winkler_80": f"{served[INTERVAL_METRIC]:.6f}",
        "baseline_winkler_80": f"{best[INTERVAL_METRIC]:.6f} ({best['model']})",
        **({"champion_incompatible": incompatible} if incompatible else {}),
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
                "test_coverage_80_h5": served["coverage_80_hH"],
                "test_coverage_90_h5": served["coverage_90_hH"],
                "test_winkler_80_h5": served[INTERVAL_METRIC],
                "baseline_winkler_80_h5": best[INTERVAL_METRIC],
                "best_vol_baseline": str(best["model"]),
            }
        ],
        schema_overrides={"champion_mape_h5": pl.Float64, "production_version": pl.String},
    )
    metric_table = evaluation.select(
        "model", "kind", "mape_h1", "mape_hH", "rmse_hH", "mae_hH", "dir_acc_h1", "dir_acc_hH"
    )
    interval_table = intervals.select(
        "model", "coverage_50_hH", "coverage_80_hH", "coverage_90_hH", "coverage_80_h1",
        "winkler_80_hH", "winkler_90_hH", "pinball_hH", "brier_hH",
    )
    metadata = {
        "model_version": dg.MetadataValue.text(f"{name} v{registered.version}"),
        "production_version": dg.MetadataValue.text(production.version if production else "none"),
        "promotion": dg.MetadataValue.text(decision.reason),
        "promotion_decision": dg.MetadataValue.text(decision_tags["promotion_decision"]),
        **(
            {"champion_incompatible": dg.MetadataValue.text(incompatible)} if incompatible else {}
        ),
        "train_end": dg.MetadataValue.text(data.boundaries.train_last_target.isoformat()),
        "test_window": dg.MetadataValue.text(
            f"{data.boundaries.test_first_anchor}..{data.boundaries.test_last_target}"
        ),
        "test_mape_h5": float(metrics["mape_hH"]),
        "naive_mape_h5": float(by_model["naive"]["mape_hH"]),
        # The production model's score on the same test windows, beside the challenger's.
        **({"champion_mape_h5": float(champion_score)} if champion_score is not None else {}),
        "directional_accuracy_h5": float(metrics["dir_acc_hH"]),
        "test_coverage_80_h5": float(served["coverage_80_hH"]),
        "test_winkler_80_h5": float(served[INTERVAL_METRIC]),
        "best_vol_baseline": dg.MetadataValue.text(
            f"{best['model']} (Winkler 80 % h{data.horizon} {best[INTERVAL_METRIC]:.5f})"
        ),
        "best_epoch": result.best_epoch,
        "skill_weight": dg.MetadataValue.float(result.skill_weight),
        "persistence_fallback": dg.MetadataValue.bool(bool(fallback)),
        "network_test_mape_h5": float(network_metrics["mape_hH"]),
        "train_seconds": round(result.seconds, 2),
        "metrics_vs_baselines": dg.MetadataValue.md(markdown_table(metric_table)),
        "intervals_vs_baselines": dg.MetadataValue.md(markdown_table(interval_table)),
        **model_charts(result, network, spread, data, intervals, f"{ticker} ({strategy})"),
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
