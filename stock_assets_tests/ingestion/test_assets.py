"""raw_prices / price_indicators on a real Dagster instance: idempotent and incremental refreshes,
bad tickers rejected before anything is written, and the quality checks passing, failing and
blocking only the ticker they failed for."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from stock_assets.features.indicators import INDICATOR_COLUMNS, WARMUP_ROWS
from stock_assets.ingestion.checks import QUALITY_RULES, quality_check_results
from stock_assets.ingestion.quality import trading_sessions
from stock_assets.ingestion.sources import PRICE_SCHEMA, CsvPriceSource, PriceSourceResource

DATA = ["raw_prices", "price_indicators"]
BLOCKING = {"ohlc_consistent", "no_missing_values", "unique_dates", "no_split_jumps"}


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    [materialization] = result.asset_materializations_for_node(asset)
    return {key: value.value for key, value in materialization.metadata.items()}


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _recorded_checks(instance: dg.DagsterInstance, asset: str, partition: str | None):
    """The latest evaluation of each quality check of `asset` for one partition, from storage."""
    from dagster._core.event_api import PartitionKeyFilter

    keys = [dg.AssetCheckKey(dg.AssetKey(asset), rule.name) for rule in QUALITY_RULES]
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        keys, partition_filter=PartitionKeyFilter(key=partition)
    )
    return {key.name: record for key, record in records.items()}


def _csv_rows(path: Path) -> pl.DataFrame:
    return CsvPriceSource(path.parent).fetch(path.stem, date(1900, 1, 1), None)


def _materialized_partitions(instance: dg.DagsterInstance, asset: str) -> set[str]:
    return set(instance.get_materialized_partitions(dg.AssetKey(asset)))


def _lake_files(home: Path) -> list[str]:
    lake = home / "lake"
    return sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*") if p.is_file())


# --- idempotent and incremental ---------------------------------------------------------------


def test_materializing_twice_is_idempotent(
    materialize, resources, csv_source, csv_prices_dir: Path, project_home: Path
) -> None:
    res = resources(price_source=csv_source)
    first = materialize(DATA, res, "AAPL")
    assert first.success
    lake = res["lake"]
    prices, indicators = lake.read("raw_prices", "AAPL"), lake.read("price_indicators", "AAPL")
    expected = _csv_rows(csv_prices_dir / "AAPL.csv")
    assert prices.equals(expected)
    assert dict(prices.schema) == PRICE_SCHEMA
    assert indicators.height == prices.height - WARMUP_ROWS
    assert set(INDICATOR_COLUMNS) <= set(indicators.columns)
    assert _metadata(first, "raw_prices")["new_rows"] == expected.height

    second = materialize(DATA, res, "AAPL")
    assert second.success
    assert lake.read("raw_prices", "AAPL").equals(prices)
    assert lake.read("price_indicators", "AAPL").equals(indicators)
    assert lake.read("raw_prices", "AAPL")["date"].is_unique().all()
    meta = _metadata(second, "raw_prices")
    assert (meta["fetched_rows"], meta["new_rows"], meta["dagster/row_count"]) == (
        0,
        0,
        prices.height,
    )
    assert _lake_files(project_home) == ["price_indicators/AAPL.parquet", "raw_prices/AAPL.parquet"]


def test_rematerializing_a_source_with_nothing_new_succeeds(materialize, resources) -> None:
    """The synthetic market ends on a fixed day: asking past it is "nothing new", not an error."""
    res = resources()
    assert materialize(DATA, res, "PG").success
    stored = res["lake"].read("raw_prices", "PG")
    again = materialize(DATA, res, "PG")
    assert again.success
    assert _metadata(again, "raw_prices")["new_rows"] == 0
    assert res["lake"].read("raw_prices", "PG").equals(stored)


def test_only_new_dates_are_fetched(
    materialize, resources, csv_source, csv_prices_dir: Path
) -> None:
    path = csv_prices_dir / "MSFT.csv"
    full = pl.read_csv(path, try_parse_dates=True)
    cutoff = date(2023, 6, 30)
    full.filter(pl.col("date") <= cutoff).write_csv(path)
    res = resources(price_source=csv_source)
    assert materialize(DATA, res, "MSFT").success
    stored = res["lake"].read("raw_prices", "MSFT")
    assert stored["date"].max() == cutoff

    full.write_csv(path)  # the vendor now has three more months
    result = materialize(DATA, res, "MSFT")
    assert result.success
    new_rows = full.filter(pl.col("date") > cutoff).height
    # Every NYSE session from 2023-07-03 to the file's last day (2023-10-27): 83 rows.
    assert new_rows == trading_sessions(cutoff + timedelta(days=1), full["date"].max()).len() == 83
    meta = _metadata(result, "raw_prices")
    assert meta["fetched_from"] == str(cutoff + timedelta(days=1))
    assert meta["fetched_rows"] == new_rows
    assert meta["new_rows"] == new_rows
    assert res["lake"].read("raw_prices", "MSFT").equals(_csv_rows(path))
    indicators = res["lake"].read("price_indicators", "MSFT")
    assert indicators["date"].max() == full["date"].max()


def test_market_index_assets(materialize, resources, csv_source) -> None:
    res = resources(price_source=csv_source)
    result = materialize(["market_index_prices", "market_index_indicators"], res)
    assert result.success
    prices = res["lake"].read("market_index_prices")
    assert prices["ticker"].unique().to_list() == ["GSPC"]
    assert res["lake"].read("market_index_indicators").height == prices.height - WARMUP_ROWS
    assert {e.check_name for e in result.get_asset_check_evaluations()} == {
        rule.name for rule in QUALITY_RULES
    }


# --- bad tickers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("partition", "message"),
    [
        ("../etc", "Invalid ticker '../etc'"),
        ("aapl", "Did you mean 'AAPL'?"),
        ("AAPL;DROP", "Invalid ticker 'AAPL;DROP'"),
        (" AAPL", "surrounding whitespace"),
        ("ZZZZ", "csv: no file ZZZZ.csv for ticker ZZZZ"),
        ("GSPC", "is the market index: materialize market_index_prices"),
    ],
)
def test_bad_ticker_partitions_fail_clearly_and_write_nothing(
    materialize, resources, csv_source, instance, project_home: Path, partition: str, message: str
) -> None:
    # Added the way the UI's "add partition" would: Dagster itself accepts any text.
    result = materialize(DATA, resources(price_source=csv_source), partition)
    assert not result.success
    failures = materialize.failures(result)
    assert list(failures) == ["raw_prices"]
    assert message in failures["raw_prices"]
    assert not result.asset_materializations_for_node("raw_prices")
    assert not (project_home / "lake").exists() or _lake_files(project_home) == []
    assert _materialized_partitions(instance, "raw_prices") == set()
    assert _materialized_partitions(instance, "price_indicators") == set()


# --- quality checks ---------------------------------------------------------------------------


def test_checks_pass_on_real_data_and_are_recorded_per_partition(
    materialize, resources, csv_source, instance
) -> None:
    result = materialize(DATA, resources(price_source=csv_source), "JNJ")
    assert result.success
    evaluations = _evaluations(result)
    passing = BLOCKING | {"no_calendar_gaps", "no_unexplained_jumps"}
    assert {name for name, e in evaluations.items() if e.passed} == passing
    # The CSVs end in 2023: stale, which warns and does not block.
    assert not evaluations["fresh"].passed
    assert evaluations["fresh"].severity == dg.AssetCheckSeverity.WARN
    assert "sessions behind" in evaluations["fresh"].description
    recorded = _recorded_checks(instance, "raw_prices", "JNJ")
    assert {name: r.status.value for name, r in recorded.items()} == {
        **{name: "SUCCEEDED" for name in passing},
        "fresh": "FAILED",
    }
    assert {r.partition for r in recorded.values()} == {"JNJ"}


def test_freshness_passes_on_an_up_to_date_source(materialize, resources) -> None:
    # The synthetic market ends at the last completed NYSE session when no end is given.
    source = PriceSourceResource(kind="synthetic", synthetic_start="2025-06-02")
    result = materialize(["raw_prices"], resources(price_source=source), "AAPL")
    assert result.success
    evaluations = _evaluations(result)
    assert all(e.passed for e in evaluations.values()), {
        name: e.description for name, e in evaluations.items()
    }
    # At most today's session, whose close may not have passed yet.
    assert evaluations["fresh"].metadata["lag_sessions"].value <= 1


def _rewrite(path: Path, change: pl.Expr, on: date, column: str) -> None:
    frame = pl.read_csv(path, try_parse_dates=True)
    frame.with_columns(
        pl.when(pl.col("date") == on).then(change).otherwise(pl.col(column)).alias(column)
    ).write_csv(path)


BAD_DAY = date(2022, 3, 1)


@pytest.mark.parametrize(
    ("column", "change", "check", "metadata"),
    [
        ("high", pl.col("close") - 5.0, "ohlc_consistent", {"high_below_open_or_close": 1}),
        ("open", pl.lit(float("nan")), "no_missing_values", {"n_nan": 1, "bad_columns": "open"}),
        (
            "volume",
            pl.lit(None, pl.Int64),
            "no_missing_values",
            {"n_null": 1, "bad_columns": "volume"},
        ),
    ],
    ids=["high_below_close", "nan_open", "missing_volume"],
)
def test_a_blocking_check_fails_on_crafted_data_and_stops_only_that_ticker(
    materialize,
    resources,
    csv_source,
    csv_prices_dir: Path,
    instance,
    column: str,
    change: pl.Expr,
    check: str,
    metadata: dict[str, object],
) -> None:
    _rewrite(csv_prices_dir / "MSFT.csv", change, BAD_DAY, column)
    res = resources(price_source=csv_source)

    bad = materialize(DATA, res, "MSFT")
    assert not bad.success
    assert f"data-quality checks failed ({check})" in materialize.failures(bad)["raw_prices"]
    evaluation = _evaluations(bad)[check]
    assert not evaluation.passed and evaluation.blocking
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    for key, value in metadata.items():
        assert evaluation.metadata[key].value == value
    assert evaluation.metadata["first_bad_dates"].value == str(BAD_DAY)
    failed_checks = {name for name, e in _evaluations(bad).items() if not e.passed} - {"fresh"}
    assert failed_checks == {check}
    # Downstream of the failed ticker: nothing ran, nothing was written.
    assert not bad.asset_materializations_for_node("price_indicators")
    assert res["lake"].read_if_exists("raw_prices", "MSFT") is None
    assert res["lake"].read_if_exists("price_indicators", "MSFT") is None

    good = materialize(DATA, res, "AAPL")
    assert good.success
    assert _materialized_partitions(instance, "price_indicators") == {"AAPL"}
    assert _materialized_partitions(instance, "raw_prices") == {"AAPL"}

    # The evaluations are stored per ticker: AAPL's pass does not overwrite MSFT's failure.
    assert _recorded_checks(instance, "raw_prices", "MSFT")[check].status.value == "FAILED"
    assert _recorded_checks(instance, "raw_prices", "AAPL")[check].status.value == "SUCCEEDED"


def test_a_nan_volume_is_rejected_by_the_source(
    materialize, resources, csv_source, csv_prices_dir: Path
) -> None:
    # Volume is an integer column: NaN cannot be stored, so the source refuses the file.
    _rewrite(csv_prices_dir / "MSFT.csv", pl.lit(float("nan")), BAD_DAY, "volume")
    result = materialize(DATA, resources(price_source=csv_source), "MSFT")
    assert not result.success
    assert "csv:MSFT.csv: unparseable values" in materialize.failures(result)["raw_prices"]


def test_a_duplicated_date_with_conflicting_values_fails_naming_the_date(
    materialize, resources, csv_source, csv_prices_dir: Path
) -> None:
    """Issue #15: a second row for one date saying close 999 used to replace the true bar (the
    source kept "the last one") and pass every check. Now it fails ingestion; nothing is written."""
    path = csv_prices_dir / "MSFT.csv"
    frame = pl.read_csv(path, try_parse_dates=True)
    true_bar = frame.filter(pl.col("date") == BAD_DAY)
    duplicate = true_bar.with_columns(close=pl.lit(999.0), high=pl.lit(1000.0))
    pl.concat([frame, duplicate]).write_csv(path)

    res = resources(price_source=csv_source)
    result = materialize(DATA, res, "MSFT")
    assert not result.success
    high, close = true_bar["high"][0], true_bar["close"][0]
    assert materialize.failures(result)["raw_prices"].strip().endswith(
        f"csv:MSFT.csv: 1 date with conflicting rows: {BAD_DAY} (high {high} vs 1000.0, close "
        f"{close} vs 999.0); nothing was written (fix the source: which bar is true cannot be "
        "guessed)."
    )
    assert res["lake"].read_if_exists("raw_prices", "MSFT") is None

    # An identical repeat of the bar is harmless: dropped, and the day is stored once.
    pl.concat([frame, true_bar]).write_csv(path)
    assert materialize(DATA, res, "MSFT").success
    stored = res["lake"].read("raw_prices", "MSFT")
    assert stored.height == frame.height
    assert stored.filter(pl.col("date") == BAD_DAY)["close"].to_list() == [close]


def _scale_from(path: Path, first: date, factor: float, columns: tuple[str, ...]) -> None:
    """Multiply `columns` by `factor` on `first` and every later day (an unadjusted split)."""
    frame = pl.read_csv(path, try_parse_dates=True)
    frame.with_columns(
        pl.when(pl.col("date") >= first).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c)
        for c in columns
    ).write_csv(path)


def test_a_close_jump_without_adj_close_warns_naming_the_dates(
    materialize, resources, csv_source, csv_prices_dir: Path, instance
) -> None:
    # One bar 1.5x too high in open/high/low/close, adj_close as it was: the jump up and the
    # fall back the next session are both beyond 10x the recent volatility and unexplained.
    path = csv_prices_dir / "MSFT.csv"
    frame = pl.read_csv(path, try_parse_dates=True)
    frame.with_columns(
        pl.when(pl.col("date") == BAD_DAY).then(pl.col(c) * 1.5).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close")
    ).write_csv(path)
    next_day = frame.filter(pl.col("date") > BAD_DAY)["date"].min()
    res = resources(price_source=csv_source)
    result = materialize(DATA, res, "MSFT")
    assert result.success  # a warning: a person should look, the run goes on
    jumps = _evaluations(result)["no_unexplained_jumps"]
    assert not jumps.passed and not jumps.blocking
    assert jumps.severity == dg.AssetCheckSeverity.WARN
    assert jumps.metadata["jump_dates"].value == f"{BAD_DAY}, {next_day}"
    assert jumps.metadata["n_jumps"].value == 2 and jumps.metadata["jump_multiple"].value == 10.0
    # The close's ratio includes the day's market move (adj_close fell 1.3 % that day).
    assert jumps.description == (
        "Price jumps: 2 days moved beyond 10x recent volatility without adj_close: "
        f"{BAD_DAY} close x1.481 vs adj_close x0.987; {next_day} close x0.679 vs adj_close x1.018."
    )
    assert _evaluations(result)["no_split_jumps"].passed  # 1.5x is no split ratio

    # The multiple is run config: at 100x recent volatility the same day passes.
    from stock_assets_tests.conftest import data_layer_assets

    lenient = dg.materialize(
        data_layer_assets(),
        selection=dg.AssetSelection.assets("raw_prices"),
        partition_key="MSFT",
        resources=res,
        instance=instance,
        run_config={"ops": {"raw_prices": {"config": {"jump_multiple": 100.0}}}},
    )
    assert _evaluations(lenient)["no_unexplained_jumps"].passed


def test_a_split_like_jump_fails_with_a_clear_message(
    materialize, resources, csv_source, csv_prices_dir: Path
) -> None:
    # A 4:1 split the source did not adjust the close for (adj_close is adjusted).
    _scale_from(csv_prices_dir / "MSFT.csv", BAD_DAY, 0.25, ("open", "high", "low", "close"))
    res = resources(price_source=csv_source)
    result = materialize(DATA, res, "MSFT")
    assert not result.success
    assert "data-quality checks failed (no_split_jumps)" in materialize.failures(result)["raw_prices"]
    split = _evaluations(result)["no_split_jumps"]
    assert not split.passed and split.blocking and split.severity == dg.AssetCheckSeverity.ERROR
    assert split.metadata["split_dates"].value == str(BAD_DAY)
    assert split.description.startswith(
        f"Split-like jumps: {BAD_DAY} close x0.247 (a 4:1 split?) while adj_close moved x0.987"
    )  # 0.247 / 0.987 = 0.25: the part of the move adj_close does not share
    assert "the close is not split-adjusted; re-fetch the history" in split.description
    assert res["lake"].read_if_exists("raw_prices", "MSFT") is None


def test_refetch_days_rereads_the_last_days_and_reports_corrections(
    materialize, resources, csv_prices_dir: Path
) -> None:
    path = csv_prices_dir / "MSFT.csv"
    original = pl.read_csv(path, try_parse_dates=True)
    plain = PriceSourceResource(kind="csv", csv_dir=str(csv_prices_dir))
    assert materialize(DATA, resources(price_source=plain), "MSFT").success
    days = original["date"].sort().to_list()
    # The vendor revises two of the last three days (a close, a volume).
    revised = original.with_columns(
        close=pl.when(pl.col("date") == days[-2]).then(pl.col("close") + 1.0)
        .otherwise(pl.col("close")),
        volume=pl.when(pl.col("date") == days[-1]).then(pl.col("volume") + 1000)
        .otherwise(pl.col("volume")),
    )  # fmt: skip
    revised.write_csv(path)
    old_close = original.filter(pl.col("date") == days[-2])["close"][0]

    # An ordinary incremental fetch asks nothing of the source: the revision is not seen.
    unchanged = materialize(DATA, resources(price_source=plain), "MSFT")
    assert _metadata(unchanged, "raw_prices")["fetched_rows"] == 0
    res = resources(price_source=PriceSourceResource(
        kind="csv", csv_dir=str(csv_prices_dir), refetch_days=3))  # fmt: skip
    assert res["lake"].read("raw_prices", "MSFT")["close"][-2] == old_close

    result = materialize(DATA, res, "MSFT")
    assert result.success
    meta = _metadata(result, "raw_prices")
    assert meta["fetched_from"] == str(days[-3]) and meta["fetched_rows"] == 3
    assert (meta["new_rows"], meta["corrected_rows"], meta["corrected_values"]) == (0, 2, 2)
    assert meta["corrections_summary"].startswith(
        f"2 stored days corrected (2 values): {days[-2]} close {old_close:g} -> {old_close + 1:g}"
    )
    stored = res["lake"].read("raw_prices", "MSFT")
    assert stored.equals(_csv_rows(path))  # the corrections were stored, nothing else changed
    assert stored.height == original.height

    # A correction that breaks a blocking rule replaces nothing: the partition stays as it was.
    revised.with_columns(
        high=pl.when(pl.col("date") == days[-1]).then(pl.col("low") - 1.0)
        .otherwise(pl.col("high"))
    ).write_csv(path)  # fmt: skip
    broken = materialize(DATA, res, "MSFT")
    assert not broken.success
    assert res["lake"].read("raw_prices", "MSFT").equals(stored)


def test_check_results_on_a_crafted_duplicate_and_gap() -> None:
    frame = pl.DataFrame(
        {
            "date": [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 3), date(2024, 1, 8)],
            "open": [10.0, 10.5, 10.5, 11.0],
            "high": [11.0, 11.5, 11.5, 12.0],
            "low": [9.5, 10.0, 10.0, 10.5],
            "close": [10.5, 11.0, 11.0, 11.5],
            "adj_close": [10.5, 11.0, 11.0, 11.5],
            "volume": [100, 200, 200, 300],
            "ticker": ["AAPL"] * 4,
        },
        schema=PRICE_SCHEMA,
    )
    results = {r.check_name: r for r in quality_check_results(frame, dg.AssetKey("raw_prices"))}
    assert not results["unique_dates"].passed
    assert results["unique_dates"].severity == dg.AssetCheckSeverity.ERROR
    assert results["unique_dates"].metadata["n_duplicated_dates"].value == 1
    assert not results["no_calendar_gaps"].passed  # 2024-01-04 and -05 are missing
    assert results["no_calendar_gaps"].severity == dg.AssetCheckSeverity.WARN
    assert results["no_calendar_gaps"].metadata["n_missing"].value == 2
    assert results["ohlc_consistent"].passed and results["no_missing_values"].passed


def test_a_calendar_gap_warns_but_does_not_block(
    materialize, resources, csv_source, csv_prices_dir: Path
) -> None:
    path = csv_prices_dir / "AAPL.csv"
    frame = pl.read_csv(path, try_parse_dates=True)
    frame.filter(pl.col("date") != BAD_DAY).write_csv(path)
    result = materialize(DATA, resources(price_source=csv_source), "AAPL")
    assert result.success
    gaps = _evaluations(result)["no_calendar_gaps"]
    assert not gaps.passed and not gaps.blocking
    assert gaps.metadata["first_missing_dates"].value == str(BAD_DAY)
    assert result.asset_materializations_for_node("price_indicators")


def test_ticker_data_job_runs_one_partition(instance, resources, csv_source, materialize) -> None:
    """The job the watchlist sensor launches: raw prices, their checks and the indicators."""
    from stock_assets.features.definitions import defs as features_defs
    from stock_assets.ingestion.definitions import defs as ingestion_defs
    from stock_assets.ingestion.definitions import ticker_data_job

    defs = dg.Definitions(
        assets=[*ingestion_defs.assets, *features_defs.assets],
        jobs=[ticker_data_job],
        resources=resources(price_source=csv_source),
    )
    materialize.register("JNJ")
    result = defs.resolve_job_def("ticker_data_job").execute_in_process(
        partition_key="JNJ", instance=instance
    )
    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"raw_prices", "price_indicators"}
    assert len(result.get_asset_check_evaluations()) == len(QUALITY_RULES)
    assert _materialized_partitions(instance, "price_indicators") == {"JNJ"}
