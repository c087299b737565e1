"""`python -m stock_assets`: run the whole graph headless on a real Dagster instance, or start the UI.

    python -m stock_assets materialize --source csv      # all stages, every watchlist ticker
    python -m stock_assets materialize --source synthetic --tickers AAPL,MSFT --stages data
    python -m stock_assets backtest AAPL 2024-01-02 2024-12-31   # one single-run back-test
    python -m stock_assets backtest AAPL 2023-01-03 2023-10-27 --refit-every 63   # walk-forward
    python -m stock_assets dev                           # dagster dev on the same instance

Both commands use the same project home and instance (`$STOCK_ASSETS_HOME`, default
`./.stock_assets`), so what the headless run materialized is what the UI shows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from stock_assets.plan import Step, plan_steps
from stock_assets.settings import REPO_ROOT, default_csv_dir, project_home, watchlist_path

STAGES = ("data", "models", "forecasts", "reports")


def prepare_environment(args: argparse.Namespace) -> Path:
    """Point every component at one project home and instance before definitions are imported."""
    home = Path(args.home).resolve() if args.home else project_home()
    os.environ["STOCK_ASSETS_HOME"] = str(home)
    dagster_home = home / "dagster_home"
    # A DAGSTER_HOME the user chose (production: deploy/dagster.yaml on Postgres) keeps its own
    # dagster.yaml; only the project's own instance folder gets the shipped local one.
    own_instance = "DAGSTER_HOME" not in os.environ
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home))
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    dagster_home.mkdir(parents=True, exist_ok=True)
    shipped = REPO_ROOT / "dagster.yaml"
    target = dagster_home / "dagster.yaml"
    if shipped.exists() and (
        not target.exists() or (own_instance and target.read_text() != shipped.read_text())
    ):
        shutil.copyfile(shipped, target)
    if getattr(args, "source", None):
        os.environ["STOCK_ASSETS_PRICE_SOURCE"] = args.source
    if getattr(args, "csv_dir", None):
        os.environ["STOCK_ASSETS_CSV_DIR"] = str(Path(args.csv_dir).resolve())
    if os.environ.get("STOCK_ASSETS_PRICE_SOURCE") == "csv":
        folder = Path(os.environ.get("STOCK_ASSETS_CSV_DIR", default_csv_dir()))
        if not folder.is_dir():
            raise SystemExit(f"CSV price folder {folder} does not exist (set --csv-dir).")
    return home


def run_plan(steps: Sequence[Step], tickers: Sequence[str], echo: Callable[[str], None] = print) -> int:
    """Register the tickers, then materialize each step on the instance; report, don't stop."""
    import dagster as dg

    from stock_assets.definitions import defs
    from stock_assets.partitions import ticker_partitions

    instance = dg.DagsterInstance.get()
    registered = set(instance.get_dynamic_partitions(ticker_partitions.name))
    new = [t for t in tickers if t not in registered]
    if new:
        instance.add_dynamic_partitions(ticker_partitions.name, new)
        echo(f"registered ticker partitions: {', '.join(new)}")

    asset_graph = defs.resolve_asset_graph()
    known = {key.to_user_string() for key in asset_graph.get_all_asset_keys()}
    assets = list(defs.assets or []) + list(defs.asset_checks or [])
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    failures: list[str] = []
    rejected: list[str] = []
    total = len(steps)
    started = time.perf_counter()
    for index, step in enumerate(steps, start=1):
        missing = [a for a in step.assets if a not in known]
        if missing:
            if not step.optional:
                failures.append(f"{step.label}: unknown assets {missing}")
            continue
        prefix = f"[{index:>3}/{total}] {step.label:<48}"
        began = time.perf_counter()
        try:
            selection = dg.AssetSelection.assets(*step.assets)
            result = dg.materialize(
                assets,
                selection=selection if step.checks else selection.without_checks(),
                partition_key=step.partition_key,
                resources=defs.resources,
                instance=instance,
                run_config={**quiet, "ops": step.run_config()},
                raise_on_error=False,
                tags={"stock_assets/launched_by": "cli", **dict(step.tags)},
            )
            ok = result.success
            reason = "" if ok else _first_failure(result)
        except Exception as exc:  # report and go on with the other tickers
            ok, reason = False, f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - began
        if not ok and step.stage == "models" and _only_model_checks_failed(result):
            # The promotion gate at work, not a breakage: the new version was registered and
            # rejected, and the previous production model (if any) stays in place.
            echo(f"{prefix} REJECTED ({seconds:5.1f}s)  {_rejection(result)}")
            rejected.append(step.label)
            continue
        echo(f"{prefix} {'ok' if ok else 'FAILED'} ({seconds:5.1f}s){'' if ok else '  ' + reason}")
        if not ok:
            failures.append(f"{step.label}: {reason}")
    echo(
        f"done in {time.perf_counter() - started:.1f}s: {total - len(failures) - len(rejected)} ok, "
        f"{len(rejected)} models rejected by their checks, {len(failures)} failed"
    )
    return 1 if failures else 0


