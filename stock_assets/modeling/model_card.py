"""A trained version's one-row model card and the asset metadata a person reads in the UI.

Why apart from the training: both only present numbers decided earlier (the challenger's
evaluation, the gate's decision, the registry's versions), so they are pure formatting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from stock_assets.datasets.windows import SequenceData
from stock_assets.metadata import markdown_table
from stock_assets.modeling.challenger import INTERVAL_METRIC, ChallengerEvaluation
from stock_assets.modeling.model_charts import model_charts
from stock_assets.modeling.promotion import PromotionDecision
from stock_assets.modeling.training import TrainResult


@dataclass(frozen=True)
class RegisteredOutcome:
    """What the registry holds after a training: the new version and the gate's verdict."""

    name: str
    version: str
    run_id: str
    experiment_id: str
    decision: PromotionDecision
    decision_tags: dict[str, str]
    champion_score: float | None
    incompatible: str | None
    production_version: str | None
    checks_failed: list[str]
    checks_detail: str
    forecast_version: str | None  # the version forecasts come from now (None: no forecast)


def model_card(
    data: SequenceData, *, strategy: str, architecture: str, result: TrainResult,
    scores: ChallengerEvaluation, outcome: RegisteredOutcome,
) -> pl.DataFrame:
    metrics, naive, served, best = scores.metrics, scores.naive, scores.served, scores.best
    decision = outcome.decision
    return pl.DataFrame(
        [
            {
                "ticker": data.ticker,
                "model_name": outcome.name,
                "model_version": outcome.version,
                "run_id": outcome.run_id,
                "strategy": strategy,
                "architecture": architecture,
                "trained_at": datetime.now(UTC),
                "train_start": data.boundaries.train_first_anchor,
                "train_end": data.boundaries.train_last_target,
                "test_mape_h1": metrics["mape_h1"],
                "test_mape_h5": metrics["mape_hH"],
                "naive_mape_h5": naive["mape_hH"],
                "directional_accuracy_h5": metrics["dir_acc_hH"],
                "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run,
                "train_seconds": result.seconds,
                "champion_mape_h5": outcome.champion_score,
                "promoted": decision.promote,
                "production_version": outcome.production_version,
                "decision_reason": decision.reason,
                "persistence_fallback": scores.fallback,
                "network_test_mape_h5": scores.network_metrics["mape_hH"],
                "test_coverage_80_h5": served["coverage_80_hH"],
                "test_coverage_90_h5": served["coverage_90_hH"],
                "test_winkler_80_h5": served[INTERVAL_METRIC],
                "baseline_winkler_80_h5": best[INTERVAL_METRIC],
                "best_vol_baseline": str(best["model"]),
                # The blocking checks' outcome, as on the MLflow version: a failed one never forecasts.
                "checks_passed": not outcome.checks_failed,
                "checks_failed": ",".join(outcome.checks_failed),
                "checks_detail": outcome.checks_detail,
                "forecast_version": outcome.forecast_version,
            }
        ],
        schema_overrides={"champion_mape_h5": pl.Float64, "production_version": pl.String,
                          "forecast_version": pl.String},
    )


def model_metadata(
    data: SequenceData, *, strategy: str, network, result: TrainResult,
    scores: ChallengerEvaluation, outcome: RegisteredOutcome, mlflow,
) -> dict[str, dg.MetadataValue]:
    metrics, naive, served, best = scores.metrics, scores.naive, scores.served, scores.best
    name, version, run_id = outcome.name, outcome.version, outcome.run_id
    metric_table = scores.evaluation.select(
        "model", "kind", "mape_h1", "mape_hH", "rmse_hH", "mae_hH", "dir_acc_h1", "dir_acc_hH"
    )
    interval_table = scores.intervals.select(
        "model", "coverage_50_hH", "coverage_80_hH", "coverage_90_hH", "coverage_80_h1",
        "winkler_80_hH", "winkler_90_hH", "pinball_hH", "brier_hH",
    )
    incompatible, champion_score = outcome.incompatible, outcome.champion_score
    return {
        "model_version": dg.MetadataValue.text(f"{name} v{version}"),
        "production_version": dg.MetadataValue.text(outcome.production_version or "none"),
        "promotion": dg.MetadataValue.text(outcome.decision.reason),
        "promotion_decision": dg.MetadataValue.text(outcome.decision_tags["promotion_decision"]),
        **(
            {"champion_incompatible": dg.MetadataValue.text(incompatible)} if incompatible else {}
        ),
        "checks_passed": dg.MetadataValue.bool(not outcome.checks_failed),
        **(
            {"checks_failed": dg.MetadataValue.text(outcome.checks_detail)}
            if outcome.checks_failed
            else {}
        ),
        "train_end": dg.MetadataValue.text(data.boundaries.train_last_target.isoformat()),
        "test_window": dg.MetadataValue.text(
            f"{data.boundaries.test_first_anchor}..{data.boundaries.test_last_target}"
        ),
        "test_mape_h5": float(metrics["mape_hH"]),
        "naive_mape_h5": float(naive["mape_hH"]),
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
        "persistence_fallback": dg.MetadataValue.bool(scores.fallback),
        "network_test_mape_h5": float(scores.network_metrics["mape_hH"]),
        "train_seconds": round(result.seconds, 2),
        "metrics_vs_baselines": dg.MetadataValue.md(markdown_table(metric_table)),
        "intervals_vs_baselines": dg.MetadataValue.md(markdown_table(interval_table)),
        **model_charts(result, network, scores.spread, data, scores.intervals,
                       f"{data.ticker} ({strategy})"),
        "mlflow_run": dg.MetadataValue.url(mlflow.run_url(outcome.experiment_id, run_id)),
        "mlflow_run_id": dg.MetadataValue.text(run_id),
        "mlflow_model_version": dg.MetadataValue.url(mlflow.model_version_url(name, version)),
    }
