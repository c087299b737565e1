"""The one settings object: every variable parsed in one place, a bad value named, read once per
process, handed to child processes explicitly, and nothing read when a module is imported."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from stock_assets.settings import (
    VARIABLES,
    Environment,
    Settings,
    SettingsError,
    get_settings,
    load_settings,
    settings_override,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No project variable set; the working folder is a temporary one (the default home's)."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_without_any_variable(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.env is Environment.LOCAL and not settings.production
    assert settings.paths.home == clean_env.resolve() / ".stock_assets"
    assert settings.paths.dagster_home_dir == settings.paths.home / "dagster_home"
    assert settings.paths.optuna_storage_url == f"sqlite:///{settings.paths.home / 'optuna.db'}"
    assert (settings.prices.kind, settings.prices.history_start) == ("yfinance", "2004-01-02")
    assert settings.execution.max_concurrent_steps == 2
    assert settings.monitoring.mape_threshold == 0.05
    assert settings.monitoring.retrain_epochs is None
    assert settings.celery_urls() == ("redis://127.0.0.1:6379/1", "redis://127.0.0.1:6379/2")


def test_every_existing_variable_name_sets_its_field(clean_env: Path, monkeypatch) -> None:
    values = {
        "STOCK_ASSETS_ENV": " Production ",
        "STOCK_ASSETS_HOME": str(clean_env / "h"),
        "DAGSTER_HOME": str(clean_env / "dh"),
        "STOCK_ASSETS_WATCHLIST": str(clean_env / "w.yaml"),
        "OPTUNA_STORAGE": "sqlite:///x.db",
        "STOCK_ASSETS_PRICE_SOURCE": "csv",
        "STOCK_ASSETS_CSV_DIR": str(clean_env / "prices"),
        "STOCK_ASSETS_SYNTHETIC_UNIVERSE": "40",
        "STOCK_ASSETS_EXECUTOR": "CELERY",
        "STOCK_ASSETS_MAX_CONCURRENT_STEPS": " 6 ",
        "STOCK_ASSETS_CELERY_BROKER": "redis://q:6379/5",
        "STOCK_ASSETS_MAPE_MIN_MATURED": "9",
        "STOCK_ASSETS_RETRAIN_NAIVE_TOLERANCE": "1.2",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "FEAST_ONLINE_STORE": "redis",
        "QDRANT_URL": "http://qdrant:6333",
        "QDRANT_API_KEY": "k3y",
        "OLLAMA_EMBED_MODEL": "nomic-embed-text",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert s.env is Environment.PRODUCTION
    assert (s.paths.home, s.paths.dagster_home_dir) == (clean_env / "h", clean_env / "dh")
    assert (s.paths.watchlist, s.paths.optuna_storage_url) == (clean_env / "w.yaml", "sqlite:///x.db")
    assert (s.prices.kind, s.prices.csv_dir, s.prices.synthetic_universe) == (
        "csv", clean_env / "prices", 40
    )
    assert (s.execution.executor, s.execution.max_concurrent_steps) == ("celery", 6)
    assert s.celery_urls() == ("redis://q:6379/5", "redis://redis:6379/2")  # production default
    assert (s.monitoring.min_matured, s.monitoring.retrain_naive_tolerance) == (9, 1.2)
    assert (s.services.mlflow_tracking_uri, s.services.feast_online_store) == (
        "http://mlflow:5000", "redis"
    )
    assert (s.agents.qdrant_url, s.agents.ollama_embed_model) == (
        "http://qdrant:6333", "nomic-embed-text"
    )
    assert "k3y" not in repr(s)  # secrets never in a repr or a log line


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STOCK_ASSETS_ROLLING_WINDOW", "twenty", "STOCK_ASSETS_ROLLING_WINDOW='twenty' is not an integer"),
        ("STOCK_ASSETS_MAPE_THRESHOLD", "5%", "STOCK_ASSETS_MAPE_THRESHOLD='5%' is not a number"),
        ("STOCK_ASSETS_DRIFT_WINDOW", "3", "STOCK_ASSETS_DRIFT_WINDOW='3' must be >= 5"),
        ("STOCK_ASSETS_MAX_CONCURRENT_STEPS", "0", "STOCK_ASSETS_MAX_CONCURRENT_STEPS='0' must be >= 1"),
        ("STOCK_ASSETS_PRICE_SOURCE", "yahoo", "choose one of yfinance, csv, synthetic"),
        ("STOCK_ASSETS_ENV", "prod", "STOCK_ASSETS_ENV='prod' is not allowed: choose one of local, production"),
        ("STOCK_ASSETS_EXECUTOR", "k8s", "STOCK_ASSETS_EXECUTOR='k8s' is not allowed"),
        ("FEAST_ONLINE_STORE", "dynamo", "FEAST_ONLINE_STORE='dynamo' is not allowed"),
        ("STOCK_ASSETS_SYNTHETIC_END", "2024/06/28", "STOCK_ASSETS_SYNTHETIC_END='2024/06/28' is invalid"),
    ],
)  # fmt: skip
def test_a_bad_value_names_its_variable(clean_env, monkeypatch, name, value, message) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        get_settings()
    assert message in str(raised.value)
    assert "; " not in str(raised.value)  # only the bad one is reported


def test_a_blank_variable_means_the_default(clean_env, monkeypatch) -> None:
    monkeypatch.setenv("STOCK_ASSETS_MAX_CONCURRENT_STEPS", "  ")
    monkeypatch.setenv("STOCK_ASSETS_RETRAIN_EPOCHS", "")
    settings = load_settings()
    assert settings.execution.max_concurrent_steps == 2
    assert settings.monitoring.retrain_epochs is None


def test_read_once_per_environment_and_overridable(clean_env, monkeypatch) -> None:
    first = get_settings()
    assert get_settings() is first  # parsed once, then served from the cache
    monkeypatch.setenv("STOCK_ASSETS_MAPE_THRESHOLD", "0.2")
    changed = get_settings()
    assert changed is not first and changed.monitoring.mape_threshold == 0.2
    chosen = changed.replace(monitoring={"mape_threshold": 0.01})
    with settings_override(chosen):
        assert get_settings() is chosen
        os.environ["STOCK_ASSETS_MAPE_THRESHOLD"] = "0.3"  # the installed settings win
        assert get_settings().monitoring.mape_threshold == 0.01
    assert get_settings().monitoring.mape_threshold == 0.3


def test_replace_validates_and_leaves_the_original(clean_env) -> None:
    base = load_settings()
    with pytest.raises(SettingsError, match="STOCK_ASSETS_PRICE_SOURCE='nasdaq'"):
        base.replace(prices={"kind": "nasdaq"})
    moved = base.with_home(clean_env / "other")
    assert moved.paths.lake_dir == clean_env / "other" / "lake"
    assert base.paths.home == clean_env / ".stock_assets"


def test_workers_and_child_processes_get_the_same_settings(clean_env, monkeypatch) -> None:
    settings = load_settings().replace(
        paths={"home": clean_env / "h"},
        prices={"kind": "synthetic", "synthetic_universe": 30, "synthetic_end": "2024-06-28"},
        monitoring={"retrain_epochs": 3},
        agents={"qdrant_api_key": "k3y"},
    )
    assert pickle.loads(pickle.dumps(settings)) == settings  # the launcher's workers
    child = settings.child_environment({"PATH": "/bin"})  # dagster dev's environment
    assert child["PATH"] == "/bin" and child["DAGSTER_HOME"] == str(clean_env / "h" / "dagster_home")
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in child.items():
        monkeypatch.setenv(name, value)
    reparsed = load_settings()
    assert reparsed.model_dump(exclude={"paths"}) == settings.model_dump(exclude={"paths"})
    assert reparsed.paths.home == settings.paths.home


def test_resources_come_from_the_settings_not_the_environment(clean_env, monkeypatch) -> None:
    from stock_assets.resources import build_resources

    monkeypatch.setenv("STOCK_ASSETS_PRICE_SOURCE", "yfinance")
    monkeypatch.setenv("QDRANT_URL", "http://from-the-environment:6333")
    settings = Settings(  # keyword groups override the environment
        paths={"home": clean_env / "h", "optuna_storage": "sqlite:///tuning.db"},
        prices={"kind": "synthetic", "synthetic_seed": 11},
        services={"feast_online_store": "redis", "feast_redis_url": "redis:6390"},
        agents={"qdrant_url": None},
    )
    resources = build_resources(settings)
    assert (resources["price_source"].kind, resources["price_source"].synthetic_seed) == (
        "synthetic", 11
    )
    assert resources["lake"].base_dir == str(clean_env / "h" / "lake")
    assert resources["optuna_storage"].url == "sqlite:///tuning.db"
    assert resources["report_cache"].qdrant_path == str(clean_env / "h" / "qdrant")
    assert resources["report_cache"].qdrant_url is None
    store = resources["feature_store"]
    assert (store.online_store, store.redis_url) == ("redis", "redis:6390")
    assert resources["mlflow"].tracking_uri == f"sqlite:///{clean_env / 'h' / 'mlflow' / 'mlflow.db'}"


def test_nothing_is_read_when_the_code_location_is_imported(tmp_path: Path) -> None:
    """Importing the modules reads no variable: a bad value fails only when `defs` is built; the
    partition start is the code's constant."""
    code = (
        "import stock_assets.definitions as d, stock_assets.partitions as p\n"
        "print(p.FORECAST_START_DATE, p.trading_date_partitions.start.date())\n"
        "try:\n    d.defs\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if k not in VARIABLES},
        "STOCK_ASSETS_HOME": str(tmp_path / "home"),
        "STOCK_ASSETS_MAX_CONCURRENT_STEPS": "none",
    }
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines[0] == "2023-01-02 2023-01-02"
    assert lines[1] == "SettingsError STOCK_ASSETS_MAX_CONCURRENT_STEPS='none' is not an integer"
    assert "BetaWarning" not in run.stderr and "PreviewWarning" not in run.stderr


def test_a_retired_variable_fails_naming_itself_instead_of_being_ignored(clean_env, monkeypatch):
    monkeypatch.setenv("STOCK_ASSETS_FORECAST_START", "2020-01-02")
    with pytest.raises(SettingsError, match="STOCK_ASSETS_FORECAST_START is no longer read"):
        load_settings()
    monkeypatch.setenv("STOCK_ASSETS_FORECAST_START", " ")  # blank, as everywhere: unset
    assert load_settings().paths.home == clean_env.resolve() / ".stock_assets"


def test_the_redis_online_store_gets_its_url_from_the_settings(clean_env, monkeypatch) -> None:
    from stock_assets.features.feature_store import FeatureStoreResource
    from stock_assets.settings import REPO_ROOT

    monkeypatch.setenv("FEAST_REDIS_URL", "from-the-environment:6379")  # not read by the store
    common = {"repo_path": str(REPO_ROOT / "feature_repo"), "home": str(clean_env / "h")}
    store = FeatureStoreResource(**common, online_store="redis", redis_url="redis.test:6391").store()
    assert store.config.online_store.connection_string == "redis.test:6391"
    with pytest.raises(KeyError, match="FEAST_REDIS_URL"):
        FeatureStoreResource(**common, online_store="redis").store()
