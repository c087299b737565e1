"""The code location loads, and the data layer's assets, checks, job and sensor are wired as the
architecture says (later stages only add to these sets)."""

from __future__ import annotations

import dagster as dg
import pytest

from stock_assets.definitions import defs
from stock_assets.partitions import ticker_partitions

DATA_ASSET_GROUPS = {
    "raw_prices": "ingestion",
    "market_index_prices": "ingestion",
    "price_indicators": "features",
    "market_index_indicators": "features",
    "feast_features": "features",
}
QUALITY_CHECKS = {
    "ohlc_consistent": True,
    "no_missing_values": True,
    "unique_dates": True,
    "no_calendar_gaps": False,
    "fresh": False,
    "no_unexplained_jumps": False,
    "no_split_jumps": True,
}


@pytest.fixture(scope="module")
def asset_graph():
    return defs.resolve_asset_graph()


def test_code_location_is_loadable() -> None:
    dg.Definitions.validate_loadable(defs)


def test_data_layer_assets_and_groups(asset_graph) -> None:
    keys = {key.to_user_string() for key in asset_graph.get_all_asset_keys()}
    assert set(DATA_ASSET_GROUPS) <= keys
    for name, group in DATA_ASSET_GROUPS.items():
        assert asset_graph.get(dg.AssetKey(name)).group_name == group, name


def test_per_ticker_assets_share_the_ticker_partitions(asset_graph) -> None:
    for name in ("raw_prices", "price_indicators"):
        partitions = asset_graph.get(dg.AssetKey(name)).partitions_def
        assert partitions == ticker_partitions, name
    for name in ("market_index_prices", "market_index_indicators", "feast_features"):
        assert asset_graph.get(dg.AssetKey(name)).partitions_def is None, name


def test_lineage_of_the_data_layer(asset_graph) -> None:
    def parents(name: str) -> set[str]:
        return {k.to_user_string() for k in asset_graph.get(dg.AssetKey(name)).parent_keys}

    assert parents("price_indicators") == {"raw_prices"}
    assert parents("market_index_indicators") == {"market_index_prices"}
    assert parents("feast_features") == {"price_indicators", "market_index_indicators"}


@pytest.mark.parametrize("asset", ["raw_prices", "market_index_prices"])
def test_quality_checks_and_which_block(asset_graph, asset: str) -> None:
    specs = {
        key.name: asset_graph.get_check_spec(key)
        for key in asset_graph.asset_check_keys
        if key.asset_key == dg.AssetKey(asset)
    }
    assert {name: spec.blocking for name, spec in specs.items()} == QUALITY_CHECKS
    expected_partitions = ticker_partitions if asset == "raw_prices" else None
    for spec in specs.values():
        # Per-ticker checks are recorded per partition: a pass cannot hide another ticker's fail.
        assert spec.partitions_def == expected_partitions


def test_ticker_data_job_and_watchlist_sensor() -> None:
    job = defs.resolve_job_def("ticker_data_job")
    assert job.partitions_def == ticker_partitions
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "raw_prices",
        "price_indicators",
    }
    sensor = defs.resolve_sensor_def("ticker_watchlist_sensor")
    assert sensor.job_name == "ticker_data_job"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_shared_resources_are_bound_once() -> None:
    assert {"io_manager", "lake", "price_source", "feature_store"} <= set(defs.resources)
