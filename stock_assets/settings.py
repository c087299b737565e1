"""The project's one settings object: where state lives, which services, which thresholds.

Everything a run writes (instance, lake, MLflow, Optuna, Feast, Qdrant) lives under one folder a
user can see, back up or delete. Every setting is one field of `Settings` (pydantic-settings), named
by the variable that sets it and validated in one place: a bad value fails naming it, before a run.
The entry points read it, once: the CLI builds a `Settings` from its arguments and passes it down
(`build_resources(settings)`, the launcher's workers); Dagster's loader (dagster dev, the gRPC
server) gets `get_settings()`. Code below receives values. No Dagster here: serving imports it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import Field, ValidationError, field_validator

from stock_assets.monitoring_settings import MonitoringSettings, SettingsGroup, var

REPO_ROOT = Path(__file__).resolve().parents[1]


class Environment(str, Enum):
    """LOCAL: embedded stores under the project home. PRODUCTION: servers named by env vars."""

    LOCAL = "local"
    PRODUCTION = "production"


class SettingsError(ValueError):
    """A setting's value is invalid; the message names each variable and the value it had."""


class MissingSettingsError(RuntimeError):
    """Raised when required environment variables are unset or empty; names every one of them."""


class PathSettings(SettingsGroup):
    """Where state lives: one home folder, Dagster's instance folder, the watchlist, Optuna."""

    home: Path = Field(
        default_factory=lambda: Path.cwd() / ".stock_assets", validation_alias=var("HOME")
    )
    dagster_home: Path | None = Field(None, validation_alias="DAGSTER_HOME")
    watchlist: Path = Field(REPO_ROOT / "watchlist.yaml", validation_alias=var("WATCHLIST"))
    optuna_storage: str | None = Field(None, validation_alias="OPTUNA_STORAGE")

    @property
    def dagster_home_dir(self) -> Path:
        """$DAGSTER_HOME when the user chose one (production), else `<home>/dagster_home`."""
        return self.dagster_home or self.home / "dagster_home"

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @property
    def qdrant_dir(self) -> Path:
        return self.home / "qdrant"

    @property
    def optuna_storage_url(self) -> str:
        return self.optuna_storage or f"sqlite:///{self.home / 'optuna.db'}"


class PriceSourceSettings(SettingsGroup):
    """Where prices come from (the `price_source` resource's configuration)."""

    kind: Literal["yfinance", "csv", "synthetic"] = Field(
        "yfinance", validation_alias=var("PRICE_SOURCE")
    )
    # The shared price folder beside the repo (read in place, never copied into it).
    csv_dir: Path = Field(REPO_ROOT.parent / "shared/data/prices", validation_alias=var("CSV_DIR"))
    history_start: str = Field(
        "2004-01-02", pattern=r"^\d{4}-\d{2}-\d{2}$", validation_alias=var("HISTORY_START")
    )
    synthetic_seed: int = Field(7, validation_alias=var("SYNTHETIC_SEED"))
    synthetic_end: str | None = Field(
        None, pattern=r"^\d{4}-\d{2}-\d{2}$", validation_alias=var("SYNTHETIC_END")
    )
    synthetic_universe: int | None = Field(None, ge=1, validation_alias=var("SYNTHETIC_UNIVERSE"))


# Databases 1 and 2 of the Redis that already serves Feast's online store (database 0): the queue
# and the task results never mix with feature keys. `redis` is the compose service's host name.
PRODUCTION_CELERY = ("redis://redis:6379/1", "redis://redis:6379/2")
LOCAL_CELERY = ("redis://127.0.0.1:6379/1", "redis://127.0.0.1:6379/2")


