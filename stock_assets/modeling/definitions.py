"""Modeling stage: Optuna tuning, the parent model, per-ticker children, and their jobs."""

import dagster as dg

from stock_assets.modeling.assets import child_model, model_hyperparameters, parent_model
from stock_assets.modeling.jobs import parent_retrain_job, retrain_job

__all__ = ["defs", "parent_retrain_job", "retrain_job"]

# A few more trials of the parent's Optuna study (the run command's tuning step, before the parent).
tuning_job = dg.define_asset_job(
    "tuning_job",
    selection=dg.AssetSelection.assets("market_index_sequences", "model_hyperparameters"),
    tags=TRAINING_RUN_TAGS,
    description="Rebuild ^GSPC sequences and add trials to the parent's Optuna study.",
)

defs = dg.Definitions(
    assets=[model_hyperparameters, parent_model, child_model],
    jobs=[retrain_job, parent_retrain_job, tuning_job],
)
