"""The lake's IO manager writing a single-run backfill: `{partition_key: frame}`, one file each."""

from pathlib import Path

import dagster as dg
import polars as pl

from stock_assets.lake import ParquetLakeIOManager, partition_path
from stock_assets.partitions import date_ticker_partitions

RANGE = {
    "dagster/asset_partition_range_start": "2024-06-03|AAPL",
    "dagster/asset_partition_range_end": "2024-06-05|AAPL",
}


def ranged_asset(drop_one: bool) -> dg.AssetsDefinition:
    @dg.asset(
        name="ranged",
        partitions_def=date_ticker_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def ranged(context: dg.AssetExecutionContext) -> dict[str, pl.DataFrame]:
        keys = list(context.partition_keys)[: -1 if drop_one else None]
        return {key: pl.DataFrame({"key": [key], "n": [i]}) for i, key in enumerate(keys)}

    return ranged


def run(tmp_path: Path, drop_one: bool) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("ticker", ["AAPL"])
        return dg.materialize(
            [ranged_asset(drop_one)],
            resources={"io_manager": ParquetLakeIOManager(base_dir=str(tmp_path))},
            instance=instance,
            tags=RANGE,
            raise_on_error=False,
        )


def test_a_range_output_is_written_as_one_file_per_partition(tmp_path: Path):
    assert run(tmp_path, drop_one=False).success
    for i, day in enumerate(["2024-06-03", "2024-06-04", "2024-06-05"]):
        frame = pl.read_parquet(partition_path(tmp_path, "ranged", "AAPL", day))
        assert frame.to_dicts() == [{"key": f"{day}|AAPL", "n": i}]


def test_a_range_output_missing_a_partition_writes_nothing(tmp_path: Path):
    result = run(tmp_path, drop_one=True)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "the run targets" in str(
        failure.step_failure_data.error.cause or failure.step_failure_data.error
    )
    assert not (tmp_path / "ranged").exists()
