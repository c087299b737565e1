"""`python -m stock_assets materialize` end to end in a subprocess: progress lines, exit codes, and
the lake plus the Dagster instance holding what it says it materialized."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

SYNTHETIC_END = "2024-06-28"


def _cli(home: Path, *args: str, env_extra: dict[str, str] | None = None, timeout: int = 300):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STOCK_ASSETS_", "DAGSTER_HOME", "FEAST_"))
    }
    env.update({"STOCK_ASSETS_SYNTHETIC_END": SYNTHETIC_END, **(env_extra or {})})
    return subprocess.run(
        [sys.executable, "-m", "stock_assets", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.mark.slow
def test_materialize_data_stage_for_two_tickers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run = _cli(
        home, "materialize", "--source", "synthetic", "--tickers", "AAPL,MSFT", "--stages", "data",
        "--workers", "2",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert "source synthetic, 2 tickers + ^GSPC, stages data, 2 workers" in lines[0]
    assert "registered ticker partitions: AAPL, MSFT" in lines
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == 4
    for label in (
        "^GSPC prices + indicators",
        "AAPL prices + indicators",
        "MSFT prices + indicators",
        "Feast offline table + online store",
    ):
        assert any(label in line and " ok (" in line for line in progress), label
    assert lines[-1].startswith("done in ") and lines[-1].endswith(
        ": 4 ok, 0 models rejected by their checks, 0 failed (4 runs)"
    )
    # a progress header per stage, the data stage's runs on both workers
    assert "== data: 3 runs on 2 workers" in lines and "== feast: 1 run" in lines

    lake = home / "lake"
    for ticker in ("AAPL", "MSFT"):
        prices = pl.read_parquet(lake / "raw_prices" / f"{ticker}.parquet")
        assert str(prices["date"].max()) == SYNTHETIC_END
        assert (lake / "price_indicators" / f"{ticker}.parquet").is_file()
    assert pl.read_parquet(lake / "market_index_prices.parquet")["ticker"].unique().to_list() == [
        "GSPC"
    ]
    assert (home / "feast" / "price_indicators.parquet").is_file()

    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        assert instance.get_dynamic_partitions("ticker") == ["AAPL", "MSFT"]
        for asset in ("raw_prices", "price_indicators"):
            assert set(instance.get_materialized_partitions(dg.AssetKey(asset))) == {"AAPL", "MSFT"}
        for asset in ("market_index_prices", "market_index_indicators", "feast_features"):
            assert instance.get_latest_materialization_event(dg.AssetKey(asset)) is not None, asset
        runs = instance.get_runs()
        assert len(runs) == 4  # ^GSPC, AAPL, MSFT (a ticker range each), Feast
        assert sorted(r.job_name for r in runs) == [
            "feast_job", "market_data_job", "ticker_data_job", "ticker_data_job"
        ]
        assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
        assert {r.tags["stock_assets/launched_by"] for r in runs} == {"cli"}


@pytest.mark.parametrize(
    ("tickers", "message"),
    [
        ("AAPL,../etc", "Invalid ticker '../etc'"),
        ("aapl", "Did you mean 'AAPL'?"),
        ("AAPL;DROP", "1-7 upper-case letters/digits"),
    ],
)
def test_a_bad_ticker_exits_2_with_the_rule_and_writes_nothing(
    tmp_path: Path, tickers: str, message: str
) -> None:
    home = tmp_path / "home"
    run = _cli(
        home,
        "materialize",
        "--source",
        "synthetic",
        "--tickers",
        tickers,
        "--stages",
        "data",
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("error: ")
    assert message in run.stderr
    assert not (home / "lake").exists()
    assert not (home / "dagster_home" / "history").exists()  # no run was ever created


def test_a_dagster_home_the_user_chose_keeps_its_dagster_yaml(tmp_path: Path) -> None:
    chosen = tmp_path / "production_dagster_home"
    chosen.mkdir()
    custom = "run_storage:\n  module: somewhere\n  class: Postgres\n"
    (chosen / "dagster.yaml").write_text(custom)
    run = _cli(
        tmp_path / "home",
        "materialize",
        "--tickers",
        "bad!",
        env_extra={"DAGSTER_HOME": str(chosen)},
        timeout=60,
    )
    assert run.returncode == 2
    assert (chosen / "dagster.yaml").read_text() == custom


def test_a_universe_needs_the_synthetic_source(tmp_path: Path) -> None:
    run = _cli(tmp_path / "home", "materialize", "--source", "csv", "--universe", "50", timeout=60)
    assert run.returncode != 0
    assert "--universe generates synthetic tickers" in run.stderr


def test_unknown_stage_exits_2(tmp_path: Path) -> None:
    run = _cli(
        tmp_path / "home",
        "materialize",
        "--source",
        "synthetic",
        "--tickers",
        "AAPL",
        "--stages",
        "data,bogus",
        timeout=60,
    )
    assert run.returncode == 2
    assert "unknown stages ['bogus']" in run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("APPL", "2024-01-02", "2024-03-28"), "ticker APPL is not registered"),
        (("aapl", "2024-01-02", "2024-03-28"), "Did you mean 'AAPL'?"),
        (("AAPL", "2024-03-28", "2024-01-02"), "start 2024-03-28 is after end 2024-01-02"),
        (("AAPL", "2024-13-01", "2024-12-31"), "month must be in 1..12"),
    ],
)
def test_a_backtest_of_an_unknown_ticker_or_bad_dates_exits_2_and_registers_nothing(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    home = tmp_path / "home"
    run = _cli(home, "backtest", *args, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("error: ") and message in run.stderr
    with dg.instance_for_test(temp_dir=str(home / "dagster_home")) as instance:
        assert instance.get_dynamic_partitions("ticker") == []
        assert instance.get_runs() == []


# -- configuration: the CLI passes settings down, it does not write os.environ ----------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No project variable set but the synthetic end; the process's settings restored after."""
    from stock_assets.settings import VARIABLES, use_settings

    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STOCK_ASSETS_SYNTHETIC_END", SYNTHETIC_END)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    use_settings(None)


