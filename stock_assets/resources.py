"""The resources every stage shares, built in one place from the one settings object.

`STOCK_ASSETS_ENV` (local | production) is the one switch; individual services are chosen by the
settings below, all optional locally (stock_assets/settings.py parses them; docs/PRODUCTION.md
lists the production ones). Secrets reach the services through the environment, never files.

| variable | default | meaning |
|---|---|---|
| STOCK_ASSETS_HOME | ./.stock_assets | all local state |
| STOCK_ASSETS_PRICE_SOURCE | yfinance | yfinance, csv or synthetic |
| STOCK_ASSETS_CSV_DIR | ../shared/data/prices | folder of <TICKER>.csv |
| STOCK_ASSETS_HISTORY_START | 2004-01-02 | first date fetched for a new ticker |
| STOCK_ASSETS_SYNTHETIC_SEED | 7 | seed of the synthetic market |
| STOCK_ASSETS_SYNTHETIC_END | last session | last date of the synthetic market |
| STOCK_ASSETS_SYNTHETIC_UNIVERSE | 12 named | size of the generated synthetic universe |
| FEAST_ONLINE_STORE | sqlite (redis in production) | Feast online store |
| FEAST_REDIS_URL | unset | Redis of the redis online store, e.g. redis:6379 |
| MLFLOW_TRACKING_URI, MLFLOW_ARTIFACT_ROOT | sqlite + files under the home | MLflow tracking + registry |
| OPTUNA_STORAGE | sqlite under the home | the parent's Optuna study |
| OLLAMA_BASE_URL, OLLAMA_MODEL | unset: deterministic analyst | the agent reports' LLM |
| OLLAMA_EMBED_MODEL | unset: bundled MiniLM | embeddings of the report cache (needs the URL) |
| QDRANT_URL, QDRANT_API_KEY | unset: embedded under the home | the report cache's Qdrant |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stock_assets.agents.resources import report_resources
from stock_assets.features.feature_store import FeatureStoreResource
from stock_assets.ingestion.sources import PriceSourceResource
from stock_assets.lake import LakeResource, ParquetLakeIOManager, SequenceLakeIOManager
from stock_assets.modeling.registry import MlflowResource, OptunaStorageResource
from stock_assets.settings import REPO_ROOT, Settings, get_settings


def price_source(settings: Settings) -> PriceSourceResource:
    prices = settings.prices
    return PriceSourceResource(
        kind=prices.kind,
        csv_dir=str(prices.csv_dir),
        history_start=prices.history_start,
        synthetic_seed=prices.synthetic_seed,
        synthetic_end=prices.synthetic_end,
        synthetic_universe=prices.synthetic_universe,
    )


def price_source_from_env() -> PriceSourceResource:
    """The process's price source (`get_settings()`), for code outside a run (the CLI's plan)."""
    return price_source(get_settings())


def mlflow(settings: Settings) -> MlflowResource:
    """A SQLite store + file artifacts under the home locally; MLFLOW_TRACKING_URI when set."""
    services = settings.services
    if services.mlflow_tracking_uri:
        return MlflowResource(
            tracking_uri=services.mlflow_tracking_uri, artifact_root=services.mlflow_artifact_root
        )
    folder = settings.paths.mlflow_dir
    folder.mkdir(parents=True, exist_ok=True)
    return MlflowResource(
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        artifact_root=(folder / "artifacts").as_uri(),
    )


def feature_store(settings: Settings) -> FeatureStoreResource:
    services = settings.services
    online = services.feast_online_store or ("redis" if settings.production else "sqlite")
    return FeatureStoreResource(
        repo_path=str(REPO_ROOT / "feature_repo"),
        home=str(settings.paths.home),
        online_store=online,
        redis_url=services.feast_redis_url,
    )


def build_resources(settings: Settings | str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Every resource of the code location, from `settings` (default: the process's).

    A folder instead of settings means "the process's settings at that home" (tests pass a
    temporary home); keyword arguments replace single resources.
    """
    if settings is None:
        settings = get_settings()
    elif not isinstance(settings, Settings):
        settings = get_settings().with_home(settings)
    if settings.production:
        settings.production_services()  # fail at load, naming every missing variable
    lake_dir = str(settings.paths.lake_dir)
    resources: dict[str, Any] = {
        "io_manager": ParquetLakeIOManager(base_dir=lake_dir),
        "sequence_io_manager": SequenceLakeIOManager(base_dir=lake_dir),
        "lake": LakeResource(base_dir=lake_dir),
        "price_source": price_source(settings),
        "feature_store": feature_store(settings),
        "mlflow": mlflow(settings),
        "optuna_storage": OptunaStorageResource(url=settings.paths.optuna_storage_url),
        **report_resources(settings),
    }
    resources.update(overrides)
    return resources
