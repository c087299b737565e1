"""The lake's IO manager writing range and panel outputs: one file per (ticker, date), and never a
file the run did not compute."""

from pathlib import Path

import dagster as dg
import polars as pl

from stock_assets.lake import PanelFrames, ParquetLakeIOManager, partition_path
from stock_assets.partitions import ticker_partitions, trading_date_partitions

RANGE = {
    "dagster/asset_partition_range_start": "2024-06-03",
    "dagster/asset_partition_range_end": "2024-06-05",
}


def panel_asset(tickers: list[str], stray_date: bool = False) -> dg.AssetsDefinition:
    @dg.asset(
        name="panel",
        partitions_def=trading_date_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def panel(context: dg.AssetExecutionContext) -> PanelFrames:
        days = [*context.partition_keys, *(["2024-07-01"] if stray_date else [])]
        return PanelFrames(
            {(day, t): pl.DataFrame({"day": [day], "ticker": [t]}) for day in days for t in tickers}
        )

    return panel


def run(tmp_path: Path, asset, tags=RANGE) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("ticker", ["AAPL", "MSFT"])
        return dg.materialize(
            [asset],
            resources={"io_manager": ParquetLakeIOManager(base_dir=str(tmp_path))},
            instance=instance,
            tags=tags,
            raise_on_error=False,
        )


def test_a_panel_range_is_written_as_one_file_per_ticker_and_date(tmp_path: Path):
    assert run(tmp_path, panel_asset(["AAPL", "MSFT"])).success
    for day in ["2024-06-03", "2024-06-04", "2024-06-05"]:
        for ticker in ("AAPL", "MSFT"):
            frame = pl.read_parquet(partition_path(tmp_path, "panel", ticker, day))
            assert frame.to_dicts() == [{"day": day, "ticker": ticker}]


def test_a_one_ticker_panel_run_leaves_other_tickers_files_untouched(tmp_path: Path):
    assert run(tmp_path, panel_asset(["AAPL", "MSFT"])).success
    msft = partition_path(tmp_path, "panel", "MSFT", "2024-06-04")
    before = (msft.stat().st_mtime_ns, msft.read_bytes())
    assert run(tmp_path, panel_asset(["AAPL"])).success
    assert (msft.stat().st_mtime_ns, msft.read_bytes()) == before  # not rewritten


def test_a_panel_output_with_a_date_outside_the_run_writes_nothing(tmp_path: Path):
    result = run(tmp_path, panel_asset(["AAPL"], stray_date=True))
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "outside the run's partitions" in str(
        failure.step_failure_data.error.cause or failure.step_failure_data.error
    )
    assert not (tmp_path / "panel").exists()


def ticker_range_asset(extra: bool) -> dg.AssetsDefinition:
    @dg.asset(name="per_ticker", partitions_def=ticker_partitions,
              backfill_policy=dg.BackfillPolicy.single_run())
    def per_ticker(context: dg.AssetExecutionContext) -> dict[str, pl.DataFrame]:
        keys = [*context.partition_keys, *(["NVDA"] if extra else [])]
        return {key: pl.DataFrame({"ticker": [key]}) for key in keys[:1 if not extra else None]}

    return per_ticker


def test_a_ticker_range_may_leave_a_ticker_out_but_never_add_one(tmp_path: Path):
    tags = {"dagster/asset_partition_range_start": "AAPL", "dagster/asset_partition_range_end": "MSFT"}
    assert run(tmp_path, ticker_range_asset(extra=False), tags).success
    assert partition_path(tmp_path, "per_ticker", "AAPL").exists()
    assert not partition_path(tmp_path, "per_ticker", "MSFT").exists()  # left out: kept as it was
    result = run(tmp_path, ticker_range_asset(extra=True), tags)
    assert not result.success
    assert not partition_path(tmp_path, "per_ticker", "NVDA").exists()


def test_a_panel_asset_must_return_panel_frames(tmp_path: Path):
    @dg.asset(name="bad_panel", partitions_def=trading_date_partitions)
    def bad_panel() -> pl.DataFrame:
        return pl.DataFrame({"x": [1]})

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [bad_panel], partition_key="2024-06-03", instance=instance, raise_on_error=False,
            resources={"io_manager": ParquetLakeIOManager(base_dir=str(tmp_path))},
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "return PanelFrames" in str(failure.step_failure_data.error.cause or failure.step_failure_data.error)
    assert not (tmp_path / "bad_panel").exists()
