"""The production profile: one switch, every service from the environment, and a clear failure
naming each missing variable; the step limit of the default executor."""

from __future__ import annotations

import dagster as dg
import pytest

from stock_assets.execution import (
    DAILY_RUN_TAGS,
    MAX_CONCURRENT_STEPS_ENV,
    RUN_KIND_TAG,
    TRAINING_RUN_TAGS,
    default_executor,
    max_concurrent_steps,
)
from stock_assets.settings import (
    PRODUCTION_ENV_VARS,
    MissingSettingsError,
    production_settings,
)

PRODUCTION_ENV = {
    "DAGSTER_PG_HOST": "postgres",
    "DAGSTER_PG_PORT": "5433",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "p@ss/word",
    "DAGSTER_PG_DB": "dagster",
    "MLFLOW_TRACKING_URI": "http://mlflow:5000",
    "QDRANT_URL": "http://qdrant:6333",
    "FEAST_REDIS_URL": "redis:6379",
    "OLLAMA_BASE_URL": "http://ollama:11434",
    "OLLAMA_MODEL": "llama3.2:3b",
}


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("STOCK_ASSETS_ENV", "production")
    for name, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FEAST_ONLINE_STORE", raising=False)
    return dict(PRODUCTION_ENV)


def test_the_production_variables_are_exactly_the_documented_ones():
    assert set(PRODUCTION_ENV_VARS) == set(PRODUCTION_ENV)


def test_production_settings_come_from_the_environment(production_env):
    settings = production_settings()
    assert settings.pg_port == 5433
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert settings.feast_redis_url == "redis:6379"
    assert settings.ollama_model == "llama3.2:3b"
    # The password is URL-quoted in the SQLAlchemy URL and never shown in a repr or log line.
    assert settings.postgres_url == "postgresql+psycopg2://dagster:p%40ss%2Fword@postgres:5433/dagster"
    assert "p@ss/word" not in repr(settings)


def test_every_missing_or_blank_variable_is_named_at_once(production_env, monkeypatch):
    monkeypatch.delenv("QDRANT_URL")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "  ")
    with pytest.raises(MissingSettingsError) as raised:
        production_settings()
    message = str(raised.value)
    assert "DAGSTER_PG_PASSWORD, QDRANT_URL" in message
    assert "MLFLOW_TRACKING_URI" not in message


def test_a_port_that_is_not_a_number_is_rejected(production_env, monkeypatch):
    monkeypatch.setenv("DAGSTER_PG_PORT", "five")
    with pytest.raises(MissingSettingsError, match="DAGSTER_PG_PORT='five'"):
        production_settings()


def test_building_production_resources_fails_fast_without_the_services(monkeypatch, tmp_path):
    from stock_assets.resources import build_resources

    monkeypatch.setenv("STOCK_ASSETS_ENV", "production")
    for name in PRODUCTION_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingSettingsError, match="DAGSTER_PG_HOST, DAGSTER_PG_PORT"):
        build_resources(tmp_path)


def test_production_resources_use_the_redis_online_store(production_env, tmp_path):
    from stock_assets.resources import build_resources

    assert build_resources(tmp_path)["feature_store"].online_store == "redis"


def test_local_resources_need_no_service(monkeypatch, tmp_path):
    from stock_assets.resources import build_resources

    monkeypatch.delenv("STOCK_ASSETS_ENV", raising=False)
    monkeypatch.delenv("FEAST_ONLINE_STORE", raising=False)
    for name in PRODUCTION_ENV:
        monkeypatch.delenv(name, raising=False)
    assert build_resources(tmp_path)["feature_store"].online_store == "sqlite"


@pytest.mark.parametrize(("raw", "expected"), [(None, 2), ("", 2), ("1", 1), (" 6 ", 6)])
def test_max_concurrent_steps_from_the_environment(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv(MAX_CONCURRENT_STEPS_ENV, raising=False)
    else:
        monkeypatch.setenv(MAX_CONCURRENT_STEPS_ENV, raw)
    assert max_concurrent_steps() == expected


@pytest.mark.parametrize("raw", ["0", "-2", "many"])
def test_an_invalid_step_limit_is_rejected(monkeypatch, raw):
    monkeypatch.setenv(MAX_CONCURRENT_STEPS_ENV, raw)
    with pytest.raises(ValueError, match=MAX_CONCURRENT_STEPS_ENV):
        max_concurrent_steps()


def test_the_default_executor_is_multiprocess_with_the_step_limit(monkeypatch):
    monkeypatch.setenv(MAX_CONCURRENT_STEPS_ENV, "3")
    executor = default_executor()
    assert executor.name == "stock_assets_multiprocess"
    assert executor.config_schema.as_field().default_value == {"max_concurrent": 3}

    @dg.asset
    def one() -> int:
        return 1

    @dg.asset
    def two(one: int) -> int:
        return one + 1

    job = dg.Definitions(assets=[one, two], executor=executor).resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == "stock_assets_multiprocess"


def test_run_kind_tags_are_the_ones_the_queue_limits():
    assert TRAINING_RUN_TAGS == {RUN_KIND_TAG: "training"}
    assert DAILY_RUN_TAGS == {RUN_KIND_TAG: "daily"}
