"""Steps on Celery workers: the executor switch, and a real distributed run of it.

The end-to-end test is the production layout on loopback: a real Redis (the broker and result
backend), PostgreSQL holding the Dagster instance (deploy/dagster.yaml) and MLflow, and TWO
`dagster-celery worker start -A dagster_celery.app -y deploy/celery.yaml` workers, w1 and w2, as
the celery_worker service runs them. The code location is loaded with STOCK_ASSETS_EXECUTOR=celery,
and three retrain_job runs (one per ticker partition, how the retraining sensor or a backfill
launches them) are started at the same time with `dagster job execute -m stock_assets.definitions
-a defs`. A run's two steps (training_sequences, then child_model) depend on each other, so the
parallelism is between runs: their steps share one queue that both workers drain.

The proof comes from the event log: dagster-celery writes an engine event per step naming the
Celery worker that took it, and the step's own events carry the pid of the process that ran it,
which Celery's `inspect stats` says belongs to that worker's pool.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest
import yaml

from stock_assets.execution import (
    CELERY_BACKEND_ENV,
    CELERY_BROKER_ENV,
    EXECUTOR_ENV,
    LOCAL_CELERY_BROKER,
    PRODUCTION_CELERY_BACKEND,
    PRODUCTION_CELERY_BROKER,
    celery_executor,
    celery_urls,
    executor_kind,
    selected_executor,
)
from stock_assets_tests.production.conftest import (
    DEPLOY_DIR,
    REPO_ROOT,
    VENV_BIN,
    ManagedProcess,
    PostgresServer,
    RedisServer,
    free_port,
    production_env,
    wait_until,
)

TICKERS = ("AAPL", "MSFT", "JNJ")
WORKERS = ("w1", "w2")
STEPS = {"training_sequences", "child_model"}
CELERY_WORKER_KEY = "Celery worker"  # the engine event metadata dagster_celery.tasks writes


# --- the switch --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "kind"), [(None, "multiprocess"), ("", "multiprocess"),
                                           (" Celery ", "celery"), ("multiprocess", "multiprocess")])
def test_the_executor_setting_chooses_the_executor(monkeypatch, raw, kind):
    if raw is None:
        monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    else:
        monkeypatch.setenv(EXECUTOR_ENV, raw)
    assert executor_kind() == kind
    pytest.importorskip("dagster_celery", reason="pip install dagster-celery==0.29.27")
    expected = "stock_assets_celery" if kind == "celery" else "stock_assets_multiprocess"
    assert selected_executor().name == expected


def test_an_unknown_executor_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, "dask")
    with pytest.raises(ValueError, match="STOCK_ASSETS_EXECUTOR='dask'"):
        executor_kind()


def test_celery_urls_default_to_the_compose_redis_in_production_only(monkeypatch):
    monkeypatch.delenv(CELERY_BROKER_ENV, raising=False)
    monkeypatch.delenv(CELERY_BACKEND_ENV, raising=False)
    monkeypatch.setenv("STOCK_ASSETS_ENV", "production")
    assert celery_urls() == (PRODUCTION_CELERY_BROKER, PRODUCTION_CELERY_BACKEND)
    assert PRODUCTION_CELERY_BROKER == "redis://redis:6379/1"  # database 0 is Feast's
    monkeypatch.delenv("STOCK_ASSETS_ENV")
    assert celery_urls()[0] == LOCAL_CELERY_BROKER
    monkeypatch.setenv(CELERY_BROKER_ENV, "redis://queue.internal:6379/5")
    assert celery_urls()[0] == "redis://queue.internal:6379/5"


def test_the_celery_executor_takes_its_broker_from_the_environment_and_run_config(monkeypatch):
    pytest.importorskip("dagster_celery", reason="pip install dagster-celery==0.29.27")
    monkeypatch.setenv(CELERY_BROKER_ENV, "redis://queue.internal:6379/1")
    monkeypatch.setenv(CELERY_BACKEND_ENV, "redis://queue.internal:6379/2")
    executor = celery_executor()
    assert executor.config_schema.as_field().default_value == {
        "broker": "redis://queue.internal:6379/1", "backend": "redis://queue.internal:6379/2"}

    @dg.asset
    def one() -> int:
        return 1

    job = dg.Definitions(assets=[one], executor=executor).resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == "stock_assets_celery"
    # Steps in other processes need a job they can rebuild and outputs that outlive the step.
    requirements = {r.value for r in executor.get_requirements(executor.config_schema)}
    assert {"RECONSTRUCTABLE_PIPELINE", "PERSISTENT_OUTPUTS"} <= requirements


def test_the_worker_config_reads_both_urls_from_the_environment(monkeypatch):
    pytest.importorskip("dagster_celery", reason="pip install dagster-celery==0.29.27")
    from dagster_celery.cli import get_validated_config

    raw = yaml.safe_load((DEPLOY_DIR / "celery.yaml").read_text())
    assert raw["execution"]["config"] == {"broker": {"env": CELERY_BROKER_ENV},
                                          "backend": {"env": CELERY_BACKEND_ENV}}
    monkeypatch.setenv(CELERY_BROKER_ENV, "redis://redis:6379/1")
    monkeypatch.setenv(CELERY_BACKEND_ENV, "redis://redis:6379/2")
    config = get_validated_config(str(DEPLOY_DIR / "celery.yaml"))  # what `worker start -y` does
    assert (config["broker"], config["backend"]) == ("redis://redis:6379/1", "redis://redis:6379/2")


# --- two real workers --------------------------------------------------------------------------------


@dataclass
class CeleryCluster:
    workdir: Path
    dagster_home: Path
    env: dict[str, str]
    broker: str
    backend: str
    workers: dict[str, ManagedProcess]
    others: list[ManagedProcess] = field(default_factory=list)  # setup and run processes

    def app(self):
        from celery import Celery

        return Celery(broker=self.broker, backend=self.backend)

    def check_alive(self) -> None:
        for worker in self.workers.values():
            worker.check_alive()

    def node_names(self) -> set[str]:
        """Celery's node names of our workers: `-n w1` becomes `w1@<host>`, as with `%h`."""
        host = socket.gethostname()
        return {f"{name}@{host}" for name in self.workers}

    def pool_pids(self) -> dict[str, set[int]]:
        """Worker node name -> the pids of its pool processes, as Celery itself reports them."""
        stats = self.app().control.inspect(timeout=5).stats() or {}
        return {node: set(info["pool"]["processes"]) for node, info in stats.items()}

    def instance(self) -> dg.DagsterInstance:
        from stock_assets_tests.production.instances import instance_on

        return instance_on(self.dagster_home, self.env)

    def process(self, name: str, command: list[str]) -> ManagedProcess:
        return ManagedProcess(name=name, command=command, log_path=self.workdir / "logs" / f"{name}.log",
                              env=self.env, cwd=self.workdir)

    def start(self, name: str, command: list[str]) -> ManagedProcess:
        """A setup or run process, stopped at teardown if it is still running."""
        process = self.process(name, command).start()
        self.others.append(process)
        return process


