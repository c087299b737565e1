"""The retraining loop with the real daemon: dagster-daemon, started on a temporary DAGSTER_HOME,
finds the failed forecast_mape check of the daily job by itself and launches (and runs) the retrain.

The daemon runs in its own process group (it starts a code server, which starts run workers), and
the test stops that whole group with SIGTERM, failing if anything survives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from stock_assets.modeling.registry import registered_model_name
from stock_assets.monitoring.retraining import RETRAIN_REASON_TAG
from stock_assets.testing import loop_home

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
DAY = "2024-06-28"
TICKER = "AAPL"
LAUNCH_TIMEOUT = 180  # daemon start + code location load + first sensor tick
RUN_TIMEOUT = 300  # the retrain run: two steps, each its own process, on a busy machine


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, alive: Callable[[], None]
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive()
        value = condition()
        if value:
            return value
        time.sleep(1.0)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def stop_group() -> Iterator[Callable[[subprocess.Popen], None]]:
    """Stops a process group (SIGTERM, then SIGKILL after 30 s) and fails if it had to kill."""
    started: list[subprocess.Popen] = []
    problems: list[str] = []

    def stop(process: subprocess.Popen) -> None:
        if process in started:
            started.remove(process)
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            problems.append(f"pid {process.pid} ignored SIGTERM")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)
        problems.append(f"process group {process.pid} still alive 30 s after SIGTERM")
        os.killpg(process.pid, signal.SIGKILL)

    def register(process: subprocess.Popen) -> None:
        started.append(process)

    stop.register = register  # type: ignore[attr-defined]
    yield stop
    for process in started:
        stop(process)
    assert not problems, problems


def test_the_daemon_launches_the_retrain_of_a_ticker_whose_check_failed(tmp_path: Path, stop_group):
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text("tickers: []\n")  # the watchlist sensor must not ingest 12 tickers
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: stock_assets.definitions\n"
        f"      attribute: defs\n      location_name: stock_assets\n      working_directory: {REPO_ROOT}\n"
    )
    with loop_home(
        tmp_path,
        synthetic_start="2023-01-03",
        instance_yaml=REPO_ROOT / "dagster.yaml",
        STOCK_ASSETS_MAPE_THRESHOLD="0.000001",  # any real forecast fails forecast_mape
        STOCK_ASSETS_SYNTHETIC_END=DAY,
    ) as home:
        home.ingest([TICKER], DAY)
        home.train([TICKER])
        daily = home.daily(DAY, TICKER)
        [mape] = [
            e.event_specific_data
            for e in daily.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
            and e.event_specific_data.check_name == "forecast_mape"
        ]
        assert not mape.passed
        name = registered_model_name(TICKER)
        versions_before = len(home.mlflow.client().search_model_versions(f"name = '{name}'"))

        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DAGSTER_", "STOCK_ASSETS_", "MLFLOW_", "PYTEST_"))
        }
        env.update(
            {
                "DAGSTER_HOME": str(home.instance.root_directory),
                "STOCK_ASSETS_HOME": str(home.home),
                "STOCK_ASSETS_PRICE_SOURCE": "synthetic",
                "STOCK_ASSETS_SYNTHETIC_END": DAY,
                "STOCK_ASSETS_WATCHLIST": str(watchlist),
                "STOCK_ASSETS_RETRAIN_EPOCHS": "1",
                "STOCK_ASSETS_MAX_CONCURRENT_STEPS": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        log = tmp_path / "daemon.log"
        with open(log, "ab") as output:
            daemon = subprocess.Popen(
                [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(workspace)],
                cwd=REPO_ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        stop_group.register(daemon)

        def alive() -> None:
            if daemon.poll() is not None:
                raise AssertionError(
                    f"dagster-daemon exited with {daemon.returncode}:\n{log.read_text()[-3000:]}"
                )

        def retrain_runs() -> list[dg.DagsterRun]:
            return list(home.instance.get_runs(dg.RunsFilter(job_name="retrain_job")))

        started = time.monotonic()
        [run] = wait_for(retrain_runs, LAUNCH_TIMEOUT, "the sensor's retrain run", alive)
        launched_after = time.monotonic() - started
        assert run.tags["dagster/partition"] == TICKER
        assert run.tags["dagster/sensor_name"] == "retraining_sensor"
        assert run.tags[RETRAIN_REASON_TAG].startswith(f"forecast_mape failed on {DAY}")
        assert run.tags["dagster/run_key"].startswith(f"retrain-{TICKER}-")

        def finished() -> dg.DagsterRun | None:
            current = home.instance.get_run_by_id(run.run_id)
            return current if current.is_finished else None

        done = wait_for(finished, RUN_TIMEOUT, "the retrain run to finish", alive)
        assert done.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-3000:]
        assert (
            len(home.mlflow.client().search_model_versions(f"name = '{name}'"))
            == versions_before + 1
        )
        # Ticks during the run (every 30 s) requested nothing more: the failure was handled once.
        assert len(retrain_runs()) == 1
        stop_group(daemon)
        assert daemon.returncode is not None
        print(f"retrain run launched {launched_after:.0f}s after the daemon started")
