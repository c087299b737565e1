"""The Parquet lake: paths never leave the base folder, and a write is all-or-nothing, even when
the writer is SIGKILLed or the materialization fails."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from stock_assets.lake import LakeReadError, LakeResource, atomic_write_parquet, partition_path
from stock_assets.tickers import InvalidTickerError

HOSTILE_TICKERS = [
    "../etc",
    "..",
    "/etc",
    "AAPL/../../x",
    "",
    " AAPL",
    "aapl",
    "AAPL;DROP",
    "A\x00B",
]


# --- paths ------------------------------------------------------------------------------------


def test_partition_paths_follow_the_layout(tmp_path: Path) -> None:
    assert partition_path(tmp_path, "feast_features") == tmp_path / "feast_features.parquet"
    assert (
        partition_path(tmp_path, "raw_prices", "AAPL") == tmp_path / "raw_prices" / "AAPL.parquet"
    )
    assert (
        partition_path(tmp_path, "raw_prices", "^GSPC") == tmp_path / "raw_prices" / "GSPC.parquet"
    )
    assert (
        partition_path(tmp_path, "daily_forecast", "BRK-B", "2024-01-02")
        == tmp_path / "daily_forecast" / "BRK-B" / "2024-01-02.parquet"
    )


@pytest.mark.parametrize("ticker", HOSTILE_TICKERS)
def test_hostile_tickers_never_become_paths(tmp_path: Path, ticker: str) -> None:
    with pytest.raises(InvalidTickerError):
        partition_path(tmp_path, "raw_prices", ticker)
    with pytest.raises(InvalidTickerError):
        partition_path(tmp_path, "daily_forecast", ticker, "2024-01-02")


@pytest.mark.parametrize("asset", ["../raw_prices", "raw/prices", "raw prices", "", "..", "a.b"])
def test_hostile_asset_names_are_rejected(tmp_path: Path, asset: str) -> None:
    with pytest.raises(ValueError, match="Invalid asset name"):
        partition_path(tmp_path, asset, "AAPL")


@pytest.mark.parametrize("day", ["../../etc", "2024-13-01", "2024-01-02/../x", "yesterday", ""])
def test_hostile_dates_are_rejected(tmp_path: Path, day: str) -> None:
    with pytest.raises(ValueError, match="Invalid date partition"):
        partition_path(tmp_path, "daily_forecast", "AAPL", day)


def test_a_date_needs_a_ticker(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a ticker"):
        partition_path(tmp_path, "daily_forecast", None, "2024-01-02")


@pytest.mark.parametrize("ticker", ["AAPL", "BRK-B", "BRK.B", "^GSPC", "X"])
def test_valid_paths_stay_inside_the_base(tmp_path: Path, ticker: str) -> None:
    base = tmp_path.resolve()
    for path in (
        partition_path(base, "raw_prices", ticker),
        partition_path(base, "daily_forecast", ticker, "2024-02-29"),
    ):
        assert path.resolve().is_relative_to(base)
        assert ".." not in path.relative_to(base).parts


def test_lake_resource_reads_what_it_wrote(tmp_path: Path) -> None:
    lake = LakeResource(base_dir=str(tmp_path))
    frame = pl.DataFrame({"date": [date(2024, 1, 2)], "close": [1.5], "ticker": ["AAPL"]})
    lake.write(frame, "raw_prices", "AAPL")
    lake.write(frame.with_columns(ticker=pl.lit("MSFT")), "raw_prices", "MSFT")
    assert lake.partitions("raw_prices") == ["AAPL", "MSFT"]
    assert lake.read("raw_prices", "AAPL").equals(frame)
    assert lake.read_many("raw_prices")["ticker"].to_list() == ["AAPL", "MSFT"]
    assert lake.read_if_exists("raw_prices", "JNJ") is None
    with pytest.raises(LakeReadError, match=r"raw_prices\[JNJ\] has not been materialized"):
        lake.read("raw_prices", "JNJ")


# --- atomic writes ----------------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_leaves_the_previous_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = partition_path(tmp_path, "raw_prices", "AAPL")
    atomic_write_parquet(pl.DataFrame({"x": list(range(1000))}), path)
    before = _digest(path)

    def disk_full(*args, **kwargs) -> None:
        raise OSError("disk full")

    # The new bytes are (partly) on disk in the temp file when the write fails.
    monkeypatch.setattr(os, failing, disk_full)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_parquet(pl.DataFrame({"x": [-1] * 5000}), path)
    monkeypatch.undo()
    assert _digest(path) == before
    assert pl.read_parquet(path)["x"].to_list() == list(range(1000))
    assert sorted(p.name for p in path.parent.iterdir()) == ["AAPL.parquet"]


def test_stray_temp_files_are_never_read_as_the_partition(tmp_path: Path) -> None:
    lake = LakeResource(base_dir=str(tmp_path))
    good = pl.DataFrame({"x": list(range(100)), "ticker": "AAPL"})
    path = lake.write(good, "raw_prices", "AAPL")
    # What a writer killed mid-write leaves: half a Parquet file under the temp name.
    stray = path.with_name(f".{path.name}.0123456789abcdef.tmp")
    stray.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert lake.partitions("raw_prices") == ["AAPL"]
    assert lake.read("raw_prices", "AAPL").equals(good)
    # serving/ and DuckDB read the lake by glob: the temp name does not match it.
    with duckdb.connect() as connection:
        rows = connection.execute(
            "select count(*) from read_parquet(?)", [str(tmp_path / "raw_prices" / "*.parquet")]
        ).fetchone()[0]
    assert rows == 100


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import numpy as np
    import polars as pl

    from stock_assets.lake import atomic_write_parquet

    path, rows = Path(sys.argv[1]), int(sys.argv[2])
    noise = np.random.default_rng(0).random(rows)  # incompressible: each write takes a while
    version = int(sys.argv[3])
    while True:
        version += 1
        frame = pl.DataFrame(
            {"version": np.full(rows, version), "x": np.arange(rows) + version, "noise": noise}
        )
        atomic_write_parquet(frame, path)
        print(version, flush=True)
    """
)


