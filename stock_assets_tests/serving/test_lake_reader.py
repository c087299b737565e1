"""The reader under the API: parsed files are reused only while the file is unchanged, listings
are re-read when a folder changes (and not trusted inside the racy window), market-closed
partitions are skipped, and missing data is told apart from an unknown ticker."""

from __future__ import annotations

import os
from datetime import date

import polars as pl
import pytest

from serving import lake_reader
from serving.lake_reader import (
    DAILY_FORECAST,
    LakeDataError,
    LakeReader,
    NotMaterializedError,
    UnknownTickerError,
)
from stock_assets.lake import partition_path
from stock_assets.tickers import InvalidTickerError


@pytest.fixture()
def settled_clock(monkeypatch):
    """Every file counts as written long ago (the racy window is tested on its own)."""
    real = lake_reader.time.time_ns
    monkeypatch.setattr(lake_reader.time, "time_ns", lambda: real() + 60_000_000_000)


def test_a_parsed_file_is_reused_until_the_file_is_replaced(writable_lake, pipeline, settled_clock):
    reader = LakeReader(writable_lake.dir)
    first = reader.latest(DAILY_FORECAST, "AAPL")
    assert reader.latest(DAILY_FORECAST, "AAPL") is first  # cached object, no re-read
    pipeline.write_crafted_forecast(
        writable_lake.dir, "AAPL", date(2024, 7, 3), 11.0, model_version="9"
    )
    second = reader.latest(DAILY_FORECAST, "AAPL")
    assert second is not first
    assert second.signature != first.signature
    assert second.frame["model_version"].to_list() == ["9"] * 5
    assert second.frame["last_close"][0] == 11.0


def test_a_new_partition_is_listed_at_once(writable_lake, pipeline, settled_clock):
    reader = LakeReader(writable_lake.dir)
    assert reader.latest(DAILY_FORECAST, "MSFT").key == "2024-07-03"
    pipeline.write_crafted_forecast(writable_lake.dir, "MSFT", date(2024, 7, 5), 400.0, "1")
    assert reader.latest(DAILY_FORECAST, "MSFT").key == "2024-07-05"
    assert reader.dates(DAILY_FORECAST, "MSFT")[-1] == "2024-07-05"


def test_a_listing_taken_inside_the_racy_window_is_not_trusted(writable_lake, monkeypatch):
    folder = str(writable_lake.dir / DAILY_FORECAST / "AAPL")
    changed = os.stat(folder).st_mtime_ns
    reader = LakeReader(writable_lake.dir)
    # Listed 1 us after the folder changed: a second change within the same clock tick would
    # keep the mtime, so this listing must be taken again next time.
    monkeypatch.setattr(lake_reader.time, "time_ns", lambda: changed + 1_000)
    keys = reader.list_keys(folder)
    racy = reader._listings[folder]
    assert not racy.trusted
    assert reader.list_keys(folder) == keys
    assert reader._listings[folder] is not racy  # re-listed, not served from the cache
    # Listed 3 s after the change: trusted until the folder's mtime moves.
    monkeypatch.setattr(lake_reader.time, "time_ns", lambda: changed + 3_000_000_000)
    reader.list_keys(folder)
    settled = reader._listings[folder]
    assert settled.trusted
    assert reader.list_keys(folder) is settled.keys
    assert reader._listings[folder] is settled


def test_latest_skips_market_closed_partitions_and_respects_on_or_before(pipeline_lake):
    reader = LakeReader(pipeline_lake.dir)
    keys = reader.dates(DAILY_FORECAST, "AAPL")
    assert keys[-1] == "2024-07-04"  # the holiday partition exists ...
    assert reader.latest(DAILY_FORECAST, "AAPL").key == "2024-07-03"  # ... but holds no rows
    assert reader.latest(DAILY_FORECAST, "AAPL", date(2024, 6, 19)).key == "2024-06-18"
    assert [p.key for p in reader.recent(DAILY_FORECAST, "AAPL", 3)] == [
        "2024-07-01",
        "2024-07-02",
        "2024-07-03",
    ]
    between = reader.between(DAILY_FORECAST, "AAPL", date(2024, 6, 17), date(2024, 6, 21))
    assert [p.key for p in between] == ["2024-06-17", "2024-06-18", "2024-06-20", "2024-06-21"]


