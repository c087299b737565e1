"""The fault matrix (issue 15, item 7): each fault on a real home (Dagster instance, Parquet lake,
MLflow SQLite store, Feast with its SQLite online store), then the same promises every time:
the previous good data is intact and readable, the failure names the file or the step, a re-run
repairs it, and no Dagster run or MLflow run is left "in progress".

The kills are `kill -9` of a real run in its own process, parked first at the named point by
worker.py (no sleep-and-hope); the mounts are real (a read-only bind mount, a full tmpfs).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from stock_assets.features.feature_store import FEATURE_COLUMNS
from stock_assets.lake import LakeReadError, LakeResource
from stock_assets.recovery import PROCESS_TAG, SWEPT_TAG
from stock_assets_tests.faults.conftest import (
    FEAST_LAUNCH,
    LATER_END,
    PARENT_LAUNCH,
    TICKER,
    TICKER_LAUNCH,
    assert_nothing_in_progress,
    cli,
    digest,
    failure_message,
    kill_at,
    mlflow_client,
    mount_unavailable,
    mounted,
    run_failure_message,
    run_worker,
    running_mlflow_runs,
    runs_in_progress,
)

# The fault tests share one session-built base home (~1 min) and each starts real processes.
pytestmark = pytest.mark.xdist_group("faults")


def lake(home: Path) -> LakeResource:
    return LakeResource(base_dir=str(home / "lake"))


def online_row(home: Path) -> dict:
    """AAPL's latest features as the online store serves them (a fresh process's view)."""
    from stock_assets.resources import build_resources

    store = build_resources(home)["feature_store"]
    return store.online([TICKER]).select(FEATURE_COLUMNS).row(0, named=True)


def newest_indicator_row(home: Path) -> dict:
    frame = lake(home).read("price_indicators", TICKER).sort("date")
    return frame.select(FEATURE_COLUMNS).row(-1, named=True)


@pytest.mark.slow
def test_kill_9_while_a_partition_is_written(home: Path):
    prices = home / "lake" / "raw_prices" / f"{TICKER}.parquet"
    good, good_rows = digest(prices), pl.read_parquet(prices).height

    stalled = kill_at(home, TICKER_LAUNCH, "lake_write:raw_prices", end=LATER_END)

    assert "/lake/raw_prices/" in stalled["detail"]  # killed with the new file half-way
    assert digest(prices) == good and pl.read_parquet(prices).height == good_rows
    assert lake(home).partitions("raw_prices") == [TICKER]  # the torn temp file is no partition
    [dead] = runs_in_progress(home)  # what the user saw before the sweep: a run "in progress"
    assert dead.job_name == "ticker_data_job" and str(stalled["pid"]) in dead.tags[PROCESS_TAG]

    rerun = cli(home, "--stages", "data", end=LATER_END)

    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-2000:]
    assert f"swept dead run {dead.run_id}" in rerun.stdout
    reason = run_failure_message(home, dead.run_id)
    assert "raw_prices" in reason and f"partition {TICKER}" in reason
    assert f"pid {stalled['pid']}" in reason
    repaired = pl.read_parquet(prices)
    assert repaired.height > good_rows and str(repaired["date"].max()) == LATER_END
    assert list(home.glob("lake/raw_prices/.*.tmp")) == []  # the sweep removed the torn file
    assert_nothing_in_progress(home)


@pytest.mark.slow
def test_kill_9_while_a_model_trains_and_while_its_version_is_registered(home: Path):
    """The issue's reproduction (kill -9 during training leaves MLflow RUNNING and Dagster
    STARTED forever), then a kill inside create_model_version, then one clean re-run."""
    from stock_assets.modeling.artifacts import ModelBundle
    from stock_assets.modeling.registry import MlflowResource

    assert run_worker(home, PARENT_LAUNCH)["status"] == "ok"
    registry = MlflowResource(tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    name = "stock_assets.GSPC"
    good = registry.production_version(name)
    card = home / "lake" / "parent_model.parquet"
    good_card = digest(card)

    training = kill_at(home, PARENT_LAUNCH, "train")
    [orphan] = running_mlflow_runs(home)  # the training run the kill left RUNNING
    assert orphan.info.run_id == training["detail"]
    registering = kill_at(home, PARENT_LAUNCH, "register")

    assert registering["detail"] == name
    dead = {r.run_id: r for r in runs_in_progress(home)}
    assert len(dead) == 2 and orphan.data.tags["dagster_run_id"] in dead
    assert registry.production_version(name).version == good.version == "1"
    ModelBundle.from_files(registry.load_model_artifacts(name, good.version))  # still loads
    assert digest(card) == good_card

    rerun = run_worker(home, PARENT_LAUNCH, sweep=True)

    for run_id in dead:
        assert f"swept dead run {run_id}" in rerun["stdout"]
        assert "step parent_model" in run_failure_message(home, run_id)
    assert f"swept MLflow run {orphan.info.run_id}" in rerun["stdout"]
    swept = mlflow_client(home).get_run(orphan.info.run_id)
    assert swept.info.status == "FAILED"
    assert orphan.data.tags["dagster_run_id"] in swept.data.tags[SWEPT_TAG]
    assert rerun["status"] in {"ok", "REJECTED"}, rerun  # an equal model is not promoted
    versions = mlflow_client(home).search_model_versions(f"name = '{name}'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]  # the killed runs registered none
    assert registry.production_version(name).version in {"1", "2"}
    assert_nothing_in_progress(home)


@pytest.mark.slow
def test_kill_9_while_feast_publishes(home: Path):
    before = online_row(home)
    assert before == pytest.approx(newest_indicator_row(home))
    assert run_worker(home, TICKER_LAUNCH, end=LATER_END)["status"] == "ok"
    newest = newest_indicator_row(home)
    assert newest != pytest.approx(before)

    kill_at(home, FEAST_LAUNCH, "feast_materialize", end=LATER_END)

    assert online_row(home) == pytest.approx(before)  # the online store kept its good rows
    [dead] = runs_in_progress(home)

    rerun = run_worker(home, FEAST_LAUNCH, end=LATER_END, sweep=True)

    assert rerun["status"] == "ok", rerun
    assert "feast_features" in run_failure_message(home, dead.run_id)
    assert online_row(home) == pytest.approx(newest)
    assert_nothing_in_progress(home)


@pytest.mark.slow
def test_a_corrupt_partition_fails_its_reader_naming_the_file_and_a_rerun_repairs_it(home: Path):
    indicators = home / "lake" / "price_indicators" / f"{TICKER}.parquet"
    prices = home / "lake" / "raw_prices" / f"{TICKER}.parquet"
    good_prices, before = digest(prices), online_row(home)
    good_indicators = pl.read_parquet(indicators)
    payload = indicators.read_bytes()
    indicators.write_bytes(payload[: len(payload) // 2])  # truncated, as a crashed copy leaves it

    with pytest.raises(LakeReadError, match=str(indicators)):
        lake(home).read("price_indicators", TICKER)
    failed = run_worker(home, FEAST_LAUNCH)

    assert failed["status"] == "FAILED" and str(indicators) in failed["detail"]
    assert digest(prices) == good_prices and online_row(home) == pytest.approx(before)
    assert_nothing_in_progress(home)  # an ordinary failure: the run says FAILURE itself

    assert run_worker(home, TICKER_LAUNCH)["status"] == "ok"  # the partition's re-run
    assert run_worker(home, FEAST_LAUNCH)["status"] == "ok"
    assert pl.read_parquet(indicators).equals(good_indicators)  # recomputed from good prices
    assert online_row(home) == pytest.approx(before)
    assert_nothing_in_progress(home)


@pytest.fixture
def can_mount() -> None:
    reason = mount_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.mark.slow
def test_the_api_serves_a_read_only_lake(home: Path, tmp_path: Path, can_mount):
    from fastapi.testclient import TestClient

    from serving.main import create_app
    from serving.settings import Settings

    with mounted("--bind", "-o", "ro", str(home / "lake"), target=tmp_path / "ro_lake") as ro:
        with pytest.raises(OSError) as refused:  # read-only for root too: a real mount
            (ro / "probe").write_bytes(b"x")
        assert refused.value.errno == errno.EROFS
        client = TestClient(create_app(Settings(lake_dir=ro, revalidate_seconds=0)))
        health = client.get("/health")
        history = client.get(f"/history/{TICKER}", params={"days": 5})

    assert health.status_code == 200, health.text
    assert history.status_code == 200, history.text
    closes = [row["close"] for row in history.json()["closes"]]
    expected = lake(home).read("raw_prices", TICKER).sort("date")["close"].tail(5).to_list()
    assert closes == pytest.approx(expected)


@pytest.mark.slow
def test_a_full_disk_keeps_the_good_partition_and_names_the_file(home: Path, tmp_path: Path,
                                                                 can_mount):
    saved = tmp_path / "lake_copy"
    shutil.copytree(home / "lake", saved)
    shutil.rmtree(home / "lake")
    prices = home / "lake" / "raw_prices" / f"{TICKER}.parquet"
    with mounted("-t", "tmpfs", "-o", "size=8m", "tmpfs", target=home / "lake"):
        shutil.copytree(saved, home / "lake", dirs_exist_ok=True)
        good, good_rows = digest(prices), pl.read_parquet(prices).height
        filler = home / "lake" / "filler"
        # fill the disk to the last byte
        with open(filler, "wb") as handle, pytest.raises(OSError) as full:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        assert full.value.errno == errno.ENOSPC

        failed = run_worker(home, TICKER_LAUNCH, end=LATER_END)

        assert failed["status"] == "FAILED" and str(prices) in failed["detail"], failed
        assert "No space left on device" in failed["detail"]
        assert digest(prices) == good and pl.read_parquet(prices).height == good_rows
        assert list(home.glob("lake/raw_prices/.*.tmp")) == []  # the partial temp file is gone
        assert_nothing_in_progress(home)

        filler.unlink()  # space again
        assert run_worker(home, TICKER_LAUNCH, end=LATER_END)["status"] == "ok"
        assert str(pl.read_parquet(prices)["date"].max()) == LATER_END
    assert_nothing_in_progress(home)


def test_the_sweep_fails_only_runs_whose_process_is_gone(tmp_path: Path):
    """A run whose process lives (this test's), ran on another host, or has no process tag (the
    daemon launched it) is left alone; a dead pid, or a live pid started later (recycled), is swept."""
    import socket
    import subprocess

    from stock_assets.recovery import process_tags, sweep_dead_runs

    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()
    tags = {
        "alive": process_tags(),
        "foreign": {PROCESS_TAG: "elsewhere.example:1:1"},
        "untagged": {},
        "dead": {PROCESS_TAG: f"{host}:{gone.pid}:1"},
        "recycled": {PROCESS_TAG: f"{host}:{os.getpid()}:1"},
    }
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        job = dg.GraphDefinition("noop", node_defs=[]).to_job()
        ids = {label: instance.create_run_for_job(job, tags=t, status="STARTED").run_id
               for label, t in tags.items()}
        swept = sweep_dead_runs(instance, None, echo=lambda _: None)
        statuses = {k: instance.get_run_by_id(v).status.value for k, v in ids.items()}
        reason = failure_message(instance, ids["dead"])

    assert sorted(swept.dagster_runs) == sorted([ids["dead"], ids["recycled"]])
    assert statuses == {"alive": "STARTED", "foreign": "STARTED", "untagged": "STARTED",
                        "dead": "FAILURE", "recycled": "FAILURE"}
    assert f"pid {gone.pid} on {host}" in reason and "noop" in reason


def test_the_sweep_removes_only_temp_files_whose_writer_is_gone(tmp_path: Path):
    import subprocess
    import uuid

    from stock_assets.lake import atomic_write_bytes
    from stock_assets.recovery import sweep_torn_files

    gone = subprocess.Popen(["true"])
    gone.wait()
    folder = tmp_path / "raw_prices"
    atomic_write_bytes(b"good", folder / "AAPL.parquet")
    torn = folder / f".AAPL.parquet.{gone.pid}-{uuid.uuid4().hex}.tmp"
    live = folder / f".MSFT.parquet.{os.getpid()}-{uuid.uuid4().hex}.tmp"  # a write under way
    foreign = folder / ".notes.tmp"  # not the lake's naming: not ours to delete
    for path in (torn, live, foreign):
        path.write_bytes(b"half")

    removed = sweep_torn_files(tmp_path, echo=lambda _: None)

    assert removed == [torn]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["AAPL.parquet", live.name, foreign.name])
    assert (folder / "AAPL.parquet").read_bytes() == b"good"
