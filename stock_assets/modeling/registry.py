"""MLflow tracking and model registry as a Dagster resource.

Why a ConfigurableResource around MlflowClient and not dagster-mlflow: dagster-mlflow 0.29 offers
only its legacy `mlflow_tracking` resource and run-finished hook, which start one MLflow run per
Dagster run and emit deprecation warnings; we need one MLflow run per trained model (a run
materializes several tickers in a backfill), explicit registry calls and aliases, and no global
state shared between partitions. This resource is ~one page and uses only MLflow's public client.

Models are logged under `model/` as an MLflow pyfunc (modeling/pyfunc_model.py: `MLmodel` with a
signature and an input example, the bundle's state dict and JSON config in `model/bundle/`) and
registered from `runs:/<run_id>/model`; `mlflow.pytorch.log_model` costs ~8 s per call (it infers
requirements by tracing) and adds nothing we use. `load_model_artifacts` reads the bundle back
for forecasting, from `model/bundle/` or, in versions logged before the pyfunc, from `model/`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg
from pydantic import Field

MODEL_ARTIFACT_PATH = "model"
# The pyfunc's data folder inside `model/`: the bundle's files (modeling/pyfunc_model.py).
BUNDLE_FOLDER = "data/bundle"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    tags: dict[str, str]


def registered_model_name(ticker: str) -> str:
    """One registered model per ticker: `stock_assets.AAPL`, `stock_assets.GSPC` (the parent)."""
    return f"stock_assets.{ticker}"


class OptunaStorageResource(dg.ConfigurableResource):
    """Where the parent's Optuna study lives: an RDB URL (build_resources: SQLite under the home)."""

    url: str = Field(description="Optuna RDB storage, e.g. sqlite:///.stock_assets/optuna.db")


class MlflowResource(dg.ConfigurableResource):
    """Experiments, runs and the registry, on a local SQLite store or a tracking server."""

    tracking_uri: str = Field(description="sqlite:///.../mlflow.db locally, http://mlflow:5000 in production")
    artifact_root: str | None = Field(
        default=None, description="Where new experiments keep artifacts (file:///... locally)."
    )
    parent_experiment: str = "stock_assets-parent"
    child_experiment: str = "stock_assets-children"
    production_alias: str = "production"

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        client = self.client()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return client.create_experiment(name, artifact_location=self._artifact_location(name))
        except Exception:  # created meanwhile by a concurrent run
            return client.get_experiment_by_name(name).experiment_id

    def _artifact_location(self, name: str) -> str | None:
        return f"{self.artifact_root.rstrip('/')}/{name}" if self.artifact_root else None

    @contextmanager
    def start_run(self, experiment: str, run_name: str, tags: dict[str, str] | None = None) -> Iterator[Any]:
        """An MLflow run bound to this resource's tracking URI (fluent API, ended on exit)."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        with mlflow.start_run(
            experiment_id=self.experiment_id(experiment), run_name=run_name, tags=tags or {}
        ) as run:
            yield run

    def end_run(self, status: str = "FINISHED") -> None:
        """End the MLflow run still active in this process, if any (dagster-mlflow's
        end_mlflow_on_run_finished hook calls this after a training step)."""
        import mlflow

        if mlflow.active_run() is not None:
            mlflow.end_run(status=status)

    def log_model_artifacts(self, run_id: str, files: dict[str, bytes]) -> None:
        """Write `files` (relative path -> bytes) under the run's `model/` artifact folder."""
        client = self.client()
        with tempfile.TemporaryDirectory() as folder:
            for name, payload in files.items():
                target = Path(folder) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(payload)
            client.log_artifacts(run_id, folder, artifact_path=MODEL_ARTIFACT_PATH)

    def register(self, name: str, run_id: str, tags: dict[str, str] | None = None) -> RegisteredVersion:
        client = self.client()
        try:
            client.get_registered_model(name)
        except Exception:
            try:
                client.create_registered_model(name)
            except Exception:  # created meanwhile
                pass
        version = client.create_model_version(
            name, source=f"runs:/{run_id}/{MODEL_ARTIFACT_PATH}", run_id=run_id, tags=tags or {}
        )
        return RegisteredVersion(name, str(version.version), run_id, dict(version.tags or {}))

    def production_version(self, name: str) -> RegisteredVersion | None:
        client = self.client()
        try:
            version = client.get_model_version_by_alias(name, self.production_alias)
        except Exception:  # no such model or no alias yet
            return None
        return RegisteredVersion(name, str(version.version), version.run_id, dict(version.tags or {}))

    def version(self, name: str, version: str) -> RegisteredVersion | None:
        try:
            found = self.client().get_model_version(name, version)
        except Exception:
            return None
        return RegisteredVersion(name, str(found.version), found.run_id, dict(found.tags or {}))

    def versions(self, name: str) -> list[RegisteredVersion]:
        """Every registered version of `name`, newest first ([] if the store cannot answer)."""
        from mlflow.exceptions import MlflowException

        try:
            found = self.client().search_model_versions(f"name = '{name}'")
        except MlflowException:  # the tracking store cannot answer for this name
            return []
        return [
            RegisteredVersion(name, str(v.version), v.run_id, dict(v.tags or {}))
            for v in sorted(found, key=lambda v: int(v.version), reverse=True)
        ]

    def promote(self, name: str, version: str) -> None:
        self.client().set_registered_model_alias(name, self.production_alias, version)

    def tag_version(self, name: str, version: str, tags: dict[str, str]) -> None:
        client = self.client()
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client().get_run(run_id).data.metrics)

    def load_model_artifacts(self, name: str, version: str | None = None) -> dict[str, bytes]:
        """The bundle files of a registered version (default: the production alias): those of
        the pyfunc's `bundle/` folder, or the top-level files of a version logged before it."""
        import os

        import mlflow

        # A progress bar per download would flood run logs and the CLI; a user's choice stands.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        uri = f"models:/{name}/{version}" if version else f"models:/{name}@{self.production_alias}"
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        with tempfile.TemporaryDirectory() as folder:
            local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=folder))
            bundle = local / BUNDLE_FOLDER
            source = bundle if bundle.is_dir() else local
            return {p.name: p.read_bytes() for p in source.iterdir() if p.is_file()}

    def ui_base(self) -> str:
        """The MLflow UI for this store: the server itself, or `mlflow ui` on its default port."""
        base = self.tracking_uri if self.tracking_uri.startswith("http") else "http://127.0.0.1:5000"
        return base.rstrip("/")

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_base()}/#/experiments/{experiment_id}/runs/{run_id}"

    def model_version_url(self, name: str, version: str | int) -> str:
        return f"{self.ui_base()}/#/models/{quote(name, safe='')}/versions/{version}"
