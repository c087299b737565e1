"""Where the project keeps its state, and the one switch between local and production.

Everything a run writes (Dagster's instance, the Parquet lake, MLflow, Optuna, Feast, Qdrant) lives
under one folder, so a user can see it, back it up or delete it in one go. Values come from the
environment so that tests, the CLI and `dagster dev` agree without code changes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
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


# --- Production: every server is named by an environment variable, none has a default -------------

# Variable -> what it points at. STOCK_ASSETS_ENV=production refuses to start without all of them,
# so a typo fails at code-location load with its name, not later inside a run.
PRODUCTION_ENV_VARS: dict[str, str] = {
    "DAGSTER_PG_HOST": "PostgreSQL host of the Dagster instance",
    "DAGSTER_PG_PORT": "PostgreSQL port",
    "DAGSTER_PG_USER": "PostgreSQL user",
    "DAGSTER_PG_PASSWORD": "PostgreSQL password (a secret: set it in the environment, never in a file)",
    "DAGSTER_PG_DB": "PostgreSQL database of the Dagster instance",
    "MLFLOW_TRACKING_URI": "MLflow tracking server, e.g. http://mlflow:5000",
    "QDRANT_URL": "Qdrant server, e.g. http://qdrant:6333",
    "FEAST_REDIS_URL": "Redis for Feast's online store, e.g. redis:6379",
    "OLLAMA_BASE_URL": "Ollama server, e.g. http://ollama:11434",
    "OLLAMA_MODEL": "Ollama model for the agent reports, e.g. llama3.2:3b",
}


class MissingSettingsError(RuntimeError):
    """Raised when required environment variables are unset or empty; names every one of them."""


def require_env(names: Sequence[str], purpose: str) -> dict[str, str]:
    """The values of `names`, or one error that lists every missing (unset or blank) variable."""
    missing = [name for name in names if not os.environ.get(name, "").strip()]
    if missing:
        raise MissingSettingsError(
            f"{purpose} needs these environment variables, which are not set: {', '.join(missing)}. "
            "See docs/PRODUCTION.md (.env.example lists them)."
        )
    return {name: os.environ[name].strip() for name in names}


@dataclass(frozen=True)
class ProductionSettings:
    """Where the production services are, read once from the environment."""

    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str = field(repr=False)
    pg_db: str
    mlflow_tracking_uri: str
    qdrant_url: str
    feast_redis_url: str
    ollama_base_url: str
    ollama_model: str
    qdrant_api_key: str | None = field(default=None, repr=False)

    @property
    def postgres_url(self) -> str:
        """SQLAlchemy URL of the Dagster database (psycopg2: SQLAlchemy 2.1 would pick psycopg 3)."""
        from urllib.parse import quote

        return (
            f"postgresql+psycopg2://{quote(self.pg_user, safe='')}:{quote(self.pg_password, safe='')}"
            f"@{self.pg_host}:{self.pg_port}/{self.pg_db}"
        )


def production_settings() -> ProductionSettings:
    """The production services from the environment; fails fast naming any missing variable."""
    values = require_env(tuple(PRODUCTION_ENV_VARS), "STOCK_ASSETS_ENV=production")
    try:
        port = int(values["DAGSTER_PG_PORT"])
    except ValueError as exc:
        raise MissingSettingsError(
            f"DAGSTER_PG_PORT={values['DAGSTER_PG_PORT']!r} is not a port number."
        ) from exc
    return ProductionSettings(
        pg_host=values["DAGSTER_PG_HOST"],
        pg_port=port,
        pg_user=values["DAGSTER_PG_USER"],
        pg_password=values["DAGSTER_PG_PASSWORD"],
        pg_db=values["DAGSTER_PG_DB"],
        mlflow_tracking_uri=values["MLFLOW_TRACKING_URI"],
        qdrant_url=values["QDRANT_URL"],
        feast_redis_url=values["FEAST_REDIS_URL"],
        ollama_base_url=values["OLLAMA_BASE_URL"],
        ollama_model=values["OLLAMA_MODEL"],
        qdrant_api_key=os.environ.get("QDRANT_API_KEY") or None,
    )