@pytest.fixture
def celery_cluster(postgres_server: PostgresServer, redis_server: RedisServer,
                   tmp_path: Path) -> Iterator[CeleryCluster]:
    pytest.importorskip("dagster_celery", reason="pip install dagster-celery==0.29.27")
    workdir = tmp_path / "celery"
    dagster_home = workdir / "dagster_home"
    dagster_home.mkdir(parents=True)
    shutil.copyfile(DEPLOY_DIR / "dagster.yaml", dagster_home / "dagster.yaml")
    database, db_user, db_password = "dagster_celery", "stock_assets_celery", "celery-test-password"
    postgres_server.create_database(database, db_user, db_password)
    postgres_server.create_database(f"{database}_mlflow", db_user, db_password)
    # Databases 1 and 2 of the test session's Redis (0 is Feast's), emptied: no task of an earlier
    # session can reach these workers.
    broker = f"redis://127.0.0.1:{redis_server.port}/1"
    backend = f"redis://127.0.0.1:{redis_server.port}/2"
    import redis

    for db in (1, 2):
        redis.Redis(host="127.0.0.1", port=redis_server.port, db=db).flushdb()
    env = production_env(
        workdir=workdir, dagster_home=dagster_home, postgres=postgres_server, database=database,
        db_user=db_user, db_password=db_password, redis=redis_server, grpc_port=free_port(),
        extra={
            EXECUTOR_ENV: "celery",
            CELERY_BROKER_ENV: broker,
            CELERY_BACKEND_ENV: backend,
            # The workers and the run processes import this checkout's code, whatever the cwd.
            "PYTHONPATH": str(REPO_ROOT),
        },
    )
    cluster = CeleryCluster(workdir, dagster_home, env, broker, backend, workers={})
    for name in WORKERS:
        # The celery_worker service's command; one pool process each, so that one worker cannot
        # take every step while the other idles.
        cluster.workers[name] = cluster.process(f"celery_{name}", [
            str(VENV_BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
            "-y", str(DEPLOY_DIR / "celery.yaml"), "-n", name, "--", "--concurrency=1",
        ]).start()
    try:
        yield cluster
    finally:
        for process in [*cluster.others, *cluster.workers.values()]:
            process.stop()
    unclean = [f"{name}: exit {w.returncode}\n{w.tail(60)}" for name, w in cluster.workers.items()
               if w.graceful is False]
    assert not unclean, f"Celery workers that needed SIGKILL: {unclean}"


def _celery_steps(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict]:
    """Step key -> the Celery worker that took it and the pids its events came from."""
    steps: dict[str, dict] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        step = steps.setdefault(event.step_key, {"workers": [], "pids": set()})
        if event.event_type_value == "ENGINE_EVENT":
            metadata = event.engine_event_data.metadata or {}
            if CELERY_WORKER_KEY in metadata:
                step["workers"].append(metadata[CELERY_WORKER_KEY].value)
        if event.event_type_value in {"STEP_START", "STEP_OUTPUT", "STEP_SUCCESS",
                                      "ASSET_MATERIALIZATION"}:
            step["pids"].add(event.pid)
    return steps


@pytest.mark.slow
@pytest.mark.xdist_group("production_stack")
def test_concurrent_training_runs_execute_their_steps_on_both_celery_workers(celery_cluster) -> None:
    from stock_assets_tests.production.celery_setup import retrain_run_config

    cluster = celery_cluster
    began = time.monotonic()
    # Data, Feast features and a parent model for the tickers, in process, while the workers start.
    setup = cluster.start("setup", [sys.executable, "-m", "stock_assets_tests.production.celery_setup",
                                    *TICKERS])
    nodes = cluster.node_names()
    wait_until(lambda: {node for reply in cluster.app().control.ping(timeout=1) for node in reply} >= nodes,
               120, f"Celery workers {sorted(nodes)} to answer a ping", alive=cluster.check_alive)
    assert setup.popen.wait(300) == 0, setup.tail()
    setup_seconds = time.monotonic() - began

    # Three runs at once, as a backfill or the retraining sensor launches them; each run process
    # builds the plan and hands every step to the broker.
    config_path = cluster.workdir / "retrain.yaml"
    config_path.write_text(yaml.safe_dump(retrain_run_config()))
    runs = {
        ticker: cluster.start(f"run_{ticker}", [
            str(VENV_BIN / "dagster"), "job", "execute", "-m", "stock_assets.definitions", "-a", "defs",
            "-j", "retrain_job", "-c", str(config_path),
            "--tags", json.dumps({"dagster/partition": ticker}),
        ])
        for ticker in TICKERS
    }
    for process in runs.values():
        process.popen.wait(300)
    runs_seconds = time.monotonic() - began - setup_seconds
    pools = cluster.pool_pids()

    with cluster.instance() as instance:
        records = instance.get_run_records(dg.RunsFilter(job_name="retrain_job"))
        assert sorted(r.dagster_run.tags["dagster/partition"] for r in records) == sorted(TICKERS), {
            ticker: process.tail() for ticker, process in runs.items()}
        failed = {r.dagster_run.tags["dagster/partition"]: runs[r.dagster_run.tags["dagster/partition"]].tail()
                  for r in records if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS}
        assert not failed, failed
        workers_used: list[str] = []
        for record in records:
            run_id = record.dagster_run.run_id
            steps = _celery_steps(instance, run_id)
            assert set(steps) >= STEPS, steps
            for step_key in STEPS:
                [worker] = steps[step_key]["workers"]  # exactly one hand-over per step
                assert worker in nodes, (step_key, worker)
                # ...and the step's own events come from that worker's pool, not from the run
                # process that `dagster job execute` started.
                assert steps[step_key]["pids"], step_key
                assert steps[step_key]["pids"] <= pools[worker], (step_key, worker, steps[step_key], pools)
                assert runs[record.dagster_run.tags["dagster/partition"]].pid not in steps[step_key]["pids"]
                workers_used.append(worker)
        assert set(workers_used) == nodes, f"steps ran only on {sorted(set(workers_used))}"
        assert set(instance.get_materialized_partitions(dg.AssetKey("child_model"))) == set(TICKERS)
    share = {node: workers_used.count(node) for node in sorted(nodes)}
    print(f"setup {setup_seconds:.0f}s, three celery runs {runs_seconds:.0f}s, steps per worker {share}")  # noqa: T201
