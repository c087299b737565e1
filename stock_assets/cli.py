"""`python -m stock_assets`: run the whole graph headless on a real Dagster instance, or start the UI.

    python -m stock_assets materialize --source csv      # all stages, every watchlist ticker
    python -m stock_assets materialize --source synthetic --tickers AAPL,MSFT --stages data
    python -m stock_assets materialize --source synthetic --universe 500   # 500 generated tickers
    python -m stock_assets materialize --source csv --stages models --tuning-trials 50  # a bigger study
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
from collections.abc import Callable, Sequence
from pathlib import Path

from stock_assets.plan import STAGES
from stock_assets.settings import (
    REPO_ROOT,
    Settings,
    SettingsError,
    get_settings,
    load_settings,
    use_settings,
)


def settings_from_args(args: argparse.Namespace, base: Settings | None = None) -> Settings:
    """The environment's settings (or `base`) with what the arguments say on top; validated."""
    settings = base or load_settings()
    paths: dict[str, object] = {}
    prices: dict[str, object] = {}
    if getattr(args, "home", None):
        paths["home"] = Path(args.home)
    if getattr(args, "universe", None) is not None:
        if args.universe < 1:
            raise SystemExit("--universe must be at least 1")
        if getattr(args, "source", None) not in (None, "synthetic"):
            raise SystemExit("--universe generates synthetic tickers: use it with --source synthetic")
        args.source = "synthetic"
        prices["synthetic_universe"] = args.universe
    if getattr(args, "source", None):
        prices["kind"] = args.source
    if getattr(args, "csv_dir", None):
        prices["csv_dir"] = Path(args.csv_dir)
    settings = settings.replace(paths=paths, prices=prices)
    if settings.prices.kind == "csv" and not settings.prices.csv_dir.is_dir():
        raise SystemExit(f"CSV price folder {settings.prices.csv_dir} does not exist (set --csv-dir).")
    return settings


def prepare_instance(settings: Settings) -> Path:
    """The Dagster instance folder, with the shipped local dagster.yaml in it.

    A DAGSTER_HOME the user chose (production: deploy/dagster.yaml on Postgres) keeps its own
    dagster.yaml; only the project's own instance folder gets the shipped local one.
    """
    dagster_home = settings.paths.dagster_home_dir
    own_instance = settings.paths.dagster_home is None
    dagster_home.mkdir(parents=True, exist_ok=True)
    shipped = REPO_ROOT / "dagster.yaml"
    target = dagster_home / "dagster.yaml"
    if shipped.exists() and (
        not target.exists() or (own_instance and target.read_text() != shipped.read_text())
    ):
        shutil.copyfile(shipped, target)
    return dagster_home


def prepare_environment(args: argparse.Namespace) -> Settings:
    """The run's settings from the arguments, its instance folder ready, installed for this
    process (`use_settings`): everything below receives them; `os.environ` is left as it was."""
    settings = settings_from_args(args)
    prepare_instance(settings)
    use_settings(settings)
    return settings


def register_tickers(
    tickers: Sequence[str], echo: Callable[[str], None] = print, settings: Settings | None = None
) -> list[str]:
    """Add the tickers' partitions (in order); returns the instance's ticker partitions, in order."""
    from stock_assets.execution import project_instance
    from stock_assets.partitions import ticker_partitions

    instance = project_instance(settings or get_settings())
    registered = list(instance.get_dynamic_partitions(ticker_partitions.name))
    new = [t for t in tickers if t not in set(registered)]
    if new:
        instance.add_dynamic_partitions(ticker_partitions.name, new)
        shown = ", ".join(new[:12]) + (f" ... ({len(new)} in all)" if len(new) > 12 else "")
        echo(f"registered ticker partitions: {shown}")
    return registered + new


def prepare_stores(settings: Settings | None = None) -> None:
    """Create the MLflow store once, here, before parallel runs could race to migrate it."""
    from stock_assets.resources import mlflow

    mlflow(settings or get_settings()).client().search_experiments(max_results=1)


def run_plan(
    tickers: Sequence[str], groups: Sequence[str], workers: int, echo: Callable[[str], None] = print,
    refetch_days: int = 0, tuning_trials: int | None = None, settings: Settings | None = None,
) -> int:
    """Register the tickers, then launch every stage's real jobs; report, don't stop."""
    from stock_assets.launcher import run_stages
    from stock_assets.plan import plan_stages
    from stock_assets.recovery import sweep_at_start

    settings = settings or get_settings()
    order = register_tickers(tickers, echo, settings)
    prepare_stores(settings)
    sweep_at_start(echo, settings)  # runs a killed earlier command left "in progress" are marked failed
    stages = plan_stages(tickers, order=order, workers=workers, groups=groups,
                         refetch_days=refetch_days, tuning_trials=tuning_trials)
    outcomes = run_stages(stages, workers=workers, echo=echo, settings=settings)
    return 1 if any(o.status == "FAILED" for o in outcomes) else 0


