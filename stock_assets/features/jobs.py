"""The features stage's job: every ticker's indicators into Feast, after the day's ingestion."""

import dagster as dg

from stock_assets.contract import FEAST_FEATURES, FEAST_JOB
from stock_assets.execution import INGESTION_RUN_TAGS

feast_job = dg.define_asset_job(
    FEAST_JOB,
    selection=dg.AssetSelection.assets(FEAST_FEATURES),
    tags=INGESTION_RUN_TAGS,
    description="Republish every ticker's indicators to Feast.",
)
