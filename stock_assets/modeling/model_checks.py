"""The blocking checks of a trained model, and their outcome as tags of its MLflow version.

Why both: Dagster's blocking checks stop a bad model's run, but forecasting finds its model in
the MLflow registry, not in the run. The same outcome is written on the version when it is
registered (`checks_passed=true|false`, `checks_failed`, `checks_detail`), so a version whose
checks failed never forecasts, whatever happens to the Dagster run.
"""

from __future__ import annotations

import dagster as dg
import numpy as np

from stock_assets.modeling.config import ModelTrainingConfig
from stock_assets.modeling.registry import MlflowResource, RegisteredVersion

SOURCE_PRODUCTION = "production"
SOURCE_CHECKED = "newest version whose blocking checks passed; none promoted yet"
PROMOTION_METRIC = "mape_hH"  # MAPE at the full horizon, in percent
CHECKS_PASSED_TAG = "checks_passed"
CHECKS_FAILED_TAG = "checks_failed"
CHECKS_DETAIL_TAG = "checks_detail"


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


def failed_checks(checks: list[dg.AssetCheckResult]) -> list[str]:
    return [check.check_name for check in checks if not check.passed]


def checks_detail(checks: list[dg.AssetCheckResult], metrics: dict, naive: dict,
                  config: ModelTrainingConfig) -> str:
    """Why the checks failed, in words ("" when they passed)."""
    words = {
        "finite_weights": "the network has non-finite weights",
        "test_metrics_present": "a test metric is missing or non-finite",
        "not_worse_than_naive": (
            f"test MAPE {metrics[PROMOTION_METRIC]:.4f}% is worse than naive persistence's "
            f"{naive[PROMOTION_METRIC]:.4f}% x {config.naive_tolerance:g}"
        ),
    }
    return "; ".join(f"{name}: {words[name]}" for name in failed_checks(checks))


def checks_tags(checks: list[dg.AssetCheckResult], detail: str) -> dict[str, str]:
    """The checks' outcome as MLflow model-version tags."""
    failed = failed_checks(checks)
    return {
        CHECKS_PASSED_TAG: "false" if failed else "true",
        CHECKS_FAILED_TAG: ",".join(failed),
        CHECKS_DETAIL_TAG: detail,
    }


def version_checks_passed(tags: dict[str, str]) -> bool:
    """Only a version registered with passing checks counts: a version without the tag (logged
    before checks were recorded) has an unknown outcome and does not."""
    return tags.get(CHECKS_PASSED_TAG) == "true"


def forecasting_version(
    mlflow: MlflowResource, name: str
) -> tuple[RegisteredVersion | None, str, list[RegisteredVersion]]:
    """(the version forecasts come from, why it, every version newest first when it is not
    production): production, or else the newest version whose checks passed, or None. A newer
    failing version never displaces an older passing one."""
    production = mlflow.production_version(name)
    if production is not None:
        return production, SOURCE_PRODUCTION, []
    versions = mlflow.versions(name)
    passing = next((v for v in versions if version_checks_passed(v.tags)), None)
    return passing, SOURCE_CHECKED, versions


def no_passing_version_reason(name: str, versions: list[RegisteredVersion]) -> str:
    """Why a model with registered versions cannot forecast, naming the newest's failed checks
    early (the panel's skip table shows the first 200 characters)."""
    newest = versions[0]
    failed = newest.tags.get(CHECKS_DETAIL_TAG) or newest.tags.get(CHECKS_FAILED_TAG)
    why = (
        f"v{newest.version} failed {failed}"
        if failed
        else f"v{newest.version} has no recorded checks (registered before they were recorded)"
    )
    return (
        f"no forecast: no version of {name} passed its blocking checks and none is in production "
        f"(newest: {why}; {len(versions)} registered). Retrain the model: an unchecked model "
        "never forecasts."
    )
