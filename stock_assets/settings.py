"""Where the project keeps its state, and the one switch between local and production.

Everything a run writes (Dagster's instance, the Parquet lake, MLflow, Optuna, Feast, Qdrant) lives
under one folder, so a user can see it, back it up or delete it in one go. Values come from the
environment so that tests, the CLI and `dagster dev` agree without code changes.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


class Environment(str, Enum):
    """LOCAL: embedded stores under the project home. PRODUCTION: servers named by env vars."""

    LOCAL = "local"
    PRODUCTION = "production"


def get_environment() -> Environment:
    value = os.environ.get("STOCK_ASSETS_ENV", Environment.LOCAL.value).strip().lower()
    try:
        return Environment(value)
    except ValueError as exc:
        raise ValueError(
            f"STOCK_ASSETS_ENV={value!r} is not one of {[e.value for e in Environment]}"
        ) from exc


def project_home() -> Path:
    """The folder for all state: $STOCK_ASSETS_HOME, else `.stock_assets/` in the working dir."""
    configured = os.environ.get("STOCK_ASSETS_HOME")
    home = Path(configured) if configured else Path.cwd() / ".stock_assets"
    return home.expanduser().resolve()


def lake_dir() -> Path:
    return project_home() / "lake"


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or project_home() / "dagster_home").resolve()


def mlflow_dir() -> Path:
    return project_home() / "mlflow"


def feast_dir() -> Path:
    return project_home() / "feast"


def qdrant_dir() -> Path:
    return project_home() / "qdrant"


def optuna_storage_url() -> str:
    return os.environ.get("OPTUNA_STORAGE") or f"sqlite:///{project_home() / 'optuna.db'}"


def default_csv_dir() -> Path:
    """The shared price folder beside the repo (never copied into it)."""
    return (REPO_ROOT.parent / "shared" / "data" / "prices").resolve()


def watchlist_path() -> Path:
    configured = os.environ.get("STOCK_ASSETS_WATCHLIST")
    return Path(configured).resolve() if configured else REPO_ROOT / "watchlist.yaml"
