"""The stock_assets code location: every stage's assets, checks, jobs and sensors, one set of
resources. Stages are merged in data-flow order; see docs/ARCHITECTURE.md."""

import dagster as dg

from stock_assets.agents.definitions import defs as agents_defs
from stock_assets.datasets.definitions import defs as datasets_defs
from stock_assets.features.definitions import defs as features_defs
from stock_assets.forecasting.definitions import defs as forecasting_defs
from stock_assets.ingestion.definitions import defs as ingestion_defs
from stock_assets.modeling.definitions import defs as modeling_defs
from stock_assets.monitoring.definitions import defs as monitoring_defs
from stock_assets.strategy.definitions import defs as strategy_defs
from stock_assets.execution import selected_executor
from stock_assets.resources import build_resources

defs = dg.Definitions.merge(
    ingestion_defs,
    features_defs,
    datasets_defs,
    modeling_defs,
    forecasting_defs,
    monitoring_defs,
    strategy_defs,
    agents_defs,
    dg.Definitions(resources=build_resources(), executor=selected_executor()),
)
