"""Real homes for the fault matrix, and the means to hurt them: a run killed with SIGKILL at a named
point (worker.py parks there first, so the kill is never a race), real mounts for a read-only lake
and a full disk.

One base home is built once per session by the real CLI (`python -m stock_assets materialize
--stages data` for AAPL on the synthetic market); each test works on its own copy of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TICKER = "AAPL"
SYNTHETIC_END = "2024-06-28"
LATER_END = "2024-07-31"  # a later market: a re-run has new rows to write
SEQUENCES = {"context_length": 20, "horizon": 5}
TINY_PARENT = {
    "epochs": 1, "hidden_size": 8, "num_layers": 1, "batch_size": 64, "learning_rate": 3e-3,
    "seed": 1, "use_tuned_params": False, "naive_tolerance": 10.0, "interval_tolerance": 10.0,
}
PARENT_LAUNCH = {"job": "parent_retrain_job",
                 "ops": {"market_index_sequences": SEQUENCES, "parent_model": TINY_PARENT}}
TICKER_LAUNCH = {"job": "ticker_data_job", "partition_key": TICKER}
FEAST_LAUNCH = {"job": "feast_job"}
IN_PROGRESS = {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
               dg.DagsterRunStatus.CANCELING}


def env_for(home: Path, end: str = SYNTHETIC_END) -> dict[str, str]:
    """The environment of a command on `home`: offline, synthetic, nothing inherited that points
    at another home or server."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STOCK_ASSETS_", "DAGSTER_", "MLFLOW_", "OPTUNA_", "FEAST_",
                                "OLLAMA_", "QDRANT_"))}
    env.update(STOCK_ASSETS_HOME=str(home), DAGSTER_HOME=str(home / "dagster_home"),
               STOCK_ASSETS_PRICE_SOURCE="synthetic", STOCK_ASSETS_SYNTHETIC_END=end,
               PYTHONPATH=str(REPO_ROOT))
    return env


def cli(home: Path, *args: str, end: str = SYNTHETIC_END) -> subprocess.CompletedProcess:
    """The real run command on `home`, one worker, AAPL only."""
    command = [sys.executable, "-m", "stock_assets", "--home", str(home), "materialize",
               "--source", "synthetic", "--tickers", TICKER, "--workers", "1", *args]
    env = env_for(home, end)
    env.pop("DAGSTER_HOME")  # the CLI's own instance folder, with the shipped dagster.yaml
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def worker_command(launch: dict, *extra: str) -> list[str]:
    return [sys.executable, "-m", "stock_assets_tests.faults.worker", json.dumps(launch), *extra]


def run_worker(home: Path, launch: dict, end: str = SYNTHETIC_END, sweep: bool = False) -> dict:
    """One launch, the CLI's way, in its own process; its outcome and printed lines."""
    done = subprocess.run(worker_command(launch, *(["--sweep"] if sweep else [])), cwd=REPO_ROOT,
                          env=env_for(home, end), capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    return {**json.loads(lines[-1]), "stdout": done.stdout}


def kill_at(home: Path, launch: dict, point: str, end: str = SYNTHETIC_END,
            timeout: float = 300) -> dict[str, Any]:
    """Start the launch, wait until it is parked at `point`, SIGKILL it; what it was doing."""
    marker = home / f"stalled-{point.replace(':', '-')}.json"
    process = subprocess.Popen(worker_command(launch, "--stall", point, "--marker", str(marker)),
                               cwd=REPO_ROOT, env=env_for(home, end),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    try:
        while not marker.exists():
            if process.poll() is not None:
                pytest.fail(f"the run ended before reaching {point}:\n{process.stdout.read()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the run did not reach {point} in {timeout}s")
            time.sleep(0.05)
        stalled = json.loads(marker.read_text())
        assert stalled["pid"] == process.pid
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    return stalled


@contextmanager
def instance_of(home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        yield instance


def runs_in_progress(home: Path) -> list[dg.DagsterRun]:
    with instance_of(home) as instance:
        return [r for r in instance.get_runs() if r.status in IN_PROGRESS]


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    """The message of the run's one RUN_FAILURE event (what the UI shows for the run)."""
    [entry] = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return entry.dagster_event.message or ""


def run_failure_message(home: Path, run_id: str) -> str:
    with instance_of(home) as instance:
        return failure_message(instance, run_id)


def mlflow_client(home: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def running_mlflow_runs(home: Path) -> list:
    from mlflow.entities import ViewType

    client = mlflow_client(home)
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(ids, "attributes.status = 'RUNNING'", run_view_type=ViewType.ALL)


def assert_nothing_in_progress(home: Path) -> None:
    assert [(r.job_name, r.status.value) for r in runs_in_progress(home)] == []
    assert [r.info.run_name for r in running_mlflow_runs(home)] == []


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mount_unavailable() -> str | None:
    """Why this process cannot mount (None when it can): the mount tests need root and
    CAP_SYS_ADMIN, since only a real mount blocks root (chmod does not)."""
    if os.geteuid() != 0:
        return "mounting a read-only or tmpfs filesystem needs root (CAP_SYS_ADMIN)"
    probe = Path(f"/tmp/stock_assets_mount_probe_{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"mount -t tmpfs is refused here: {done.stderr.strip()}"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    finally:
        probe.rmdir()


@contextmanager
def mounted(*mount_args: str, target: Path) -> Iterator[Path]:
    """`mount ARGS target`, unmounted on exit whatever happened."""
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", *mount_args, str(target)], check=True, capture_output=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


@pytest.fixture(scope="session")
def base_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home after the real run command's data stage for AAPL (prices, indicators, Feast)."""
    home = tmp_path_factory.mktemp("faults") / "base"
    done = cli(home, "--stages", "data")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return home


@pytest.fixture
def home(base_home: Path, tmp_path: Path) -> Path:
    """This test's own copy of the base home."""
    copy = tmp_path / "home"
    shutil.copytree(base_home, copy, symlinks=True)
    return copy
