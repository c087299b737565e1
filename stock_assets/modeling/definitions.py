"""Modeling stage: Optuna tuning, the parent model, per-ticker children, and their jobs."""

import dagster as dg

from stock_assets.modeling.assets import child_model, model_hyperparameters, parent_model
from stock_assets.modeling.jobs import parent_retrain_job, retrain_job, tuning_job

__all__ = ["defs", "parent_retrain_job", "retrain_job", "tuning_job"]

defs = dg.Definitions(
    assets=[model_hyperparameters, parent_model, child_model],
    jobs=[retrain_job, parent_retrain_job, tuning_job],
)
