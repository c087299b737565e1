"""Time the data layer: every ticker's prices + indicators, ^GSPC and Feast from CSV, via Dagster.

Why: the data stage must refresh every ticker in under 60 s on 2 cores. This prints the wall time of
the CLI's own path (`run_plan` on a real SQLite instance in a fresh temporary home), the cost per
partition run, and, separately, the same pure work done without Dagster (fetch + normalize, quality
rules, indicators, chart + preview metadata, Parquet writes, Feast publish), so the difference is
Dagster's own overhead. Not a test: it reads ../shared/data/prices in place.

    python benchmarks/bench_data.py [--csv-dir DIR] [--tickers AAPL MSFT] [--event-log consolidated]

`--event-log consolidated` runs the same benchmark with Dagster's single-file SQLite event log
(ConsolidatedSqliteEventLogStorage) instead of the default one-database-per-run layout.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_CSV_DIR = REPO.parent / "shared" / "data" / "prices"
TARGET_SECONDS = 60.0
STEP_LINE = re.compile(
    r"^\[\w+\s+\d+/\d+\]\s+(?P<label>.+?)\s+(?P<status>ok|FAILED|REJECTED)\s+\(\s*(?P<s>[\d.]+)s\)"
)

CONSOLIDATED_EVENT_LOG = """
event_log_storage:
  module: dagster._core.storage.event_log
  class: ConsolidatedSqliteEventLogStorage
  config:
    base_dir: {base_dir}
"""


def prepare_home(home: Path, csv_dir: Path, event_log: str) -> None:
    """A fresh project home and instance, configured the way the CLI configures them."""
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True)
    config = (REPO / "dagster.yaml").read_text()
    if event_log == "consolidated":
        config += CONSOLIDATED_EVENT_LOG.format(base_dir=dagster_home / "history")
    (dagster_home / "dagster.yaml").write_text(config)
    os.environ.update(
        STOCK_ASSETS_HOME=str(home),
        DAGSTER_HOME=str(dagster_home),
        STOCK_ASSETS_PRICE_SOURCE="csv",
        STOCK_ASSETS_CSV_DIR=str(csv_dir),
    )


def warm_imports() -> None:
    """Import what both paths need once, so neither pays the other's first-use costs."""
    import feast  # noqa: F401

    from stock_assets.market_calendar import trading_calendar
    from stock_assets.metadata import pyplot

    pyplot()
    trading_calendar("XNYS")


def through_dagster(tickers: list[str]) -> tuple[float, dict[str, float]]:
    """The CLI's data steps on the instance: total wall time and seconds per step label."""
    from stock_assets.cli import run_plan

    lines: list[str] = []
    started = time.perf_counter()
    # The run command's data stages, one run at a time (the per-step figures stay comparable).
    status = run_plan(tickers, ["data"], workers=1, echo=lines.append)
    total = time.perf_counter() - started
    steps: dict[str, float] = {}
    for line in lines:
        match = STEP_LINE.match(line)
        if match:
            if match["status"] != "ok":
                raise SystemExit(f"bench_data: a Dagster step failed: {line}")
            steps[match["label"]] = float(match["s"])
    if status != 0:
        raise SystemExit("bench_data: run_plan reported failures:\n" + "\n".join(lines))
    return total, steps