def run_backtest(
    ticker: str, start: str, end: str, echo: Callable[[str], None] = print,
    refit_every: int | None = None,
) -> int:
    """One back-test step (see plan.backtest_step) of a ticker already on the instance."""
    import dagster as dg

    from stock_assets.forecasting.backtest import BACKTEST_TAG
    from stock_assets.partitions import ticker_partitions
    from stock_assets.plan import backtest_step

    step = backtest_step(ticker, start, end, refit_every)  # validates ticker, dates and K first
    key = dict(step.tags)[BACKTEST_TAG]
    if key not in dg.DagsterInstance.get().get_dynamic_partitions(ticker_partitions.name):
        # Registering it here would leave a partition with no data behind a typo ("APPL").
        raise ValueError(
            f"ticker {key} is not registered on this instance; materialize its data and model "
            f"first (python -m stock_assets materialize --tickers {key})"
        )
    return run_plan([step], [key], echo)


def _only_model_checks_failed(result) -> bool:
    """True when the run failed only because blocking model checks failed (e.g. worse than naive)."""
    errors = [
        e.step_failure_data.error
        for e in result.all_events
        if e.is_step_failure and e.step_failure_data and e.step_failure_data.error
    ]
    return bool(errors) and all(err.cls_name == "DagsterAssetCheckFailedError" for err in errors)


def _rejection(result) -> str:
    """The promotion decision the model asset recorded, for the progress line."""
    for event in result.get_asset_materialization_events():
        promotion = event.materialization.metadata.get("promotion")
        if promotion is not None:
            return f"not promoted: {promotion.value}"
    return "a blocking model check failed"


def _first_failure(result) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            # Dagster wraps a user exception in "Error occurred while executing op ...": show ours.
            while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
                error = error.cause
            return error.message.strip().splitlines()[0][:300]
    return "run failed"


def _tickers(args: argparse.Namespace) -> list[str]:
    from stock_assets.tickers import MARKET_INDEX_KEY, load_watchlist, validate_ticker

    if args.tickers:
        keys = [validate_ticker(t.strip()) for t in args.tickers.split(",") if t.strip()]
    else:
        keys = load_watchlist(watchlist_path())
    return [k for k in dict.fromkeys(keys) if k != MARKET_INDEX_KEY]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stock_assets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="project home (default $STOCK_ASSETS_HOME or ./.stock_assets)")
    commands = parser.add_subparsers(dest="command", required=True)

    materialize = commands.add_parser("materialize", help="materialize the graph headless")
    materialize.add_argument("--source", choices=["yfinance", "csv", "synthetic"])
    materialize.add_argument("--csv-dir", help="folder of <TICKER>.csv (default ../shared/data/prices)")
    materialize.add_argument("--tickers", help="comma-separated tickers (default: watchlist.yaml)")
    materialize.add_argument("--stages", default=",".join(STAGES),
                             help=f"comma-separated subset of {','.join(STAGES)}")

    backtest = commands.add_parser(
        "backtest", help="daily_forecast + forecast_performance for one ticker over a date range, in one run"
    )
    backtest.add_argument("ticker")
    backtest.add_argument("start", help="first date, YYYY-MM-DD")
    backtest.add_argument("end", help="last date, YYYY-MM-DD")
    backtest.add_argument(
        "--refit-every", type=int, default=None, metavar="K",
        help="walk-forward: refit the child every K sessions on data before each refit date "
        "(the refits are logged to MLflow, never promoted); default: the production model",
    )

    dev = commands.add_parser("dev", help="start dagster dev (webserver + daemon) on this instance")
    dev.add_argument("--source", choices=["yfinance", "csv", "synthetic"])
    dev.add_argument("--csv-dir")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--host", default="127.0.0.1")

    args = parser.parse_args(argv)
    home = prepare_environment(args)
    if args.command == "dev":
        # this interpreter's dagster: the venv's bin/ need not be on PATH
        command = [sys.executable, "-m", "dagster", "dev",
                   "-w", str(REPO_ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)]
        return subprocess.call(command, cwd=REPO_ROOT)

    from stock_assets.tickers import InvalidTickerError

    if args.command == "backtest":
        try:
            return run_backtest(args.ticker, args.start, args.end, refit_every=args.refit_every)
        except (InvalidTickerError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    try:
        tickers = _tickers(args)
    except InvalidTickerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        print(f"error: unknown stages {unknown}; choose from {STAGES}", file=sys.stderr)
        return 2
    print(f"stock_assets: home {home}, source {os.environ.get('STOCK_ASSETS_PRICE_SOURCE', 'yfinance')}, "
          f"{len(tickers)} tickers + ^GSPC, stages {','.join(stages)}")
    steps = [s for s in plan_steps(tickers) if s.stage in stages]
    return run_plan(steps, tickers)


if __name__ == "__main__":
    raise SystemExit(main())
