"""Ten ticker partitions materialized at the same time against ONE instance and ONE lake: as ten
separate runs (how a backfill launches them), and through the multiprocess executor (steps in
their own processes). Every run must succeed and every partition must hold its own data.

Worker processes come from a forkserver that has already imported the assets, so the test pays
for Dagster's imports once instead of once per process.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from stock_assets.features.indicators import WARMUP_ROWS
from stock_assets.ingestion.synthetic import DEFAULT_UNIVERSE, SyntheticMarket
from stock_assets.lake import LakeResource
from stock_assets.partitions import ticker_partitions

TEN = [t for t in DEFAULT_UNIVERSE if t != "GSPC"][:10]
WORKERS_MODULE = "stock_assets_tests.ingestion.concurrency_runs"

pytestmark = pytest.mark.slow


@pytest.fixture
def workers(repo_root: Path, monkeypatch: pytest.MonkeyPatch):
    """The worker module, importable by name in every child process."""
    monkeypatch.syspath_prepend(str(repo_root))
    return importlib.import_module(WORKERS_MODULE)


def _pool(size: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([WORKERS_MODULE])
    return ProcessPoolExecutor(max_workers=size, mp_context=context)


def _assert_ten_partitions_stored(instance: dg.DagsterInstance, home: Path, workers) -> None:
    for asset in ("raw_prices", "price_indicators"):
        assert set(instance.get_materialized_partitions(dg.AssetKey(asset))) == set(TEN), asset
    lake = LakeResource(base_dir=str(home / "lake"))
    assert lake.partitions("raw_prices") == sorted(TEN)
    assert lake.partitions("price_indicators") == sorted(TEN)
    market = SyntheticMarket(
        start=date.fromisoformat(workers.SYNTHETIC_START),
        end=date.fromisoformat(workers.SYNTHETIC_END),
    )
    for ticker in TEN:
        prices = lake.read("raw_prices", ticker)
        assert prices.equals(market.prices(ticker)), ticker  # each file holds its own ticker, whole
        assert lake.read("price_indicators", ticker).height == prices.height - WARMUP_ROWS
    leftovers = [p for p in (home / "lake").rglob("*") if p.is_file() and p.suffix != ".parquet"]
    assert leftovers == []


def _max_runs_in_flight(records: Sequence) -> int:
    """The most runs that were executing at one moment, from the instance's own timestamps."""
    edges = sorted(
        [(r.start_time, 1) for r in records] + [(r.end_time, -1) for r in records],
        key=lambda edge: (edge[0], edge[1]),
    )
    in_flight = peak = 0
    for _, step in edges:
        in_flight += step
        peak = max(peak, in_flight)
    return peak


def test_ten_partitions_as_ten_concurrent_runs(instance, project_home: Path, workers) -> None:
    instance.add_dynamic_partitions(ticker_partitions.name, TEN)
    home, dagster_home = str(project_home), instance.root_directory
    with _pool(len(TEN)) as pool:
        outcomes = list(
            pool.map(workers.materialize_in_own_process, [home] * 10, [dagster_home] * 10, TEN)
        )

    assert [(ticker, ok) for ticker, ok, _ in outcomes] == [(t, True) for t in TEN]
    pids = {pid for _, _, pid in outcomes}
    assert os.getpid() not in pids and len(pids) >= 2  # separate processes, several at once
    records = instance.get_run_records()
    assert len(records) == 10
    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in records) == sorted(TEN)
    assert _max_runs_in_flight(records) >= 2
    _assert_ten_partitions_stored(instance, project_home, workers)


def test_ten_partitions_through_the_multiprocess_executor(
    instance, project_home: Path, workers
) -> None:
    instance.add_dynamic_partitions(ticker_partitions.name, TEN)
    home, dagster_home = str(project_home), instance.root_directory
    halves = [TEN[0::2], TEN[1::2]]  # two run processes at once, five runs each
    with _pool(2) as pool:
        batches = list(
            pool.map(
                workers.execute_with_multiprocess_executor, [home] * 2, [dagster_home] * 2, halves
            )
        )
    outcomes = [outcome for batch in batches for outcome in batch]

    assert sorted((ticker, ok) for ticker, ok, _, _ in outcomes) == sorted((t, True) for t in TEN)
    for ticker, _, run_pid, step_pids in outcomes:
        # Both steps ran, each in a child process of the run, never in the run process itself.
        assert len(step_pids) == 2 and run_pid not in step_pids, ticker
    records = instance.get_run_records()
    assert len(records) == 10
    assert {r.dagster_run.job_name for r in records} == {"ticker_data_job"}
    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
    assert _max_runs_in_flight(records) >= 2
    _assert_ten_partitions_stored(instance, project_home, workers)
