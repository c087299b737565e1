"""deploy/helm/values.yaml is a values file for Dagster's official Helm chart (dagster/dagster
1.13.27, the chart released with our Dagster pin) and describes the same deployment as
deploy/dagster.yaml and docker-compose.yml.

No Helm or cluster is needed: the file is parsed and its keys are checked against key names copied
from the chart's helm/dagster/values.schema.json (a recent version in the Dagster repository; which
objects it closes with `additionalProperties: false`), and against our own deployment files. This
is a structural check, not `helm template` and not an install.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stock_assets.settings import PRODUCTION_ENV_VARS

REPO_ROOT = Path(__file__).resolve().parents[2]
VALUES = REPO_ROOT / "deploy" / "helm" / "values.yaml"
# Top-level keys of the chart's values.schema.json.
CHART_TOP_LEVEL_KEYS = {
    "dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
    "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress", "imagePullSecrets",
    "computeLogManager", "scheduler", "runLauncher", "pythonLogs", "dagsterDaemon", "busybox",
    "migrate", "telemetry", "serviceAccount", "global", "retention", "additionalInstanceConfig",
}
# Schema objects with `additionalProperties: false`: a misspelt key there fails `helm install`.
K8S_RUN_LAUNCHER_KEYS = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
    "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
    "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig",
}
DAEMON_KEYS = {
    "enabled", "image", "runCoordinator", "heartbeatTolerance", "env", "envConfigMaps", "envSecrets",
    "deploymentLabels", "labels", "nodeSelector", "affinity", "tolerations", "podSecurityContext",
    "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe", "annotations",
    "runMonitoring", "runRetries", "sensors", "schedules", "schedulerName", "volumeMounts", "volumes",
    "initContainerResources",
}
USER_DEPLOYMENT_KEYS = {
    "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns",
    "deploymentNamespace", "port", "env", "envConfigMaps", "envSecrets", "annotations", "nodeSelector",
    "affinity", "tolerations", "podSecurityContext", "securityContext", "resources", "livenessProbe",
    "readinessProbe", "startupProbe", "labels", "volumeMounts", "volumes", "schedulerName",
    "initContainers", "sidecarContainers",
}


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


@pytest.fixture(scope="module")
def instance_yaml() -> dict:
    return yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text())


def test_only_keys_the_chart_knows(values):
    assert set(values) <= CHART_TOP_LEVEL_KEYS
    assert set(values["runLauncher"]["config"]["k8sRunLauncher"]) <= K8S_RUN_LAUNCHER_KEYS
    assert set(values["dagsterDaemon"]) <= DAEMON_KEYS
    for deployment in values["dagster-user-deployments"]["deployments"]:
        assert set(deployment) <= USER_DEPLOYMENT_KEYS


def test_the_user_code_deployment_serves_our_code_location_from_our_image(values):
    user_code = values["dagster-user-deployments"]
    assert user_code["enabled"] and user_code["enableSubchart"]
    [deployment] = user_code["deployments"]
    # Helm replaces lists whole, so this entry carries everything the chart requires of one.
    assert {"name", "image", "port"} <= set(deployment)
    assert deployment["image"]["repository"] and deployment["image"]["tag"]
    assert deployment["image"]["pullPolicy"] in {"Always", "IfNotPresent", "Never"}
    assert isinstance(deployment["port"], int)
    # The same code location the compose user_code service loads.
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    command = compose["services"]["user_code"]["command"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", command[command.index("-m") + 1],
                                                "-a", command[command.index("-a") + 1]]
    # Run pods inherit this deployment's env, secrets and volumes.
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}


def test_runs_are_kubernetes_jobs(values):
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert launcher["config"]["k8sRunLauncher"]["loadInclusterConfig"] is True
    resources = launcher["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"]
    assert resources["requests"]["cpu"]


def test_postgres_is_external_and_its_password_only_in_a_secret(values):
    postgresql = values["postgresql"]
    assert postgresql["enabled"] is False
    assert postgresql["postgresqlHost"] and postgresql["postgresqlPassword"] == ""
    assert postgresql["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]
    env = values["dagster-user-deployments"]["deployments"][0]["env"]
    assert not [key for key in env if "PASSWORD" in key or "SECRET" in key or "API_KEY" in key]
    # stock_assets.settings reads the same server the chart writes into dagster.yaml.
    assert (env["DAGSTER_PG_HOST"], env["DAGSTER_PG_USER"], env["DAGSTER_PG_DB"]) == (
        postgresql["postgresqlHost"], postgresql["postgresqlUsername"], postgresql["postgresqlDatabase"])
    assert int(env["DAGSTER_PG_PORT"]) == postgresql["service"]["port"]


def test_the_code_location_gets_every_production_setting(values):
    env = values["dagster-user-deployments"]["deployments"][0]["env"]
    # DAGSTER_PG_PASSWORD comes from global.postgresqlSecretName, injected by the chart.
    assert set(PRODUCTION_ENV_VARS) - {"DAGSTER_PG_PASSWORD"} <= set(env)
    assert env["STOCK_ASSETS_ENV"] == "production"
    assert env["STOCK_ASSETS_EXECUTOR"] in {"multiprocess", "celery"}
    assert all(isinstance(value, str) for value in env.values()), "Kubernetes env values are strings"
    # The lake volume is mounted where STOCK_ASSETS_HOME points.
    deployment = values["dagster-user-deployments"]["deployments"][0]
    [mount] = deployment["volumeMounts"]
    assert mount["mountPath"] == env["STOCK_ASSETS_HOME"]
    assert mount["name"] in {volume["name"] for volume in deployment["volumes"]}


def test_the_run_queue_is_the_one_in_deploy_dagster_yaml(values, instance_yaml):
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    ours = instance_yaml["run_coordinator"]["config"]
    assert queued["maxConcurrentRuns"] == ours["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == ours["tag_concurrency_limits"]


def test_daemon_settings_mirror_deploy_dagster_yaml(values, instance_yaml):
    daemon = values["dagsterDaemon"]
    monitoring = instance_yaml["run_monitoring"]
    assert daemon["runMonitoring"] == {"enabled": monitoring["enabled"],
                                       "startTimeoutSeconds": monitoring["start_timeout_seconds"],
                                       "pollIntervalSeconds": monitoring["poll_interval_seconds"]}
    assert daemon["sensors"] == {"useThreads": instance_yaml["sensors"]["use_threads"],
                                 "numWorkers": instance_yaml["sensors"]["num_workers"]}
    ours = instance_yaml["retention"]
    retention = values["retention"]
    assert retention["enabled"]
    assert {k: v for k, v in retention["sensor"]["purgeAfterDays"].items() if k != "started"} == (
        ours["sensor"]["purge_after_days"])
    assert retention["schedule"]["purgeAfterDays"] == ours["schedule"]["purge_after_days"]
    assert values["telemetry"] == {"enabled": instance_yaml["telemetry"]["enabled"]}
