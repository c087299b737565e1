"""Which model a ticker's forecasts come from, loaded from the MLflow registry once per process.

A back-test forecasts hundreds of dates with one model version, and the daily job forecasts every
ticker in one process, so a registered version's files are downloaded and its network built once
per (tracking store, name, version): versions are immutable, so the cache never goes stale.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import dagster as dg

from stock_assets.modeling.artifacts import ModelBundle
from stock_assets.modeling.model_checks import (
    SOURCE_CHECKED,
    SOURCE_PRODUCTION,
    forecasting_version,
    no_passing_version_reason,
)
from stock_assets.modeling.registry import MlflowResource, registered_model_name

_BUNDLES: dict[tuple[str, str, str], ModelBundle] = {}
_NETWORKS: dict[tuple[str, str, str], object] = {}
_LOCK = threading.Lock()

__all__ = [
    "SOURCE_CHECKED", "SOURCE_PRODUCTION", "ForecastModel", "clear_model_cache", "load_bundle",
    "load_network", "resolve_forecast_model",
]  # fmt: skip


def load_bundle(mlflow: MlflowResource, name: str, version: str) -> ModelBundle:
    """A registered version's bundle, downloaded once per process."""
    key = (mlflow.tracking_uri, name, str(version))
    with _LOCK:
        if key not in _BUNDLES:
            _BUNDLES[key] = ModelBundle.from_files(mlflow.load_model_artifacts(name, str(version)))
        return _BUNDLES[key]


def load_network(mlflow: MlflowResource, name: str, version: str):
    """The version's network in eval mode, built once per process."""
    key = (mlflow.tracking_uri, name, str(version))
    bundle = load_bundle(mlflow, name, version)
    with _LOCK:
        if key not in _NETWORKS:
            _NETWORKS[key] = bundle.network()
        return _NETWORKS[key]


def clear_model_cache() -> None:
    """Forget loaded models (tests that rebuild a registry under the same URI)."""
    with _LOCK:
        _BUNDLES.clear()
        _NETWORKS.clear()


@dataclass(frozen=True)
class ForecastModel:
    """A registered child version chosen to forecast, and why it was chosen."""

    ticker: str
    name: str
    version: str
    run_id: str
    source: str
    mlflow: MlflowResource

    @cached_property
    def bundle(self) -> ModelBundle:
        return load_bundle(self.mlflow, self.name, self.version)

    @property
    def network(self):
        return load_network(self.mlflow, self.name, self.version)

    @property
    def spread(self):
        """The spread model of the version; a version trained before quantile forecasts (no
        spread model) cannot forecast: dg.Failure naming the fix."""
        try:
            return self.bundle.spread_model()
        except ValueError as error:
            raise dg.Failure(f"{self.label()}: {error}", allow_retries=False) from error

    @property
    def train_start(self) -> date:
        return date.fromisoformat(self.bundle.train_start)

    @property
    def train_end(self) -> date:
        return date.fromisoformat(self.bundle.train_end)

    def label(self) -> str:
        return f"{self.name} v{self.version} ({self.source})"


def resolve_forecast_model(mlflow: MlflowResource, ticker: str) -> ForecastModel:
    """The production version of the ticker's child model, or else the newest version whose
    blocking checks passed (tagged so when it was registered: modeling/model_checks.py).

    A fresh ticker whose first model passed its checks but not the promotion gate (e.g. its
    interval score) forecasts with it, and the forecast's metadata says so. A ticker with no such
    version gets no forecast: dg.Failure naming the failed checks, which the daily panel turns
    into a skip with that reason.
    """
    name = registered_model_name(ticker)
    version, source, versions = forecasting_version(mlflow, name)
    if version is None and not versions:
        raise dg.Failure(
            f"No registered model {name} for {ticker}: materialize child_model[{ticker}] first.",
            allow_retries=False,
        )
    if version is None:
        raise dg.Failure(no_passing_version_reason(name, versions), allow_retries=False)
    return ForecastModel(ticker, name, version.version, version.run_id, source, mlflow)
