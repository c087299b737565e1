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

import os

import dagster as dg

from stock_assets.settings import Environment, get_environment

RUN_KIND_TAG = "stock_assets/kind"
# Tags for `define_asset_job(..., tags=...)`; deploy/dagster.yaml limits each kind.
TRAINING_RUN_TAGS: dict[str, str] = {RUN_KIND_TAG: "training"}
DAILY_RUN_TAGS: dict[str, str] = {RUN_KIND_TAG: "daily"}
INGESTION_RUN_TAGS: dict[str, str] = {RUN_KIND_TAG: "ingestion"}

MAX_CONCURRENT_STEPS_ENV = "STOCK_ASSETS_MAX_CONCURRENT_STEPS"

EXECUTOR_ENV = "STOCK_ASSETS_EXECUTOR"
MULTIPROCESS, CELERY = "multiprocess", "celery"
EXECUTOR_KINDS = (MULTIPROCESS, CELERY)

CELERY_BROKER_ENV = "STOCK_ASSETS_CELERY_BROKER"
CELERY_BACKEND_ENV = "STOCK_ASSETS_CELERY_BACKEND"
# Databases 1 and 2 of the Redis that already serves Feast's online store (database 0): the queue
# and the task results never mix with feature keys. `redis` is the compose service's host name.
PRODUCTION_CELERY_BROKER = "redis://redis:6379/1"
PRODUCTION_CELERY_BACKEND = "redis://redis:6379/2"
LOCAL_CELERY_BROKER = "redis://127.0.0.1:6379/1"
LOCAL_CELERY_BACKEND = "redis://127.0.0.1:6379/2"


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


def executor_kind() -> str:
    """Where steps run: $STOCK_ASSETS_EXECUTOR, `multiprocess` (default) or `celery`."""
    raw = os.environ.get(EXECUTOR_ENV, "").strip().lower() or MULTIPROCESS
    if raw not in EXECUTOR_KINDS:
        raise ValueError(f"{EXECUTOR_ENV}={raw!r} is not one of {list(EXECUTOR_KINDS)}.")
    return raw


def celery_urls() -> tuple[str, str]:
    """(broker, result backend): $STOCK_ASSETS_CELERY_BROKER / _BACKEND, else Redis databases 1
    and 2 on the compose `redis` service (production) or on 127.0.0.1 (local)."""
    production = get_environment() is Environment.PRODUCTION
    broker = os.environ.get(CELERY_BROKER_ENV, "").strip() or (
        PRODUCTION_CELERY_BROKER if production else LOCAL_CELERY_BROKER
    )
    backend = os.environ.get(CELERY_BACKEND_ENV, "").strip() or (
        PRODUCTION_CELERY_BACKEND if production else LOCAL_CELERY_BACKEND
    )
    return broker, backend


def celery_executor() -> dg.ExecutorDefinition:
    """dagster-celery's executor on our broker: each step is a Celery task that a
    `dagster-celery worker start -A dagster_celery.app -y deploy/celery.yaml` worker executes.

    The workers must reach the same broker (deploy/celery.yaml reads the same variables), the
    Dagster instance (PostgreSQL) and the lake volume, and import this code location. One run can
    point elsewhere in run config: `execution: {config: {broker: ..., backend: ...}}`.
    """
    from dagster_celery import celery_executor as dagster_celery_executor  # only when chosen

    broker, backend = celery_urls()
    return dagster_celery_executor.configured(
        lambda config: {"broker": config["broker"], "backend": config["backend"]},
        name="stock_assets_celery",
        config_schema={
            "broker": dg.Field(str, default_value=broker),
            "backend": dg.Field(str, default_value=backend),
        },
    )


def selected_executor() -> dg.ExecutorDefinition:
    """The code location's executor for every job, as $STOCK_ASSETS_EXECUTOR chooses."""
    return celery_executor() if executor_kind() == CELERY else default_executor()