class ExecutionSettings(SettingsGroup):
    """Where a run's steps execute, and how many at once (see stock_assets/execution.py)."""

    executor: Literal["multiprocess", "celery"] = Field(
        "multiprocess", validation_alias=var("EXECUTOR")
    )
    max_concurrent_steps: int = Field(2, ge=1, validation_alias=var("MAX_CONCURRENT_STEPS"))
    celery_broker: str | None = Field(None, validation_alias=var("CELERY_BROKER"))
    celery_backend: str | None = Field(None, validation_alias=var("CELERY_BACKEND"))

    @field_validator("executor", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class ServiceSettings(SettingsGroup):
    """The servers: optional locally (embedded stores), all required in production."""

    pg_host: str | None = Field(None, validation_alias="DAGSTER_PG_HOST")
    # A string until production needs it: a local run never reads the port, so never rejects it.
    pg_port: str | None = Field(None, validation_alias="DAGSTER_PG_PORT")
    pg_user: str | None = Field(None, validation_alias="DAGSTER_PG_USER")
    pg_password: str | None = Field(None, repr=False, validation_alias="DAGSTER_PG_PASSWORD")
    pg_db: str | None = Field(None, validation_alias="DAGSTER_PG_DB")
    mlflow_tracking_uri: str | None = Field(None, validation_alias="MLFLOW_TRACKING_URI")
    mlflow_artifact_root: str | None = Field(None, validation_alias="MLFLOW_ARTIFACT_ROOT")
    feast_online_store: Literal["sqlite", "redis"] | None = Field(
        None, validation_alias="FEAST_ONLINE_STORE"
    )
    feast_redis_url: str | None = Field(None, validation_alias="FEAST_REDIS_URL")


class AgentSettings(SettingsGroup):
    """The report stage's LLM and cache servers (unset: the deterministic analyst, embedded Qdrant)."""

    ollama_base_url: str | None = Field(None, validation_alias="OLLAMA_BASE_URL")
    ollama_model: str | None = Field(None, validation_alias="OLLAMA_MODEL")
    ollama_embed_model: str | None = Field(None, validation_alias="OLLAMA_EMBED_MODEL")
    qdrant_url: str | None = Field(None, validation_alias="QDRANT_URL")
    qdrant_api_key: str | None = Field(None, repr=False, validation_alias="QDRANT_API_KEY")


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

GROUPS: dict[str, type[SettingsGroup]] = {
    "paths": PathSettings,
    "prices": PriceSourceSettings,
    "execution": ExecutionSettings,
    "monitoring": MonitoringSettings,
    "services": ServiceSettings,
    "agents": AgentSettings,
}


class Settings(SettingsGroup):
    """Every setting of the project, in groups; `Settings()` reads the environment, keyword
    arguments override it: `Settings(prices={"kind": "synthetic"})` is that group from those values
    and its defaults, the other groups from the environment (`replace` changes single fields)."""

    env: Environment = Field(Environment.LOCAL, validation_alias=var("ENV"))
    paths: PathSettings = Field(default_factory=PathSettings)
    prices: PriceSourceSettings = Field(default_factory=PriceSourceSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    services: ServiceSettings = Field(default_factory=ServiceSettings)
    agents: AgentSettings = Field(default_factory=AgentSettings)

    @field_validator("env", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def production(self) -> bool:
        return self.env is Environment.PRODUCTION

    def replace(self, **groups: Mapping[str, Any]) -> Settings:
        """A copy with some fields of some groups changed, validated: `replace(prices={...})`."""
        data = self.model_dump()
        for group, values in groups.items():
            data[group] = {**data[group], **values}
        try:
            return Settings.model_validate(data)
        except ValidationError as exc:
            raise _explain(exc) from None

    def with_home(self, home: str | Path) -> Settings:
        """These settings with another project home (tests: a temporary folder)."""
        return self.replace(paths={"home": Path(home)})

    def celery_urls(self) -> tuple[str, str]:
        """(broker, result backend): the configured ones, else the production or local Redis."""
        broker, backend = PRODUCTION_CELERY if self.production else LOCAL_CELERY
        return self.execution.celery_broker or broker, self.execution.celery_backend or backend

    def production_services(self) -> ProductionSettings:
        """The production servers; fails naming every missing variable and a port that is not one."""
        values = self.variables()
        missing = [name for name in PRODUCTION_ENV_VARS if not values.get(name)]
        if missing:
            raise MissingSettingsError(
                f"STOCK_ASSETS_ENV=production needs these environment variables, which are not "
                f"set: {', '.join(missing)}. See docs/PRODUCTION.md (.env.example lists them)."
            )
        try:
            port = int(values["DAGSTER_PG_PORT"])
        except ValueError as exc:
            raise MissingSettingsError(
                f"DAGSTER_PG_PORT={values['DAGSTER_PG_PORT']!r} is not a port number."
            ) from exc
        values = {**self.services.model_dump(), **self.agents.model_dump(), "pg_port": port}
        return ProductionSettings(**{f.name: values[f.name] for f in fields(ProductionSettings)})

    def variables(self) -> dict[str, str]:
        """Every set value as `VARIABLE: text`, the way the environment would spell it."""
        values = {var("ENV"): self.env.value}
        for group, cls in GROUPS.items():
            dumped = getattr(self, group).model_dump(mode="json")
            fields = cls.model_fields
            values.update(
                {fields[k].validation_alias: str(v) for k, v in dumped.items() if v is not None}
            )
        return values

    def child_environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` plus these settings as variables, for a child process that loads the code
        location by itself (`dagster dev` and the run and step processes it spawns): Dagster's
        loader takes no arguments, so the environment is the one way in. Only the child's copy is
        written; the caller's own `os.environ` stays as it was."""
        return {**base, **self.variables(), "DAGSTER_HOME": str(self.paths.dagster_home_dir)}


@dataclass(frozen=True)
class ProductionSettings:
    """Where the production services are: every one present, the port a number."""

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


# --- reading: once per process --------------------------------------------------------------------


# Variable -> its field, for every variable a field reads (STOCK_ASSETS_* and the services' own).
FIELDS = {
    f.validation_alias: f
    for model in (Settings, *GROUPS.values())
    for f in model.model_fields.values()
    if f.validation_alias
}
VARIABLES = tuple(FIELDS)


def _choices(name: str) -> list[str]:
    """The values a Literal or Enum field accepts, by its variable."""
    annotation = FIELDS[name].annotation if name in FIELDS else None
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [e.value for e in annotation]
    args = [a for a in get_args(annotation) if a is not type(None)]
    return [str(a) for a in (get_args(args[0]) if args and get_origin(args[0]) is Literal else args)]


def _variable(loc: tuple) -> str:
    """The variable behind an error's location: an alias, or (group, field name)."""
    if len(loc) >= 2 and loc[0] in GROUPS and loc[1] in GROUPS[loc[0]].model_fields:
        return GROUPS[loc[0]].model_fields[loc[1]].validation_alias
    return str(loc[-1]) if loc else "settings"


def _explain(error: ValidationError) -> SettingsError:
    """One line per bad value: `VARIABLE='value' is not a number` (or what it must be)."""
    lines = []
    for item in error.errors():
        name, kind, ctx = _variable(item["loc"]), item["type"], item.get("ctx", {})
        if kind == "float_parsing":
            reason = "is not a number"
        elif kind in ("int_parsing", "int_from_float"):
            reason = "is not an integer"
        elif kind in ("greater_than_equal", "greater_than"):
            reason = f"must be {'>=' if 'ge' in ctx else '>'} {ctx.get('ge', ctx.get('gt'))}"
        elif kind in ("literal_error", "enum"):
            reason = f"is not allowed: choose one of {', '.join(_choices(name))}"
        else:
            reason = f"is invalid: {item['msg']}"
        lines.append(f"{name}={item.get('input')!r} {reason}")
    return SettingsError("; ".join(lines))


# Read by an earlier version, not by this one: set, they fail here instead of being ignored.
RETIRED_VARIABLES = {"STOCK_ASSETS_FORECAST_START": "the first date partition is the constant "
                     "stock_assets.partitions.FORECAST_START_DATE, which every process must share"}


def load_settings(**overrides: Any) -> Settings:
    """A fresh `Settings` from the environment and `overrides`; a bad value names its variable."""
    retired = [f"{name} is no longer read ({why}): unset it"
               for name, why in RETIRED_VARIABLES.items() if os.environ.get(name, "").strip()]
    if retired:
        raise SettingsError("; ".join(retired))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _explain(exc) from None


@lru_cache(maxsize=4)
def _from_environment(_key: tuple) -> Settings:
    return load_settings()


_ACTIVE: Settings | None = None


def get_settings() -> Settings:
    """The process's settings: the ones an entry point installed (`use_settings`), else the
    environment's, parsed once. The cache is keyed by the variables' values (and the working
    folder, the default home), so a process reads them once and a test that sets one sees it."""
    if _ACTIVE is not None:
        return _ACTIVE
    key = tuple((name, os.environ.get(name)) for name in VARIABLES if name in os.environ)
    return _from_environment((os.getcwd(), key))


def use_settings(settings: Settings | None) -> None:
    """Install the entry point's settings for this process (None: back to the environment's).

    The CLI and the launcher's workers call it with the settings they were given, so code below
    them that asks `get_settings()` (a check's thresholds, the daily cycle's price source) gets
    the same values as the resources, without anything written to `os.environ`.
    """
    global _ACTIVE
    _ACTIVE = settings


@contextmanager
def settings_override(settings: Settings) -> Iterator[Settings]:
    """Tests: `settings` for the duration of a block, then whatever was there before."""
    previous = _ACTIVE
    use_settings(settings)
    try:
        yield settings
    finally:
        use_settings(previous)


# --- shorthands for code outside a run (serving, sensors, benchmarks) ---------------------------


def project_home() -> Path:
    """The folder for all state: $STOCK_ASSETS_HOME, else `.stock_assets/` in the working dir."""
    return get_settings().paths.home


def lake_dir() -> Path:
    return get_settings().paths.lake_dir


def watchlist_path() -> Path:
    return get_settings().paths.watchlist


def production_settings() -> ProductionSettings:
    """The production services of the process's settings; fails fast naming what is missing."""
    return get_settings().production_services()
