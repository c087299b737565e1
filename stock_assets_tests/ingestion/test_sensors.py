"""Adding a ticker needs no code: the watchlist sensor registers it and requests its ingestion once,
and a partition added by hand (the UI's "add partition") materializes like any other."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from stock_assets.ingestion.definitions import defs as ingestion_defs
from stock_assets.ingestion.sensors import new_watchlist_tickers
from stock_assets.partitions import ticker_partitions


@pytest.fixture
def watchlist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "watchlist.yaml"
    monkeypatch.setenv("STOCK_ASSETS_WATCHLIST", str(path))
    return path


@pytest.fixture
def sensor() -> dg.SensorDefinition:
    [watchlist_sensor] = [s for s in ingestion_defs.sensors if s.name == "ticker_watchlist_sensor"]
    return watchlist_sensor


def _tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None = None):
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def _apply(result: dg.SensorResult, instance: dg.DagsterInstance) -> None:
    """What the daemon does with a tick's partition requests."""
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def test_new_watchlist_tickers_keeps_order() -> None:
    assert new_watchlist_tickers(["MSFT", "AAPL", "JNJ"], {"AAPL"}) == ["MSFT", "JNJ"]
    assert new_watchlist_tickers(["AAPL"], {"AAPL", "MSFT"}) == []


def test_sensor_registers_new_tickers_once(sensor, instance, watchlist: Path) -> None:
    instance.add_dynamic_partitions(ticker_partitions.name, ["AAPL"])
    watchlist.write_text("tickers: [AAPL, MSFT, ^GSPC, BRK-B]\n")

    first = _tick(sensor, instance)
    assert isinstance(first, dg.SensorResult)
    assert [(r.partition_key, r.run_key) for r in first.run_requests] == [
        ("MSFT", "register-MSFT"),
        ("BRK-B", "register-BRK-B"),
    ]
    [request] = first.dynamic_partitions_requests
    assert request.partitions_def_name == "ticker"
    assert list(request.partition_keys) == ["MSFT", "BRK-B"]

    # A tick before the daemon applied the request asks for the same run keys (deduplicated).
    assert [r.run_key for r in _tick(sensor, instance).run_requests] == [
        "register-MSFT",
        "register-BRK-B",
    ]

    _apply(first, instance)
    assert instance.get_dynamic_partitions("ticker") == ["AAPL", "MSFT", "BRK-B"]
    second = _tick(sensor, instance)
    assert isinstance(second, dg.SkipReason)
    assert "All 3 watchlist tickers are registered" in second.skip_message


def test_sensor_rejects_a_bad_watchlist_and_registers_nothing(
    sensor, instance, watchlist: Path
) -> None:
    watchlist.write_text("tickers: [MSFT, ../etc]\n")
    result = _tick(sensor, instance)
    assert isinstance(result, dg.SkipReason)
    assert "Invalid ticker '../etc'" in result.skip_message
    assert str(watchlist) in result.skip_message
    assert instance.get_dynamic_partitions("ticker") == []


def test_sensor_without_a_watchlist_skips(sensor, instance, watchlist: Path) -> None:
    result = _tick(sensor, instance)
    assert isinstance(result, dg.SkipReason)
    assert "All 0 watchlist tickers" in result.skip_message


def test_a_sensor_request_materializes_the_new_ticker(
    sensor, instance, watchlist: Path, materialize, resources
) -> None:
    watchlist.write_text("tickers: [NVDA]\n")
    result = _tick(sensor, instance)
    _apply(result, instance)
    [request] = result.run_requests
    run = materialize(["raw_prices", "price_indicators"], resources(), request.partition_key)
    assert run.success
    assert set(instance.get_materialized_partitions(dg.AssetKey("price_indicators"))) == {"NVDA"}


def test_a_partition_added_by_hand_materializes(instance, materialize, resources) -> None:
    # The UI's "add partition" calls the same instance API.
    instance.add_dynamic_partitions(ticker_partitions.name, ["TSLA"])
    assert ticker_partitions.get_partition_keys(dynamic_partitions_store=instance) == ["TSLA"]
    result = materialize(["raw_prices", "price_indicators"], resources(), "TSLA")
    assert result.success
    lake = resources()["lake"]
    assert lake.partitions("raw_prices") == ["TSLA"]
    assert lake.read("price_indicators", "TSLA")["ticker"].unique().to_list() == ["TSLA"]
