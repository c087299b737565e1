"""The market index's drift check: ^GSPC's recent sessions against the parent model's training
window (the forecasting stage owns the checks on its own assets; this one watches the parent's
input, and its failure retrains the parent, then every child)."""

import dagster as dg
import polars as pl

from stock_assets.contract import FEATURE_DRIFT, MARKET_INDEX_INDICATORS
from stock_assets.features.feature_store import FeatureStoreResource
from stock_assets.forecasting.checks import CheckOutcome, run_drift_check
from stock_assets.modeling.registry import MlflowResource
from stock_assets.monitoring_settings import MonitoringSettings


@dg.asset_check(
    asset=MARKET_INDEX_INDICATORS,
    name=FEATURE_DRIFT,
    blocking=False,
    description=(
        "^GSPC's recent sessions against the parent model's training window; a failure retrains "
        "the parent, then every child."
    ),
)
def market_index_feature_drift(
    context: dg.AssetCheckExecutionContext,
    market_index_indicators: pl.DataFrame,
    mlflow: MlflowResource,
    feature_store: FeatureStoreResource,
) -> dg.AssetCheckResult:
    from stock_assets.datasets.windows import MODEL_FEATURES, model_feature_frame
    from stock_assets.forecasting.model_choice import resolve_forecast_model
    from stock_assets.tickers import MARKET_INDEX_KEY

    settings = MonitoringSettings.from_env()
    try:
        parent = resolve_forecast_model(mlflow, MARKET_INDEX_KEY)
    except dg.Failure as failure:  # none registered, or none whose blocking checks passed
        return CheckOutcome(
            True,
            f"No parent model to compare the index with: {failure.description}",
            {"evidence": "none"},
        ).to_result(MARKET_INDEX_INDICATORS, FEATURE_DRIFT)
    features = model_feature_frame(market_index_indicators)
    reference = features.filter(pl.col("date").is_between(parent.train_start, parent.train_end))
    current = features.tail(settings.drift_window)
    as_of = current["date"].max()
    outcome = run_drift_check(
        reference=reference,
        current=current,
        columns=MODEL_FEATURES,
        settings=settings,
        ticker=MARKET_INDEX_KEY,
        as_of=as_of,
        reference_window=(parent.train_start, parent.train_end),
        home=feature_store.home,
    )
    outcome.metadata["model_version"] = parent.label()
    return outcome.to_result(MARKET_INDEX_INDICATORS, FEATURE_DRIFT)