def run_backtest(
    ticker: str, start: str, end: str, echo: Callable[[str], None] = print,
    refit_every: int | None = None, settings: Settings | None = None,
) -> int:
    """One back-test run (see plan.backtest_launch) of a ticker already on the instance."""
    from stock_assets.execution import project_instance
    from stock_assets.forecasting.backtest import BACKTEST_TAG
    from stock_assets.launcher import run_stages
    from stock_assets.partitions import ticker_partitions
    from stock_assets.plan import Stage, backtest_launch

    launch = backtest_launch(ticker, start, end, refit_every)  # validates ticker, dates and K
    key = dict(launch.tags)[BACKTEST_TAG]
    settings = settings or get_settings()
    if key not in project_instance(settings).get_dynamic_partitions(ticker_partitions.name):
        # Registering it here would leave a partition with no data behind a typo ("APPL").
        raise ValueError(
            f"ticker {key} is not registered on this instance; materialize its data and model "
            f"first (python -m stock_assets materialize --tickers {key})"
        )
    outcomes = run_stages(
        [Stage("back-test", "forecasts", (launch,))], workers=1, echo=echo, settings=settings
    )
    return 1 if any(o.status == "FAILED" for o in outcomes) else 0


def _tickers(args: argparse.Namespace, settings: Settings) -> list[str]:
    from stock_assets.tickers import MARKET_INDEX_KEY, load_watchlist, validate_ticker

    if getattr(args, "universe", None):
        from stock_assets.ingestion.synthetic import synthetic_universe

        return list(synthetic_universe(args.universe))
    if args.tickers:
        keys = [validate_ticker(t.strip()) for t in args.tickers.split(",") if t.strip()]
    else:
        keys = load_watchlist(settings.paths.watchlist)
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
    materialize.add_argument("--universe", type=int, metavar="N",
                             help="synthetic source: a generated universe of N tickers instead of "
                             "the watchlist (the 12 named ones first)")
    materialize.add_argument("--refetch-days", type=int, default=0, metavar="N",
                             help="re-read each ticker's last N stored days and report corrections")
    materialize.add_argument("--tuning-trials", type=int, default=None, metavar="N",
                             help="trials the tuning step adds to the parent's Optuna study before "
                             "the parent trains, all N however long they take (default: "
                             "model_hyperparameters' config, a few short trials; 0: skip the step, "
                             "train with the study's best so far)")
    materialize.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                             help="runs at once within a stage (default: every core)")

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
    try:
        settings = prepare_environment(args)
    except SettingsError as exc:  # a bad variable or argument, named; nothing was started
        print(f"error: {exc}", file=sys.stderr)
        return 2
    home = settings.paths.home
    if args.command == "dev":
        # this interpreter's dagster: the venv's bin/ need not be on PATH. Dagster's loader takes
        # no arguments, so the settings reach `dagster dev` (and the run processes it spawns)
        # through the child's own environment; this process's os.environ is not touched.
        command = [sys.executable, "-m", "dagster", "dev",
                   "-w", str(REPO_ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)]
        return subprocess.call(command, cwd=REPO_ROOT, env=settings.child_environment(os.environ))

    from stock_assets.tickers import InvalidTickerError

    if args.command == "backtest":
        try:
            return run_backtest(args.ticker, args.start, args.end, refit_every=args.refit_every,
                                settings=settings)
        except (InvalidTickerError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    try:
        tickers = _tickers(args, settings)
    except InvalidTickerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        print(f"error: unknown stages {unknown}; choose from {STAGES}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    print(f"stock_assets: home {home}, source {settings.prices.kind}, "
          f"{len(tickers)} tickers + ^GSPC, stages {','.join(stages)}, {args.workers} workers")
    if args.refetch_days < 0:
        print("error: --refetch-days must be at least 0", file=sys.stderr)
        return 2
    if args.tuning_trials is not None and args.tuning_trials < 0:
        print("error: --tuning-trials must be at least 0", file=sys.stderr)
        return 2
    return run_plan(tickers, stages, args.workers, refetch_days=args.refetch_days,
                    tuning_trials=args.tuning_trials, settings=settings)


if __name__ == "__main__":
    raise SystemExit(main())