@pytest.mark.slow
def test_a_writer_killed_at_random_moments_leaves_one_complete_version(tmp_path: Path) -> None:
    rows = 2_000_000
    lake = LakeResource(base_dir=str(tmp_path / "lake"))
    path = lake.path("raw_prices", "AAPL")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    chooser = random.Random(20240628)
    versions_seen: list[int] = []
    for attempt in range(4):
        start_version = attempt * 1000
        writer = subprocess.Popen(
            [sys.executable, str(script), str(path), str(rows), str(start_version)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            first = writer.stdout.readline()  # one complete version exists from here on
            assert first.strip() == str(start_version + 1), "writer died before its first write"
            # Kill somewhere in the next few writes: most of a loop is spent inside the write.
            delay = chooser.uniform(0.02, 0.6)
            try:
                writer.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                pass
            assert writer.poll() is None, "the writer must still be running when it is killed"
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait(timeout=30)
        finally:
            if writer.poll() is None:
                writer.kill()
            writer.stdout.close()
        assert writer.returncode == -signal.SIGKILL

        frame = lake.read("raw_prices", "AAPL")
        assert frame.height == rows
        [version] = frame["version"].unique().to_list()
        assert version > start_version  # this writer's version, never the previous writer's
        assert (frame["x"] - frame["version"]).equals(pl.Series("x", range(rows), dtype=pl.Int64))
        assert lake.partitions("raw_prices") == ["AAPL"]
        versions_seen.append(version)

    # Every stray file left by a kill is a temp name, never a partition.
    leftovers = [p.name for p in path.parent.iterdir() if p.name != "AAPL.parquet"]
    assert all(name.startswith(".AAPL.parquet.") and name.endswith(".tmp") for name in leftovers)
    assert len(set(versions_seen)) == 4


# --- a failing materialization keeps the previous partition -----------------------------------


def test_a_failing_materialization_leaves_the_previous_partition_byte_identical(
    materialize, resources, csv_source, csv_prices_dir: Path, project_home: Path
) -> None:
    res = resources(price_source=csv_source)
    assert materialize(["raw_prices", "price_indicators"], res, "AAPL").success
    lake = project_home / "lake"
    stored = {p: _digest(p) for p in lake.rglob("*.parquet")}
    assert {p.relative_to(lake).as_posix() for p in stored} == {
        "raw_prices/AAPL.parquet",
        "price_indicators/AAPL.parquet",
    }
    csv = csv_prices_dir / "AAPL.csv"
    good_csv = csv.read_text()

    # 1. The source raises: a corrupt file.
    csv.write_bytes(b"\x00\x01\x02 not a price file \xff\n\x00")
    result = materialize(["raw_prices", "price_indicators"], res, "AAPL")
    assert not result.success
    assert "PriceSourceError: csv:" in materialize.failures(result)["raw_prices"]
    assert {p: _digest(p) for p in lake.rglob("*.parquet")} == stored

    # 2. A blocking check fails on the new rows: a bar whose high is below its close.
    csv.write_text(good_csv + "2023-10-30,170.0,150.0,165.0,168.0,168.0,50000000\n")
    result = materialize(["raw_prices", "price_indicators"], res, "AAPL")
    assert not result.success
    assert (
        "data-quality checks failed (ohlc_consistent)" in materialize.failures(result)["raw_prices"]
    )
    assert {p: _digest(p) for p in lake.rglob("*.parquet")} == stored
    assert not [p for p in lake.rglob("*") if p.name.endswith(".tmp")]