def without_dagster(
    tickers: list[str], csv_dir: Path, home: Path
) -> tuple[float, dict[str, float]]:
    """The same work the assets do, called directly: seconds per kind of work."""
    from stock_assets.features.assets import indicator_chart
    from stock_assets.features.feature_store import FeatureStoreResource
    from stock_assets.features.indicators import INDICATOR_COLUMNS, compute_indicators
    from stock_assets.ingestion.checks import QUALITY_RULES
    from stock_assets.ingestion.quality import DEFAULT_JUMP_MULTIPLE, check_finite
    from stock_assets.ingestion.sources import CsvPriceSource
    from stock_assets.lake import LakeResource
    from stock_assets.metadata import markdown_table

    spent: dict[str, float] = defaultdict(float)

    def timed(kind: str, work, *args, **kwargs):
        began = time.perf_counter()
        value = work(*args, **kwargs)
        spent[kind] += time.perf_counter() - began
        return value

    source, lake = CsvPriceSource(csv_dir), LakeResource(base_dir=str(home / "lake"))
    start = date(2004, 1, 2)
    started = time.perf_counter()
    indicator_frames = []
    for key in ["GSPC", *tickers]:
        prices_asset, indicators_asset = (
            ("market_index_prices", "market_index_indicators")
            if key == "GSPC"
            else ("raw_prices", "price_indicators")
        )
        ticker = None if key == "GSPC" else key
        timed("lake reads", lake.read_if_exists, prices_asset, ticker)
        prices = timed("fetch + normalize", source.fetch, key, start, None)
        outcomes = timed(
            "quality rules",
            lambda p=prices: [r.evaluate(p, DEFAULT_JUMP_MULTIPLE) for r in QUALITY_RULES],
        )
        if not all(o.passed for o, r in zip(outcomes, QUALITY_RULES, strict=True) if r.blocking):
            raise SystemExit(f"bench_data: {key} fails a blocking quality rule")
        timed("chart + preview metadata", markdown_table, prices.tail(5))
        timed("parquet writes", lake.write, prices, prices_asset, ticker)
        indicators = timed("indicators", compute_indicators, prices)
        timed("indicators", check_finite, indicators, columns=list(INDICATOR_COLUMNS))
        timed("chart + preview metadata", indicator_chart, indicators)
        timed("parquet writes", lake.write, indicators, indicators_asset, ticker)
        indicator_frames.append(indicators)
    import polars as pl

    store = FeatureStoreResource(repo_path=str(REPO / "feature_repo"), home=str(home))
    table = pl.concat(indicator_frames, how="diagonal_relaxed")
    timed("feast publish", store.publish, table)
    return time.perf_counter() - started, dict(spent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-dir", type=Path, default=DEFAULT_CSV_DIR)
    parser.add_argument("--tickers", nargs="+", help="default: every <TICKER>.csv but GSPC")
    parser.add_argument("--event-log", choices=["default", "consolidated"], default="default")
    parser.add_argument("--keep", action="store_true", help="keep the temporary homes")
    args = parser.parse_args()

    csv_dir = args.csv_dir.resolve()
    if not (csv_dir / "GSPC.csv").is_file():
        print(
            f"bench_data: no price CSVs at {csv_dir} (expected <TICKER>.csv and GSPC.csv); "
            "pass --csv-dir.",
            file=sys.stderr,
        )
        return 2
    tickers = args.tickers or sorted(p.stem for p in csv_dir.glob("*.csv") if p.stem != "GSPC")
    rows = sum(sum(1 for _ in open(csv_dir / f"{t}.csv")) - 1 for t in ["GSPC", *tickers])
    scratch = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        prepare_home(scratch / "dagster_run", csv_dir, args.event_log)
        began = time.perf_counter()
        import stock_assets.definitions  # noqa: F401  (the code location, as the CLI loads it)

        warm_imports()
        import_seconds = time.perf_counter() - began
        dagster_total, steps = through_dagster(tickers)
        pure_total, pure = without_dagster(tickers, csv_dir, scratch / "pure_run")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)

    ticker_runs = [
        s
        for label, s in steps.items()
        if label.endswith(" prices + indicators") and not label.startswith("^")
    ]
    index_run = steps["^GSPC prices + indicators"]
    feast_run = steps["Feast offline table + online store"]
    runs = len(steps)
    overhead = dagster_total - pure_total
    print(f"bench_data: {len(tickers)} tickers + ^GSPC, {rows:,} CSV rows from {csv_dir}")
    print(
        f"  instance: SQLite, repo dagster.yaml, event log {args.event_log}; "
        f"home {'kept at ' + str(scratch) if args.keep else 'temporary'}"
    )
    print(
        f"  imports: code location, feast, matplotlib, calendars (not in the totals): "
        f"{import_seconds:4.1f} s"
    )
    print("Through Dagster (the CLI's run_plan, one in-process run per step):")
    print(f"  ^GSPC prices + indicators           {index_run:6.1f} s")
    mean, low, high = statistics.mean(ticker_runs), min(ticker_runs), max(ticker_runs)
    print(
        f"  per ticker partition ({len(ticker_runs):>2} runs)      mean {mean:4.1f} s,"
        f" min {low:4.1f} s, max {high:4.1f} s, sum {sum(ticker_runs):5.1f} s"
    )
    print(f"  Feast offline table + online store  {feast_run:6.1f} s")
    verdict = "OK" if dagster_total < TARGET_SECONDS else "OVER TARGET"
    print(
        f"  total                               {dagster_total:6.1f} s   "
        f"(target < {TARGET_SECONDS:.0f} s: {verdict})"
    )
    print("The same work without Dagster:")
    for kind in (
        "lake reads",
        "fetch + normalize",
        "quality rules",
        "indicators",
        "chart + preview metadata",
        "parquet writes",
        "feast publish",
    ):
        print(f"  {kind:<35} {pure.get(kind, 0.0):6.1f} s")
    print(f"  total                               {pure_total:6.1f} s")
    per_run = overhead / runs
    print(f"Dagster overhead: {overhead:5.1f} s in all, {per_run:4.2f} s per run ({runs} runs)")
    return 0 if dagster_total < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
