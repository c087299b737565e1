"""A project home with data and tiny trained models, driven like the daily loop drives it.

Ingestion at a chosen last day of the synthetic market (so a test can train before a shock and
forecast after it), tiny parent and child models, the daily job for a date, and single-run
back-tests over a date range; all through the real code location on a real instance.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from stock_assets.contract import (
    CHILD_MODEL,
    DAILY_FORECAST,
    DAILY_JOB,
    FEAST_FEATURES,
    FORECAST_PERFORMANCE,
    MARKET_INDEX_INDICATORS,
    MARKET_INDEX_PRICES,
    MARKET_INDEX_SEQUENCES,
    MODEL_HISTORY,
    PARENT_MODEL,
    PRICE_INDICATORS,
    RAW_PRICES,
    TICKER_PARTITIONS,
    TRAINING_SEQUENCES,
)
from stock_assets.ingestion.sources import PriceSourceResource, ShockConfig

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
# Tiny and deterministic; naive_tolerance 10 lets the first model of each ticker be promoted on a
# noise-like market, so there is a production model to forecast with.
TINY_MODEL = {
    "epochs": 2,
    "hidden_size": 8,
    "num_layers": 1,
    "batch_size": 64,
    "learning_rate": 3e-3,
    "seed": 7,
    "use_tuned_params": False,
    "naive_tolerance": 10.0,
    "interval_tolerance": 10.0,
}


def failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """"step: message" for each failed step, with Dagster's wrapping of user errors removed."""
    from stock_assets.compat import innermost_error

    return [
        f"{event.step_key}: {innermost_error(event.step_failure_data.error).strip()}"
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]


def all_assets() -> list:
    from stock_assets.definitions import defs

    return [*defs.assets, *defs.asset_checks]


@dataclass
class LoopHome:
    """One home, one instance; `market` is the synthetic market every ingestion reads."""

    home: Path
    instance: dg.DagsterInstance
    synthetic_start: str
    shocks: list[ShockConfig] = field(default_factory=list)
    seed: int = 7

    def source(self, end: str | date) -> PriceSourceResource:
        return PriceSourceResource(
            kind="synthetic",
            synthetic_seed=self.seed,
            synthetic_start=self.synthetic_start,
            synthetic_end=str(end),
            synthetic_shocks=self.shocks,
        )

    def resources(self, end: str | date | None = None) -> dict[str, Any]:
        from stock_assets.resources import build_resources

        return build_resources(self.home, price_source=self.source(end or "2024-06-28"))

    @property
    def lake(self):
        from stock_assets.lake import LakeResource

        return LakeResource(base_dir=str(self.home / "lake"))

    @property
    def mlflow(self):
        return self.resources()["mlflow"]

    def definitions(self) -> dg.Definitions:
        """The real code location's definitions, bound to this home's resources."""
        from stock_assets.definitions import defs

        return dg.Definitions(
            assets=list(defs.assets or []),
            asset_checks=list(defs.asset_checks or []),
            jobs=list(defs.jobs or []),
            sensors=list(defs.sensors or []),
            schedules=list(defs.schedules or []),
            resources=self.resources(),
        )

    def register(self, *tickers: str) -> None:
        from stock_assets.partitions import ticker_partitions

        known = set(self.instance.get_dynamic_partitions(ticker_partitions.name))
        new = [t for t in tickers if t not in known]
        if new:
            self.instance.add_dynamic_partitions(ticker_partitions.name, new)

    def range_tags(self, tickers: Sequence[str]) -> dict[str, str]:
        """Run tags covering the registered ticker partitions from the first to the last of
        `tickers` (in registration order): one run for all of them, as the ingestion sensor
        launches it. Register them first."""
        from stock_assets.compat import partition_range_tags

        order = [t for t in self.instance.get_dynamic_partitions(TICKER_PARTITIONS) if t in set(tickers)]
        return partition_range_tags(order[0], order[-1])

    def materialize(
        self,
        selection: Sequence[str],
        partition_key: str | None = None,
        *,
        end: str | date | None = None,
        ops: dict[str, dict] | None = None,
        tags: dict[str, str] | None = None,
        checks: bool = True,
        raise_on_error: bool = True,
    ) -> dg.ExecuteInProcessResult:
        chosen = dg.AssetSelection.assets(*selection)
        result = dg.materialize(
            all_assets(),
            selection=chosen if checks else chosen.without_checks(),
            partition_key=partition_key,
            resources=self.resources(end),
            instance=self.instance,
            run_config={**QUIET, "ops": {op: {"config": c} for op, c in (ops or {}).items()}},
            tags=tags,
            raise_on_error=False,
        )
        if raise_on_error:
            assert result.success, failures(result)
        return result

    def ingest(self, tickers: Sequence[str], end: str | date, one_run: bool = False) -> None:
        """Prices and indicators of the index and each ticker up to `end`, then Feast.

        `one_run`: every ticker in ONE run over the ticker partitions (a single-run backfill), as
        the ingestion sensor launches it; otherwise one run per ticker."""
        self.register(*tickers)
        self.materialize([MARKET_INDEX_PRICES, MARKET_INDEX_INDICATORS], end=end)
        if one_run:
            self.materialize([RAW_PRICES, PRICE_INDICATORS], end=end,
                             tags=self.range_tags(tickers))
        else:
            for ticker in tickers:
                self.materialize([RAW_PRICES, PRICE_INDICATORS], ticker, end=end)
        self.materialize([FEAST_FEATURES], end=end)

    def train(self, tickers: Sequence[str], **model: Any) -> None:
        config = {**TINY_MODEL, **model}
        self.materialize([MARKET_INDEX_SEQUENCES, PARENT_MODEL], ops={PARENT_MODEL: config})
        for ticker in tickers:
            self.materialize(
                [TRAINING_SEQUENCES, CHILD_MODEL, MODEL_HISTORY], ticker, ops={CHILD_MODEL: config}
            )

    def daily(
        self, day: str | date, ticker: str | Sequence[str] | None = None,
        raise_on_error: bool = True,
    ) -> dg.ExecuteInProcessResult:
        """The daily job for one date, as the schedule launches it (every registered ticker), or
        for the named tickers only (the run's `stock_assets/tickers` tag)."""
        from stock_assets.partitions import tickers_tag

        job = self.definitions().resolve_job_def(DAILY_JOB)
        chosen = [ticker] if isinstance(ticker, str) else ticker
        result = job.execute_in_process(
            partition_key=str(day),
            instance=self.instance,
            run_config=QUIET,
            tags=tickers_tag(chosen) if chosen else None,
            raise_on_error=False,
        )
        if raise_on_error:
            assert result.success, failures(result)
        return result

    def backtest(
        self, ticker: str, start: str | date, end: str | date, checks: bool = True
    ) -> dg.ExecuteInProcessResult:
        """daily_forecast + forecast_performance for one ticker over a date range, in one run."""
        from stock_assets.forecasting.backtest import BACKTEST_ASSETS, backtest_tags

        return self.materialize(
            BACKTEST_ASSETS, tags=backtest_tags(ticker, start, end), checks=checks
        )

    def register_responsive_model(self, ticker: str) -> str:
        """Register and promote a copy of the ticker's production model with its skill weight at 1.

        Tiny models on a noise-like market calibrate their skill weight to 0 (they forecast
        persistence whatever their inputs), which would make a test about inputs vacuous; this
        copy's forecasts move with every input value. Returns the new version.
        """
        import torch

        from stock_assets.modeling.artifacts import ModelBundle
        from stock_assets.modeling.registry import registered_model_name

        mlflow = self.mlflow
        name = registered_model_name(ticker)
        production = mlflow.production_version(name)
        bundle = ModelBundle.from_files(mlflow.load_model_artifacts(name, production.version))
        bundle.state_dict["skill_weight"] = torch.ones(())
        metrics = mlflow.run_metrics(production.run_id)
        with mlflow.start_run(mlflow.child_experiment, f"{ticker}-responsive") as run:
            import mlflow as mlflow_api

            mlflow_api.log_metrics(
                {k: v for k, v in metrics.items() if k.startswith(("test_", "naive_"))}
            )
            mlflow.log_model_artifacts(run.info.run_id, bundle.to_files())
            run_id = run.info.run_id
        version = mlflow.register(name, run_id).version
        mlflow.promote(name, version)
        return version

    def forecast(self, ticker: str, day: str | date) -> pl.DataFrame:
        return self.lake.read(DAILY_FORECAST, ticker, str(day))

    def performance(self, ticker: str, day: str | date) -> pl.DataFrame:
        return self.lake.read(FORECAST_PERFORMANCE, ticker, str(day))


