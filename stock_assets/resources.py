"""The resources every stage shares, built once from the environment.

`STOCK_ASSETS_ENV` (local | production) is the one switch; individual services are chosen by the
variables below, all optional locally. Nothing here is a secret: passwords reach the production
services through their own URLs in the environment, never through files.

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
| MLFLOW_TRACKING_URI | sqlite under the home | MLflow tracking + registry |
| OLLAMA_BASE_URL, OLLAMA_MODEL | unset: deterministic analyst | the agent reports' LLM |
| OLLAMA_EMBED_MODEL | unset: bundled MiniLM | embeddings of the report cache (needs the URL) |
| QDRANT_URL, QDRANT_API_KEY | unset: embedded under the home | the report cache's Qdrant |
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from stock_assets.agents.resources import report_resources_from_env
from stock_assets.features.feature_store import FeatureStoreResource
from stock_assets.ingestion.sources import PriceSourceResource
from stock_assets.lake import LakeResource, ParquetLakeIOManager, SequenceLakeIOManager
from stock_assets.modeling.registry import MlflowResource
from stock_assets.settings import (
    REPO_ROOT,
    Environment,
    default_csv_dir,
    get_environment,
    production_settings,
    project_home,
)


def price_source_from_env() -> PriceSourceResource:
    return PriceSourceResource(
        kind=os.environ.get("STOCK_ASSETS_PRICE_SOURCE", "yfinance"),
        csv_dir=os.environ.get("STOCK_ASSETS_CSV_DIR", str(default_csv_dir())),
        history_start=os.environ.get("STOCK_ASSETS_HISTORY_START", "2004-01-02"),
        synthetic_seed=int(os.environ.get("STOCK_ASSETS_SYNTHETIC_SEED", "7")),
        synthetic_end=os.environ.get("STOCK_ASSETS_SYNTHETIC_END") or None,
        synthetic_universe=int(os.environ["STOCK_ASSETS_SYNTHETIC_UNIVERSE"])
        if os.environ.get("STOCK_ASSETS_SYNTHETIC_UNIVERSE")
        else None,
    )


def mlflow_from_env(home: Path, production: bool) -> MlflowResource:
    """A SQLite store + file artifacts under the home locally; MLFLOW_TRACKING_URI in production."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return MlflowResource(tracking_uri=uri, artifact_root=os.environ.get("MLFLOW_ARTIFACT_ROOT"))
    folder = home / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    return MlflowResource(
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        artifact_root=(folder / "artifacts").as_uri(),
    )


def build_resources(home: Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Resources for one project home; tests pass a temporary home and override what they need."""
    home = Path(home) if home else project_home()
    lake_dir = str(home / "lake")
    production = get_environment() is Environment.PRODUCTION
    if production:
        production_settings()  # fail at load, naming every missing variable, not inside a run
    resources: dict[str, Any] = {
        "io_manager": ParquetLakeIOManager(base_dir=lake_dir),
        "sequence_io_manager": SequenceLakeIOManager(base_dir=lake_dir),
        "lake": LakeResource(base_dir=lake_dir),
        "price_source": price_source_from_env(),
        "feature_store": FeatureStoreResource(
            repo_path=str(REPO_ROOT / "feature_repo"),
            home=str(home),
            online_store=os.environ.get("FEAST_ONLINE_STORE", "redis" if production else "sqlite"),
        ),
    }
    resources["mlflow"] = mlflow_from_env(home, production)
    resources.update(report_resources_from_env(home, production))
    resources.update(overrides)
    return resources
