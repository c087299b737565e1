"""Modeling stage: Optuna tuning, the parent model, per-ticker children, and their jobs."""

import dagster as dg

from stock_assets.modeling.assets import child_model, model_hyperparameters, parent_model
from stock_assets.execution import TRAINING_RUN_TAGS
from stock_assets.partitions import ticker_partitions

# What a retrain of one ticker re-materializes (the retraining sensor targets this job).
retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets("training_sequences", "child_model"),
    partitions_def=ticker_partitions,
    tags=TRAINING_RUN_TAGS,
    description="Rebuild one ticker's sequences and retrain its child model.",
)

# The parent, after its data changed (followed by its children, see monitoring).
parent_retrain_job = dg.define_asset_job(
    "parent_retrain_job",
    selection=dg.AssetSelection.assets("market_index_sequences", "parent_model"),
    tags=TRAINING_RUN_TAGS,
    description="Rebuild ^GSPC sequences and retrain the parent model.",
)

defs = dg.Definitions(
    assets=[model_hyperparameters, parent_model, child_model],
    jobs=[retrain_job, parent_retrain_job],
)