@contextmanager
def environment(set_vars: dict[str, str], unset: Sequence[str] = ()) -> Iterator[None]:
    """Set and unset environment variables for the block, then restore them exactly."""
    names = set(set_vars) | set(unset)
    saved = {name: os.environ.get(name) for name in names}
    try:
        for name in unset:
            os.environ.pop(name, None)
        os.environ.update(set_vars)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# What a harness home unsets: a developer's own servers must never leak into a throw-away home.
FOREIGN_ENV_VARS = ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE", "STOCK_ASSETS_ENV")


@contextmanager
def loop_home(
    root: Path,
    synthetic_start: str = "2019-01-02",
    shocks: Sequence[ShockConfig] = (),
    instance_yaml: Path | None = None,
    reopen: bool = False,
    **env: str,
) -> Iterator[LoopHome]:
    """A fresh home under `root` with STOCK_ASSETS_HOME/DAGSTER_HOME pointing at it.

    With `reopen` the home already under `root` (built earlier, or a copy of one) is used again.

    With `instance_yaml` the instance is a plain one configured by that dagster.yaml (copied into
    DAGSTER_HOME), so a dagster-daemon started on the same DAGSTER_HOME shares its storage;
    otherwise it is `instance_for_test`'s.
    """
    import shutil

    from stock_assets.forecasting.model_choice import clear_model_cache

    home = root / "home"
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=reopen)
    own = {
        "STOCK_ASSETS_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "STOCK_ASSETS_PRICE_SOURCE": "synthetic",
    }
    with environment({**own, **env}, unset=FOREIGN_ENV_VARS):
        if instance_yaml is not None:
            shutil.copyfile(instance_yaml, dagster_home / "dagster.yaml")
            instance = dg.DagsterInstance.from_config(str(dagster_home))
            try:
                yield LoopHome(home, instance, synthetic_start, list(shocks))
            finally:
                instance.dispose()
        else:
            with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
                yield LoopHome(home, instance, synthetic_start, list(shocks))
    clear_model_cache()
