"""How the project scales with the universe: a fresh home on the synthetic market with N tickers.

Timed, through the same launcher as `python -m stock_assets materialize` (real jobs, `--workers`
runs at once on the project's own SQLite instance):

    1. the first full run: data (^GSPC + the N tickers), Feast, the parent, N children, the
       forecasts' warm-up back-test and the latest session's daily cycle (no agent reports);
    2. one daily cycle of the next session: ingest the universe in one run (+ ^GSPC), publish
       Feast, one daily_job run for every ticker (forecast, score, checks);
    3. one tick of each sensor that scans the universe (retraining_sensor, daily_report_sensor,
       watchlist_sensor, daily_ingestion_sensor), on the instance the runs left behind.

Printed: wall seconds, seconds per ticker, runs launched, max RSS (this process and its worker
processes), the largest partition count of any asset now and for 10 years of sessions, and the
slowest sensor tick. The LAST line is exactly

    first_run_s=<float> daily_cycle_s=<float> max_partitions_10y=<int> sensor_tick_s=<float>

    python benchmarks/bench_scale.py --tickers 13 [--workers 2] [--epochs E] [--keep]

`--epochs` overrides the child and parent models' epochs (default: the model config's own), for a
quick look at the run's shape; the figures in docs/BENCHMARKS.md say which was used.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIRST_DAY = date(2024, 6, 27)  # the synthetic market's last day in the first run
NEXT_DAY = date(2024, 6, 28)  # the daily cycle's session


def max_rss_mb() -> float:
    """The largest resident set of this process or any worker it waited for, in MB (Linux: KB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def configure(home: Path, tickers: int, end: date) -> None:
    """The environment the CLI would set for `--source synthetic --universe N`."""
    os.environ.update(
        STOCK_ASSETS_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster_home"),
        STOCK_ASSETS_PRICE_SOURCE="synthetic",
        STOCK_ASSETS_SYNTHETIC_UNIVERSE=str(tickers),
        STOCK_ASSETS_SYNTHETIC_END=end.isoformat(),
    )
    (home / "dagster_home").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster_home" / "dagster.yaml")


def with_epochs(stages, epochs: int | None):
    """The stages with the training jobs' epochs overridden (run config, as a user would)."""
    from dataclasses import replace

    if epochs is None:
        return stages
    ops = {"parent_retrain_job": "parent_model", "retrain_job": "child_model"}
    return [
        replace(stage, launches=tuple(
            replace(l, ops=((ops[l.job], (("epochs", epochs),)),)) if l.job in ops else l
            for l in stage.launches
        ))
        for stage in stages
    ]


def sensor_ticks(defs, instance, lake) -> dict[str, float]:
    """Seconds of one evaluation of each sensor that scans the universe."""
    import dagster as dg

    timings = {}
    for name in ("retraining_sensor", "daily_ingestion_sensor", "ticker_watchlist_sensor"):
        sensor = defs.resolve_sensor_def(name)
        began = time.perf_counter()
        context = dg.build_sensor_context(instance=instance, definitions=defs, resources={"lake": lake})
        sensor(context)
        timings[name] = time.perf_counter() - began
    # daily_report_sensor reacts to one finished daily run: evaluate it on the newest one.
    [run] = instance.get_runs(dg.RunsFilter(job_name="daily_job"), limit=1)
    sensor = defs.resolve_sensor_def("daily_report_sensor")
    began = time.perf_counter()
    context = dg.build_run_status_sensor_context(
        sensor_name="daily_report_sensor", dagster_instance=instance, dagster_run=run,
        dagster_event=instance.get_records_for_run(run.run_id).records[-1].event_log_entry.dagster_event,
    )
    sensor(context)
    timings["daily_report_sensor"] = time.perf_counter() - began
    return timings


def partition_counts(defs, instance) -> tuple[int, int]:
    """(largest partition count of any asset now, the same for 10 years of sessions)."""
    import dagster as dg

    from stock_assets.partitions import WEEKDAYS_PER_10_YEARS

    now, ten_years = 0, 0
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        partitions = graph.get(key).partitions_def
        if partitions is None:
            continue
        count = len(partitions.get_partition_keys(dynamic_partitions_store=instance))
        now = max(now, count)
        if isinstance(partitions, dg.TimeWindowPartitionsDefinition):
            ten_years = max(ten_years, WEEKDAYS_PER_10_YEARS)
        else:  # per ticker: the universe, whatever the years
            ten_years = max(ten_years, count)
    return now, ten_years


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickers", type=int, default=13, help="universe size N")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--epochs", type=int, default=None, help="override the models' epochs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    home = Path(tempfile.mkdtemp(prefix=f"bench_scale_{args.tickers}_"))
    configure(home, args.tickers, FIRST_DAY)
    from stock_assets.cli import prepare_stores, register_tickers
    from stock_assets.ingestion.synthetic import synthetic_universe
    from stock_assets.launcher import run_stages
    from stock_assets.plan import data_stages, plan_stages

    tickers = list(synthetic_universe(args.tickers))
    lines: list[str] = []

    def quiet(line: str) -> None:
        lines.append(line)
        if line.startswith("=="):
            print(f"  {line}", flush=True)

    print(f"bench_scale: {args.tickers} tickers, {args.workers} workers, home {home}")
    try:
        order = register_tickers(tickers, quiet)
        prepare_stores()
        stages = with_epochs(
            plan_stages(tickers, order=order, workers=args.workers,
                        groups=("data", "models", "forecasts"),
                        as_of={t: FIRST_DAY for t in tickers}),
            args.epochs,
        )
        began = time.perf_counter()
        first = run_stages(stages, workers=args.workers, echo=quiet)
        first_run_s = time.perf_counter() - began
        failed = [o for o in first if o.status == "FAILED"]
        rejected = sum(o.status == "REJECTED" for o in first)

        # The next session: the daily cycle as the sensor and schedule launch it.
        os.environ["STOCK_ASSETS_SYNTHETIC_END"] = NEXT_DAY.isoformat()
        from stock_assets.plan import Launch, Stage

        cycle = [
            *data_stages(order, tickers, workers=1),
            Stage("daily", "forecasts", (Launch(f"daily_job {NEXT_DAY}", "daily_job", NEXT_DAY.isoformat()),)),
        ]
        began = time.perf_counter()
        daily = run_stages(cycle, workers=args.workers, echo=quiet)
        daily_cycle_s = time.perf_counter() - began
        failed += [o for o in daily if o.status == "FAILED"]

        import dagster as dg

        from stock_assets.definitions import defs
        from stock_assets.lake import LakeResource

        instance = dg.DagsterInstance.get()
        ticks = sensor_ticks(defs, instance, LakeResource(base_dir=str(home / "lake")))
        partitions_now, partitions_10y = partition_counts(defs, instance)
        forecast_files = len(list((home / "lake" / "daily_forecast").glob(f"*/{NEXT_DAY}.parquet")))
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)

    n = args.tickers
    print(f"first full run:   {first_run_s:8.1f} s  ({first_run_s / n:.2f} s per ticker, "
          f"{len(first)} runs, {rejected} children rejected by the gate, epochs "
          f"{args.epochs or 'default'})")
    print(f"daily cycle:      {daily_cycle_s:8.1f} s  ({daily_cycle_s / n:.3f} s per ticker, "
          f"{len(daily)} runs; {forecast_files} of {n} tickers forecast for {NEXT_DAY})")
    for name, seconds in ticks.items():
        print(f"sensor tick:      {seconds:8.2f} s  {name}")
    print(f"partitions:       {partitions_now} now (largest asset), {partitions_10y} at 10 years")
    print(f"max RSS:          {max_rss_mb():8.0f} MB")
    for outcome in failed[:10]:
        print(f"FAILED: {outcome.label}: {outcome.detail}")
    print(
        f"first_run_s={first_run_s:.1f} daily_cycle_s={daily_cycle_s:.1f} "
        f"max_partitions_10y={partitions_10y} sensor_tick_s={max(ticks.values()):.2f}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
