"""How runs execute and how the run queue tells them apart.

Inside a run, steps (one per asset partition) run in subprocesses, capped so that a run on a small
machine cannot start more CPU-bound training steps than it has cores. Between runs, the queue in
deploy/dagster.yaml limits runs by the `stock_assets/kind` tag: jobs tag themselves with the
constants below, so training runs cannot take the slots the daily job needs.
"""

from __future__ import annotations

import os

import dagster as dg

RUN_KIND_TAG = "stock_assets/kind"
# Tags for `define_asset_job(..., tags=...)`; deploy/dagster.yaml limits each kind.
TRAINING_RUN_TAGS: dict[str, str] = {RUN_KIND_TAG: "training"}
DAILY_RUN_TAGS: dict[str, str] = {RUN_KIND_TAG: "daily"}
INGESTION_RUN_TAGS: dict[str, str] = {RUN_KIND_TAG: "ingestion"}

MAX_CONCURRENT_STEPS_ENV = "STOCK_ASSETS_MAX_CONCURRENT_STEPS"


def max_concurrent_steps(default: int = 2) -> int:
    """Steps one run may execute at once ($STOCK_ASSETS_MAX_CONCURRENT_STEPS, at least 1)."""
    raw = os.environ.get(MAX_CONCURRENT_STEPS_ENV, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{MAX_CONCURRENT_STEPS_ENV}={raw!r} is not an integer.") from exc
    if value < 1:
        raise ValueError(f"{MAX_CONCURRENT_STEPS_ENV} must be at least 1, got {value}.")
    return value


def default_executor() -> dg.ExecutorDefinition:
    """The multiprocess executor with a step limit: the code location's default for every job.

    The limit defaults to $STOCK_ASSETS_MAX_CONCURRENT_STEPS; one run can still raise or lower it
    in run config: `execution: {config: {max_concurrent: 4}}`.
    """
    return dg.multiprocess_executor.configured(
        lambda config: {"max_concurrent": config["max_concurrent"]},
        name="stock_assets_multiprocess",
        config_schema={"max_concurrent": dg.Field(int, default_value=max_concurrent_steps())},
    )
