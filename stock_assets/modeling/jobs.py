"""The modeling stage's jobs: one ticker's retrain, the parent's (its children follow, see
monitoring's parent_retrain_children_sensor), and the parent's Optuna study (the run command's
tuning step, before the parent)."""

import dagster as dg

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

# The parent, after its data changed.
parent_retrain_job = dg.define_asset_job(
    "parent_retrain_job",
    selection=dg.AssetSelection.assets("market_index_sequences", "parent_model"),
    tags=TRAINING_RUN_TAGS,
    description="Rebuild ^GSPC sequences and retrain the parent model.",
)

# A few more trials of the parent's Optuna study; parent_model trains with its best trial.
tuning_job = dg.define_asset_job(
    "tuning_job",
    selection=dg.AssetSelection.assets("market_index_sequences", "model_hyperparameters"),
    tags=TRAINING_RUN_TAGS,
    description="Rebuild ^GSPC sequences and add trials to the parent's Optuna study.",
)
