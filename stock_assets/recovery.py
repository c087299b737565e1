"""Start-up sweep: runs whose process died (kill -9, out of memory, power cut) are marked failed.

Why: a run killed hard never writes its own failure, so the instance shows it STARTED and MLflow
shows its training run RUNNING forever, and the UIs claim work is in progress that died long ago.
The launcher tags every run with the process that executes it (`stock_assets/process`:
host, pid and the pid's start time, so a recycled pid is not mistaken for the run). At start-up
the CLI asks: is that process still alive on this host? If not, the run is reported failed with
the steps it was in, and then every MLflow run still RUNNING whose Dagster run (tag
`dagster_run_id`) is no longer running is terminated FAILED with the reason in a tag.

Runs started elsewhere (another host, the daemon's launcher without the tag) are left alone: this
process cannot tell whether they are alive.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

PROCESS_TAG = "stock_assets/process"
SWEPT_TAG = "stock_assets/swept"  # on an MLflow run the sweep terminated: why
DAGSTER_RUN_TAG = "dagster_run_id"  # what modeling puts on its MLflow runs
TORN_FILE = re.compile(r"\..+\.(?P<pid>\d+)-[0-9a-f]{32}\.tmp")

IN_PROGRESS = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
               dg.DagsterRunStatus.CANCELING)
ALIVE = (*IN_PROGRESS, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED)
STEP_EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS,
               dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_SKIPPED}


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), "" where /proc has none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 counted after "pid (comm)"


def process_tags(pid: int | None = None) -> dict[str, str]:
    """The run tag that names the process executing a run (see module doc)."""
    pid = os.getpid() if pid is None else pid
    return {PROCESS_TAG: f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"}


def process_alive(tag: str) -> bool | None:
    """Whether the tagged process still runs: None when it ran on another host (unknowable)."""
    host, pid, ticks = tag.rsplit(":", 2)
    if host != socket.gethostname():
        return None
    if not _pid_alive(int(pid)):
        return False
    return not ticks or _start_ticks(int(pid)) == ticks  # another process with a recycled pid


def _open_steps(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Steps of a run that started and never finished: where it died."""
    started: dict[str, None] = {}
    for entry in instance.all_logs(run_id, of_type=STEP_EVENTS):
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = None
        else:
            started.pop(event.step_key, None)
    return list(started)


def dead_run_message(run: dg.DagsterRun, steps: list[str]) -> str:
    host, pid, _ = run.tags[PROCESS_TAG].rsplit(":", 2)
    partition = run.tags.get("dagster/partition")
    where = f" in step {', '.join(steps)}" if steps else ""
    what = f" (partition {partition})" if partition else ""
    return (f"Swept at start-up: the process that ran {run.job_name}{what} (pid {pid} on {host}) is gone: "
            f"killed or crashed{where}. Nothing it was writing replaced a good file; re-run it.")


@dataclass
class Sweep:
    """What a sweep marked failed: Dagster run ids -> reason, MLflow run ids -> reason."""

    dagster_runs: dict[str, str] = field(default_factory=dict)
    mlflow_runs: dict[str, str] = field(default_factory=dict)
    torn_files: list[Path] = field(default_factory=list)


def sweep_dead_runs(
    instance: dg.DagsterInstance, mlflow_client: Any | None = None,
    echo: Callable[[str], None] = print,
) -> Sweep:
    """Mark runs whose process is gone FAILURE, then their orphaned MLflow runs FAILED."""
    swept = Sweep()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_PROGRESS))):
        tag = run.tags.get(PROCESS_TAG)
        if not tag or process_alive(tag) is not False:
            continue
        message = dead_run_message(run, _open_steps(instance, run.run_id))
        instance.report_run_failed(run, message)
        swept.dagster_runs[run.run_id] = message
        echo(f"swept dead run {run.run_id} ({run.job_name}): {message}")
    if mlflow_client is not None:
        swept.mlflow_runs = sweep_orphaned_mlflow_runs(instance, mlflow_client, echo)
    return swept


def sweep_orphaned_mlflow_runs(
    instance: dg.DagsterInstance, client: Any, echo: Callable[[str], None] = print
) -> dict[str, str]:
    """MLflow runs still RUNNING whose Dagster run is over (or unknown): terminated FAILED."""
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return {}
    swept: dict[str, str] = {}
    for run in client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'",
                                  run_view_type=ViewType.ALL, max_results=10_000):
        dagster_run_id = run.data.tags.get(DAGSTER_RUN_TAG)
        if not dagster_run_id:
            continue
        dagster_run = instance.get_run_by_id(dagster_run_id)
        if dagster_run is not None and dagster_run.status in ALIVE:
            continue
        state = dagster_run.status.value if dagster_run is not None else "unknown to this instance"
        reason = (f"Swept at start-up: its Dagster run {dagster_run_id} is {state}; "
                  "the process that ran it is gone.")
        client.set_tag(run.info.run_id, SWEPT_TAG, reason)
        client.set_terminated(run.info.run_id, "FAILED")
        swept[run.info.run_id] = reason
        echo(f"swept MLflow run {run.info.run_id} ({run.info.run_name}): {reason}")
    return swept


def sweep_torn_files(lake_dir: Path, echo: Callable[[str], None] = print) -> list[Path]:
    """Temp files of lake writers that died before their os.replace (`.<name>.<pid>-<id>.tmp`,
    see lake.atomic_write_bytes): never a partition, only disk space; removed."""
    removed = []
    for tmp in Path(lake_dir).rglob(".*.tmp"):
        match = TORN_FILE.fullmatch(tmp.name)
        if match is None or _pid_alive(int(match["pid"])):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
        echo(f"swept torn temp file {tmp} (its writer, pid {match['pid']}, is gone)")
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_at_start(echo: Callable[[str], None] = print, settings=None) -> Sweep:
    """The CLI's call: the settings' instance, MLflow store and lake (default: the process's),
    swept before anything launches."""
    from stock_assets.execution import project_instance
    from stock_assets.resources import mlflow
    from stock_assets.settings import get_settings

    settings = settings or get_settings()
    swept = sweep_dead_runs(project_instance(settings), mlflow(settings).client(), echo)
    swept.torn_files = sweep_torn_files(settings.paths.lake_dir, echo)
    return swept