def _project_variables(env) -> dict[str, str]:
    from stock_assets.settings import VARIABLES

    return {k: v for k, v in env.items() if k in VARIABLES or k.startswith("STOCK_ASSETS_")}


def test_prepare_environment_returns_settings_and_leaves_os_environ_alone(cli_env: Path) -> None:
    import argparse

    from stock_assets.cli import prepare_environment
    from stock_assets.settings import get_settings

    before = dict(os.environ)
    args = argparse.Namespace(home=str(cli_env / "home"), command="materialize", source=None,
                              csv_dir=None, universe=30)  # fmt: skip
    settings = prepare_environment(args)
    assert dict(os.environ) == before
    assert settings.paths.home == cli_env / "home"
    assert (settings.prices.kind, settings.prices.synthetic_universe) == ("synthetic", 30)
    assert settings.prices.synthetic_end == SYNTHETIC_END  # the environment's, under the arguments
    assert (cli_env / "home" / "dagster_home" / "dagster.yaml").is_file()
    assert get_settings() is settings  # what code below the CLI asks for


def test_main_runs_the_graph_without_writing_os_environ(cli_env: Path, capsys) -> None:
    from stock_assets.cli import main

    before = dict(os.environ)
    home = cli_env / "home"
    status = main(["--home", str(home), "materialize", "--source", "synthetic", "--tickers",
                   "AAPL", "--stages", "data", "--workers", "1"])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    # Libraries note their own variables on import (torch's KMP_*, Feast's Prometheus folder);
    # no project setting and no DAGSTER_HOME was written.
    assert _project_variables(os.environ) == _project_variables(before)
    assert "source synthetic, 1 tickers + ^GSPC, stages data, 1 workers" in out
    assert out.strip().splitlines()[-1].endswith(": 3 ok, 0 models rejected by their checks, "
                                                 "0 failed (3 runs)")  # fmt: skip
    prices = pl.read_parquet(home / "lake" / "raw_prices" / "AAPL.parquet")
    assert str(prices["date"].max()) == SYNTHETIC_END
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        assert instance.get_dynamic_partitions("ticker") == ["AAPL"]
        assert len(instance.get_runs()) == 3
    assert not (cli_env / ".stock_assets").exists()  # nothing went to the default home


def test_a_bad_setting_exits_2_naming_the_variable(cli_env: Path, monkeypatch, capsys) -> None:
    from stock_assets.cli import main

    monkeypatch.setenv("STOCK_ASSETS_MAX_CONCURRENT_STEPS", "many")
    status = main(["--home", str(cli_env / "home"), "materialize", "--tickers", "AAPL"])
    assert status == 2
    assert "STOCK_ASSETS_MAX_CONCURRENT_STEPS='many' is not an integer" in capsys.readouterr().err
    assert not (cli_env / "home").exists()  # nothing was created
