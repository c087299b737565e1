"""The modeling stage's jobs: one ticker's retrain, the parent's (its children follow, see
monitoring's parent_retrain_children_sensor), and the parent's Optuna study (the run command's
tuning step, before the parent)."""

import dagster as dg
from dagster_mlflow import end_mlflow_on_run_finished

from stock_assets.contract import (
    CHILD_MODEL,
    MARKET_INDEX_SEQUENCES,
    MODEL_HISTORY,
    MODEL_HYPERPARAMETERS,
    PARENT_MODEL,
    PARENT_RETRAIN_JOB,
    RETRAIN_JOB,
    TRAINING_SEQUENCES,
    TUNING_JOB,
)
from stock_assets.execution import TRAINING_RUN_TAGS
from stock_assets.partitions import ticker_partitions

# dagster-mlflow's hook: when a training step fails (or the job's last step ends), it ends the
# MLflow run still active in that step's process (MlflowResource.end_run). A run is context-managed
# in our code; this is the guard for long-lived step processes (Celery workers run many steps),
# where a run left active would make the next step's run a nested child of it.
TRAINING_HOOKS = {end_mlflow_on_run_finished}

# What a retrain of one ticker re-materializes (the retraining sensor targets this job).
retrain_job = dg.define_asset_job(
    RETRAIN_JOB,
    selection=dg.AssetSelection.assets(TRAINING_SEQUENCES, CHILD_MODEL, MODEL_HISTORY),
    partitions_def=ticker_partitions,
    tags=TRAINING_RUN_TAGS,
    hooks=TRAINING_HOOKS,
    description="Rebuild one ticker's sequences and retrain its child model.",
)

# The parent, after its data changed.
parent_retrain_job = dg.define_asset_job(
    PARENT_RETRAIN_JOB,
    selection=dg.AssetSelection.assets(MARKET_INDEX_SEQUENCES, PARENT_MODEL),
    tags=TRAINING_RUN_TAGS,
    hooks=TRAINING_HOOKS,
    description="Rebuild ^GSPC sequences and retrain the parent model.",
)

# A few more trials of the parent's Optuna study; parent_model trains with its best trial.
tuning_job = dg.define_asset_job(
    TUNING_JOB,
    selection=dg.AssetSelection.assets(MARKET_INDEX_SEQUENCES, MODEL_HYPERPARAMETERS),
    tags=TRAINING_RUN_TAGS,
    hooks=TRAINING_HOOKS,
    description="Rebuild ^GSPC sequences and add trials to the parent's Optuna study.",
)
