"""The features stage's job: every ticker's indicators into Feast, after the day's ingestion."""

import dagster as dg

from stock_assets.execution import INGESTION_RUN_TAGS

feast_job = dg.define_asset_job(
    "feast_job",
    selection=dg.AssetSelection.assets("feast_features"),
    tags=INGESTION_RUN_TAGS,
    description="Republish every ticker's indicators to Feast.",
)