def test_unknown_ticker_and_missing_asset_are_different_errors(pipeline_lake):
    reader = LakeReader(pipeline_lake.dir)
    with pytest.raises(UnknownTickerError, match="Unknown ticker 'NVDA'"):
        reader.latest(DAILY_FORECAST, "NVDA")
    with pytest.raises(NotMaterializedError, match="materialize agent_report for MSFT"):
        reader.latest("agent_report", "MSFT")
    with pytest.raises(InvalidTickerError):
        reader.latest(DAILY_FORECAST, "../raw_prices")
    assert reader.tickers() == ("AAPL", "MSFT")
    assert reader.is_known("GSPC") and reader.is_known("^GSPC")


def test_stray_files_in_the_lake_are_ignored(writable_lake):
    folder = writable_lake.dir / DAILY_FORECAST / "AAPL"
    (folder / ".2024-07-05.parquet.abc.tmp").write_bytes(b"half written")
    (folder / "notes.txt").write_text("hello")
    (folder / "not-a-date.parquet").write_bytes(b"junk")
    (writable_lake.dir / "raw_prices" / "lower.parquet").write_bytes(b"junk")
    reader = LakeReader(writable_lake.dir)
    assert "not-a-date" not in reader.dates(DAILY_FORECAST, "AAPL")
    assert reader.latest(DAILY_FORECAST, "AAPL").key == "2024-07-03"
    assert reader.tickers() == ("AAPL", "MSFT")


def test_a_corrupt_or_off_contract_file_raises_lake_data_error(writable_lake):
    path = partition_path(writable_lake.dir, DAILY_FORECAST, "AAPL", "2024-07-03")
    reader = LakeReader(writable_lake.dir)
    pl.read_parquet(path).drop("predicted_close").write_parquet(path)
    with pytest.raises(LakeDataError, match=r"missing columns \['predicted_close'\]"):
        reader.latest(DAILY_FORECAST, "AAPL")
    path.write_bytes(b"garbage")
    with pytest.raises(LakeDataError, match=r"daily_forecast\[2024-07-03\] cannot be read"):
        reader.latest(DAILY_FORECAST, "AAPL")


def test_answers_are_rebuilt_only_after_the_revalidation_window(monkeypatch, tmp_path):
    clock = [0]
    monkeypatch.setattr(lake_reader.time, "monotonic_ns", lambda: clock[0])
    reader = LakeReader(tmp_path, revalidate_seconds=0.1)
    builds: list[int] = []

    def build() -> bytes:
        builds.append(clock[0])
        return str(len(builds)).encode()

    assert reader.answer("k", build) == b"1"
    clock[0] = 99_000_000  # 99 ms later: still the cached answer
    assert reader.answer("k", build) == b"1"
    clock[0] = 100_000_000  # 100 ms: re-checked against the lake
    assert reader.answer("k", build) == b"2"
    assert builds == [0, 100_000_000]
    strict = LakeReader(tmp_path, revalidate_seconds=0)
    assert [strict.answer("k", build) for _ in range(2)] == [b"3", b"4"]


def test_the_file_cache_is_bounded(pipeline_lake):
    reader = LakeReader(pipeline_lake.dir, max_files=16)
    reader.between(DAILY_FORECAST, "AAPL", date(2024, 1, 1))
    assert len(reader._files) == 16


def test_a_file_written_moments_ago_is_not_cached_until_it_settles(
    writable_lake, pipeline, monkeypatch
):
    # A rewrite within the same clock tick could reuse the inode, mtime and size of the file
    # just read, so a file younger than the racy window is re-read on every access.
    path = pipeline.write_crafted_forecast(writable_lake.dir, "AAPL", date(2024, 7, 3), 12.0, "1")
    written = os.stat(path).st_mtime_ns
    reader = LakeReader(writable_lake.dir)
    monkeypatch.setattr(lake_reader.time, "time_ns", lambda: written + 1_000)
    first = reader.latest(DAILY_FORECAST, "AAPL")
    second = reader.latest(DAILY_FORECAST, "AAPL")
    assert first is not second and first.identity != second.identity
    assert len(first.signature) == 4
    monkeypatch.setattr(lake_reader.time, "time_ns", lambda: written + 3_000_000_000)
    settled = reader.latest(DAILY_FORECAST, "AAPL")
    assert len(settled.signature) == 3
    assert reader.latest(DAILY_FORECAST, "AAPL") is settled
