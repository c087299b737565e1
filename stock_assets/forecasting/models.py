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
from stock_assets.modeling.registry import (
    MlflowResource,
    RegisteredVersion,
    registered_model_name,
)

_BUNDLES: dict[tuple[str, str, str], ModelBundle] = {}
_NETWORKS: dict[tuple[str, str, str], object] = {}
_LOCK = threading.Lock()

SOURCE_PRODUCTION = "production"
SOURCE_LATEST = "latest registered (no version promoted yet)"


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


def _latest_version(mlflow: MlflowResource, name: str) -> RegisteredVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        versions = mlflow.client().search_model_versions(f"name = '{name}'")
    except MlflowException:  # the tracking store cannot answer for this name
        return None
    if not versions:
        return None
    newest = max(versions, key=lambda v: int(v.version))
    return RegisteredVersion(name, str(newest.version), newest.run_id, dict(newest.tags or {}))


def resolve_forecast_model(mlflow: MlflowResource, ticker: str) -> ForecastModel:
    """The production version of the ticker's child model.

    Until any version has passed the promotion gate (a fresh ticker whose first model did not beat
    naive persistence on its test windows), the latest registered version forecasts, and the
    forecast's metadata says so: a ticker with a trained model is never silently left without
    forecasts, and the forecast_mape check then judges that model on live data.
    """
    name = registered_model_name(ticker)
    version = mlflow.production_version(name)
    source = SOURCE_PRODUCTION
    if version is None:
        version = _latest_version(mlflow, name)
        source = SOURCE_LATEST
    if version is None:
        raise dg.Failure(
            f"No registered model {name} for {ticker}: materialize child_model[{ticker}] first.",
            allow_retries=False,
        )
    return ForecastModel(ticker, name, version.version, version.run_id, source, mlflow)
