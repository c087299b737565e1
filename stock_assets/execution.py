"""How runs execute and how the run queue tells them apart.

Inside a run, steps (one per asset partition) run in subprocesses, capped so that a run on a small
machine cannot start more CPU-bound training steps than it has cores. Between runs, the queue in
deploy/dagster.yaml limits runs by the `stock_assets/kind` tag: jobs tag themselves with the
constants below, so training runs cannot take the slots the daily job needs.

One setting, $STOCK_ASSETS_EXECUTOR, chooses where a run's steps execute: `multiprocess` (the
default: subprocesses of the run's own process) or `celery` (tasks on a Redis broker, executed by
`dagster-celery` workers on any machine that shares the instance and the lake; docs/PRODUCTION.md).
"""

from __future__ import annotations

import dagster as dg

from stock_assets.settings import (
    LOCAL_CELERY,
    PRODUCTION_CELERY,
    ExecutionSettings,
    Settings,
    get_settings,
    var,
)

RUN_KIND_TAG = "stock_assets/kind"
# Tags for `define_asset_job(..., tags=...)`; deploy/dagster.yaml limits each kind.
TRAINING_RUN_TAGS: dict[str, str] = {RUN_KIND_TAG: "training"}
DAILY_RUN_TAGS: dict[str, str] = {RUN_KIND_TAG: "daily"}
INGESTION_RUN_TAGS: dict[str, str] = {RUN_KIND_TAG: "ingestion"}

# The variables of ExecutionSettings (stock_assets.settings parses and validates them).
MAX_CONCURRENT_STEPS_ENV = var("MAX_CONCURRENT_STEPS")
EXECUTOR_ENV = var("EXECUTOR")
CELERY_BROKER_ENV = var("CELERY_BROKER")
CELERY_BACKEND_ENV = var("CELERY_BACKEND")
MULTIPROCESS, CELERY = "multiprocess", "celery"
EXECUTOR_KINDS = (MULTIPROCESS, CELERY)
PRODUCTION_CELERY_BROKER, PRODUCTION_CELERY_BACKEND = PRODUCTION_CELERY
LOCAL_CELERY_BROKER, LOCAL_CELERY_BACKEND = LOCAL_CELERY


def _execution(settings: Settings | None) -> ExecutionSettings:
    return (settings or get_settings()).execution


def max_concurrent_steps(settings: Settings | None = None) -> int:
    """Steps one run may execute at once ($STOCK_ASSETS_MAX_CONCURRENT_STEPS, at least 1)."""
    return _execution(settings).max_concurrent_steps


def default_executor(settings: Settings | None = None) -> dg.ExecutorDefinition:
    """The multiprocess executor with a step limit: the code location's default for every job.

    The limit defaults to $STOCK_ASSETS_MAX_CONCURRENT_STEPS; one run can still raise or lower it
    in run config: `execution: {config: {max_concurrent: 4}}`.
    """
    return dg.multiprocess_executor.configured(
        lambda config: {"max_concurrent": config["max_concurrent"]},
        name="stock_assets_multiprocess",
        config_schema={
            "max_concurrent": dg.Field(int, default_value=max_concurrent_steps(settings))
        },
    )


def executor_kind(settings: Settings | None = None) -> str:
    """Where steps run: $STOCK_ASSETS_EXECUTOR, `multiprocess` (default) or `celery`."""
    return _execution(settings).executor


def celery_urls(settings: Settings | None = None) -> tuple[str, str]:
    """(broker, result backend): $STOCK_ASSETS_CELERY_BROKER / _BACKEND, else Redis databases 1
    and 2 on the compose `redis` service (production) or on 127.0.0.1 (local)."""
    return (settings or get_settings()).celery_urls()


def celery_executor(settings: Settings | None = None) -> dg.ExecutorDefinition:
    """dagster-celery's executor on our broker: each step is a Celery task that a
    `dagster-celery worker start -A dagster_celery.app -y deploy/celery.yaml` worker executes.

    The workers must reach the same broker (deploy/celery.yaml reads the same variables), the
    Dagster instance (PostgreSQL) and the lake volume, and import this code location. One run can
    point elsewhere in run config: `execution: {config: {broker: ..., backend: ...}}`.
    """
    from dagster_celery import celery_executor as dagster_celery_executor  # only when chosen

    broker, backend = celery_urls(settings)
    return dagster_celery_executor.configured(
        lambda config: {"broker": config["broker"], "backend": config["backend"]},
        name="stock_assets_celery",
        config_schema={
            "broker": dg.Field(str, default_value=broker),
            "backend": dg.Field(str, default_value=backend),
        },
    )


def selected_executor(settings: Settings | None = None) -> dg.ExecutorDefinition:
    """The code location's executor for every job, as $STOCK_ASSETS_EXECUTOR chooses."""
    if executor_kind(settings) == CELERY:
        return celery_executor(settings)
    return default_executor(settings)


_INSTANCES: dict[str, dg.DagsterInstance] = {}


def project_instance(settings: Settings | None = None) -> dg.DagsterInstance:
    """The Dagster instance in the settings' instance folder, one per process and folder.

    `DagsterInstance.from_config(folder)` rather than `DagsterInstance.get()`: the folder comes
    from the settings the CLI was given, not from $DAGSTER_HOME, which nothing sets for it.
    """
    folder = str((settings or get_settings()).paths.dagster_home_dir)
    if folder not in _INSTANCES:
        _INSTANCES[folder] = dg.DagsterInstance.from_config(folder)
    return _INSTANCES[folder]
