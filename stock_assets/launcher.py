"""Runs a plan's launches on the project's instance, `workers` runs at a time, with progress.

Why worker processes and not Dagster's multiprocess executor: a run's steps are assets, not
partitions, so one run of retrain_job is two steps in sequence whatever the executor, and the
multiprocess executor pays a fresh interpreter (and a code-location import) per step. The launcher
instead keeps `workers` processes (default: every core), each importing the code location once,
and executes whole runs of the real jobs in them (`JobDefinition.execute_in_process` on the shared
instance): 500 child trainings keep both cores busy, and every run is on the instance, with its
tags, exactly as if the daemon had launched it.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

from stock_assets.plan import Launch, Stage

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
LAUNCHED_BY_TAG = "stock_assets/launched_by"


@dataclass(frozen=True)
class Outcome:
    label: str
    status: str  # ok | FAILED | REJECTED
    seconds: float
    detail: str = ""


_DEFS = None
_SETTINGS = None  # this process's settings: given to run_stages, or to a worker when it starts


def _configure(settings) -> None:
    """Bind this process's runs to `settings` (the code location is rebuilt if they changed)."""
    global _DEFS, _SETTINGS
    if settings is not _SETTINGS:
        _DEFS, _SETTINGS = None, settings


def _definitions():
    global _DEFS
    if _DEFS is None:
        import warnings

        from stock_assets.compat import quiet_unemitted_check_notices

        warnings.filterwarnings("ignore", module="dagster")
        quiet_unemitted_check_notices()
        from stock_assets.definitions import build_definitions

        _DEFS = build_definitions(_SETTINGS)
    return _DEFS


def _init_worker(threads: int, settings) -> None:
    """A worker: its share of the cores for torch (no oversubscription), the parent's settings
    (passed here, pickled, not through the environment), the code location loaded once, before
    its first run."""
    import torch

    from stock_assets.settings import use_settings

    torch.set_num_threads(threads)
    use_settings(settings)  # what runs ask get_settings() for (thresholds) matches the parent
    _configure(settings)
    _definitions()


def execute(launch: Launch) -> Outcome:
    """One run of `launch.job` on the instance; never raises (the outcome says what happened)."""
    from stock_assets.execution import project_instance
    from stock_assets.recovery import process_tags

    began = time.perf_counter()
    try:
        job = _definitions().resolve_job_def(launch.job)
        result = job.execute_in_process(
            partition_key=launch.partition_key,
            instance=project_instance(_SETTINGS),
            run_config={**QUIET, **launch.run_config()},
            # the process tag lets a later start-up sweep tell a run killed with it (recovery.py)
            tags={LAUNCHED_BY_TAG: "cli", **process_tags(), **dict(launch.tags)},
            raise_on_error=False,
        )
    except Exception as exc:  # a bad launch (unknown job, bad config) is reported, not raised
        return Outcome(launch.label, "FAILED", time.perf_counter() - began,
                       f"{type(exc).__name__}: {exc}"[:300])
    seconds = time.perf_counter() - began
    if result.success:
        return Outcome(launch.label, "ok", seconds, tuning_summary(result))
    if only_model_checks_failed(result):
        # The promotion gate at work, not a breakage: the version was registered and rejected,
        # and the previous production model (if any) stays in place.
        return Outcome(launch.label, "REJECTED", seconds, rejection(result))
    return Outcome(launch.label, "FAILED", seconds, first_failure(result))


def tuning_summary(result) -> str:
    """A tuning run's study and best trial, for the progress line ("" for any other run)."""
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        if "best_trial" in metadata and "n_trials" in metadata:
            return f"{metadata['n_trials'].value} trials in the study, best {metadata['best_trial'].value}"
    return ""


def only_model_checks_failed(result) -> bool:
    """True when the run failed only because blocking model checks failed (e.g. worse than naive)."""
    errors = [
        e.step_failure_data.error
        for e in result.all_events
        if e.is_step_failure and e.step_failure_data and e.step_failure_data.error
    ]
    return bool(errors) and all(err.cls_name == "DagsterAssetCheckFailedError" for err in errors)


def rejection(result) -> str:
    """The promotion decision the model asset recorded, for the progress line."""
    for event in result.get_asset_materialization_events():
        promotion = event.materialization.metadata.get("promotion")
        if promotion is not None:
            return f"not promoted: {promotion.value}"
    return "a blocking model check failed"


def first_failure(result) -> str:
    """The first step failure's own message (Dagster wraps user errors: unwrap them)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            from stock_assets.compat import innermost_error

            return innermost_error(event.step_failure_data.error).strip().splitlines()[0][:300]
    return "run failed"


def _eta(done: int, total: int, elapsed: float) -> str:
    if done == 0 or done >= total:
        return ""
    seconds = elapsed / done * (total - done)
    return f"  ETA {int(seconds // 60)}m{int(seconds % 60):02d}s"


def run_stages(
    stages: Sequence[Stage], workers: int = 2, echo: Callable[[str], None] = print, settings=None
) -> list[Outcome]:
    """Every stage in order; within one, up to `workers` runs at once. Reports, never stops.

    `settings` (default: the process's) bind the runs here and in every worker."""
    from stock_assets.settings import get_settings, settings_override

    settings = settings or get_settings()
    _configure(settings)
    with settings_override(settings):
        return _run_stages(stages, workers, echo, settings)


def _run_stages(stages, workers, echo, settings) -> list[Outcome]:
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    pool = None
    if workers > 1 and any(len(s.launches) > 1 for s in stages):
        import os

        threads = max(1, (os.cpu_count() or 1) // workers)
        pool = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(threads, settings),
        )
    try:
        for stage in stages:
            began, total = time.perf_counter(), len(stage.launches)
            echo(f"== {stage.name}: {total} run{'s' if total != 1 else ''}"
                 f"{f' on {min(workers, total)} workers' if pool and total > 1 else ''}")
            pending = list(stage.launches)
            if pool is None or total == 1:
                results = (execute(launch) for launch in pending)
            else:
                results = _parallel(pool, pending)
            for done, outcome in enumerate(results, start=1):
                outcomes.append(outcome)
                detail = f"  {outcome.detail}" if outcome.detail else ""
                echo(
                    f"[{stage.name} {done:>{len(str(total))}}/{total}] {outcome.label:<44} "
                    f"{outcome.status} ({outcome.seconds:5.1f}s){detail}"
                    f"{_eta(done, total, time.perf_counter() - began)}"
                )
            echo(f"== {stage.name} done in {time.perf_counter() - began:.1f}s")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    ok = sum(o.status == "ok" for o in outcomes)
    rejected = sum(o.status == "REJECTED" for o in outcomes)
    failed = sum(o.status == "FAILED" for o in outcomes)
    echo(
        f"done in {time.perf_counter() - started:.1f}s: {ok} ok, {rejected} models rejected by "
        f"their checks, {failed} failed ({len(outcomes)} runs)"
    )
    return outcomes


def _parallel(pool: ProcessPoolExecutor, launches: Sequence[Launch]):
    """Outcomes as they complete (so progress lines come when runs finish)."""
    futures = {pool.submit(execute, launch): launch for launch in launches}
    remaining = set(futures)
    while remaining:
        finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
        for future in finished:
            try:
                yield future.result()
            except Exception as exc:  # a worker that died (killed, out of memory)
                yield Outcome(futures[future].label, "FAILED", 0.0, f"worker died: {exc}"[:300])
