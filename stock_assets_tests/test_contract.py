"""The lake contract: Dagster-free, the only pipeline module serving/ imports, and the one
definition of the names, keys, paths and rule that the pipeline and the API share."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from stock_assets import contract
from stock_assets.contract import rules

ROOT = Path(__file__).resolve().parents[1]
CONTRACT_DIR = ROOT / "stock_assets" / "contract"
SERVING_DIR = ROOT / "serving"


def imported_modules(folder: Path) -> dict[str, set[str]]:
    """{file: every module it imports, anywhere in it (function-level imports too)}."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        modules: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
                # `from stock_assets import tickers` imports stock_assets.tickers
                modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(ROOT))] = modules
    return found


def is_contract(module: str) -> bool:
    return module == "stock_assets.contract" or module.startswith("stock_assets.contract.")


def test_serving_imports_nothing_from_stock_assets_but_the_contract() -> None:
    offenders = {
        path: sorted(m for m in modules if m.startswith("stock_assets") and not is_contract(m))
        for path, modules in imported_modules(SERVING_DIR).items()
    }
    offenders = {path: modules for path, modules in offenders.items() if modules}
    assert offenders == {}
    # and the parser sees serving's imports at all (a test that cannot fail proves nothing)
    assert any(
        is_contract(m) for modules in imported_modules(SERVING_DIR).values() for m in modules
    )


def test_the_contract_imports_only_the_standard_library_polars_and_itself() -> None:
    allowed_third_party = {"polars"}
    found = imported_modules(CONTRACT_DIR)
    assert "stock_assets/contract/__init__.py" in found and "polars" in set().union(*found.values())
    offenders = {}
    for path, modules in found.items():
        bad = sorted(
            m for m in modules
            if not is_contract(m)
            and m.split(".")[0] not in sys.stdlib_module_names
            and m.split(".")[0] not in allowed_third_party
        )  # fmt: skip
        if bad:
            offenders[path] = bad
    assert offenders == {}


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [("import stock_assets.contract", {"stock_assets.contract"}), ("import serving.main", None)],
)
def test_importing_loads_no_dagster_and_no_other_pipeline_module(
    statement: str, allowed: set[str] | None
) -> None:
    """What actually gets imported, in a fresh interpreter: the contract (or the whole API) pulls
    in neither Dagster nor any other stock_assets module."""
    probe = (
        f"import sys; {statement}; "
        "print('\\n'.join(m for m in sys.modules if m.split('.')[0] in ('dagster', 'stock_assets')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(result.stdout.split())
    assert not {m for m in loaded if m.split(".")[0] == "dagster"}
    assert {m for m in loaded if m != "stock_assets" and not is_contract(m)} == set()
    assert "stock_assets.contract" in loaded


# -- names ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph():
    from stock_assets.definitions import defs

    return defs


def test_asset_check_and_job_names_are_the_graphs(graph) -> None:
    asset_graph = graph.resolve_asset_graph()
    assets = {key.to_user_string() for key in asset_graph.get_all_asset_keys()}
    named = {
        contract.RAW_PRICES, contract.MARKET_INDEX_PRICES, contract.PRICE_INDICATORS,
        contract.MARKET_INDEX_INDICATORS, contract.FEAST_FEATURES, contract.TRAINING_SEQUENCES,
        contract.MARKET_INDEX_SEQUENCES, contract.MODEL_HYPERPARAMETERS, contract.PARENT_MODEL,
        contract.CHILD_MODEL, contract.MODEL_HISTORY, contract.DAILY_FORECAST,
        contract.FORECAST_PERFORMANCE, contract.AGENT_REPORT, contract.STRATEGY_BACKTEST,
        contract.STRATEGY_METRICS,
    }  # fmt: skip
    assert named == assets
    checks = {(key.asset_key.to_user_string(), key.name) for key in asset_graph.asset_check_keys}
    assert {
        (contract.FORECAST_PERFORMANCE, contract.FORECAST_MAPE),
        (contract.FORECAST_PERFORMANCE, contract.INTERVAL_COVERAGE),
        (contract.DAILY_FORECAST, contract.FEATURE_DRIFT),
        (contract.MARKET_INDEX_INDICATORS, contract.FEATURE_DRIFT),
        (contract.AGENT_REPORT, contract.REPORT_QUALITY),
    } <= checks
    jobs = {job.name for job in graph.resolve_all_job_defs()}
    assert {
        contract.DAILY_JOB, contract.TICKER_DATA_JOB, contract.MARKET_DATA_JOB, contract.FEAST_JOB,
        contract.RETRAIN_JOB, contract.PARENT_RETRAIN_JOB, contract.REPORTS_JOB,
        contract.STRATEGY_JOB, contract.TUNING_JOB,
    } <= jobs  # fmt: skip
    panels = {
        key.to_user_string()
        for key in asset_graph.get_all_asset_keys()
        if type(asset_graph.get(key).partitions_def).__name__ == "TimeWindowPartitionsDefinition"
    }
    assert panels == set(contract.PANEL_ASSETS)


def test_every_name_is_exported_by_the_package() -> None:
    from stock_assets.contract import names

    constants = {name for name in vars(names) if name.isupper()}
    assert constants <= set(contract.__all__)
    assert all(hasattr(contract, name) for name in contract.__all__)


def test_the_partition_and_tag_names_are_the_ones_dagster_and_the_assets_use() -> None:
    from stock_assets.partitions import TICKERS_TAG, ticker_partitions

    assert ticker_partitions.name == contract.TICKER_PARTITIONS
    assert TICKERS_TAG == contract.TICKERS_TAG == "stock_assets/tickers"
    assert contract.PARTITION_TAG == "dagster/partition"


# -- keys ----------------------------------------------------------------------------------------


def test_tickers_tag_round_trips_validated_and_deduplicated() -> None:
    tag = contract.tickers_tag(["MSFT", "^GSPC", "MSFT", "BRK-B"])
    assert tag == {"stock_assets/tickers": "MSFT,GSPC,BRK-B"}
    assert contract.parse_tickers_tag(tag[contract.TICKERS_TAG]) == ["MSFT", "GSPC", "BRK-B"]
    assert contract.parse_tickers_tag(" AAPL , ,AAPL") == ["AAPL"]
    assert contract.parse_tickers_tag(None) is None and contract.parse_tickers_tag(" ") is None
    with pytest.raises(ValueError, match="at least one"):
        contract.tickers_tag([])
    with pytest.raises(contract.InvalidTickerError):
        contract.parse_tickers_tag("AAPL,../etc")


@pytest.mark.parametrize("bad", ["20240102", "2024-1-2", "2024-02-30", "../2024", "", "2024-W01-1"])
def test_date_keys_are_exactly_yyyy_mm_dd(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        contract.date_key(bad)


def test_date_keys_round_trip() -> None:
    assert contract.date_key(date(2024, 7, 3)) == "2024-07-03" == contract.date_key("2024-07-03")
    assert contract.parse_date_key("2024-07-03") == date(2024, 7, 3)
    assert contract.is_date_key("2024-07-03") and not contract.is_date_key(".2024-07-03.tmp")


def test_the_pipeline_validates_tickers_with_the_contracts_rule() -> None:
    from stock_assets import tickers

    assert tickers.validate_ticker is contract.validate_ticker
    assert tickers.InvalidTickerError is contract.InvalidTickerError
    assert contract.is_ticker_key("BRK-B") and not contract.is_ticker_key("aapl")


# -- paths ---------------------------------------------------------------------------------------


def test_partition_paths_follow_the_layout(tmp_path: Path) -> None:
    base = tmp_path / "lake"
    assert contract.partition_path(base, "parent_model") == base / "parent_model.parquet"
    assert contract.partition_path(base, "raw_prices", "^GSPC") == base / "raw_prices/GSPC.parquet"
    assert (
        contract.partition_path(base, "daily_forecast", "AAPL", "2024-07-03")
        == base / "daily_forecast/AAPL/2024-07-03.parquet"
    )
    # serving's string layout is the same layout
    assert contract.lake_file(str(base), "daily_forecast", "AAPL", "2024-07-03") == str(
        contract.partition_path(base, "daily_forecast", "AAPL", "2024-07-03")
    )
    assert contract.lake_folder(str(base), "daily_forecast", "AAPL") == str(
        base / "daily_forecast" / "AAPL"
    )
    assert contract.drift_report_path(base, "AAPL", date(2024, 7, 3)) == (
        base / "drift_reports/AAPL/2024-07-03.html"
    )


@pytest.mark.parametrize(
    ("asset", "ticker", "day", "message"),
    [
        ("../raw", None, None, "asset name"),
        ("raw_prices", "../../etc", None, "Invalid ticker"),
        ("daily_forecast", "AAPL", "2024-07-03/../x", "YYYY-MM-DD"),
        ("daily_forecast", None, "2024-07-03", "needs a ticker"),
    ],
)
def test_partition_paths_reject_what_is_not_a_key(tmp_path, asset, ticker, day, message) -> None:
    with pytest.raises(ValueError, match=message):
        contract.partition_path(tmp_path, asset, ticker, day)


def test_the_io_manager_writes_where_serving_reads(tmp_path: Path) -> None:
    from serving.lake_reader import LakeReader
    from stock_assets.lake import LakeResource

    lake = LakeResource(base_dir=str(tmp_path))
    frame = pl.DataFrame({"date": [date(2024, 7, 2), date(2024, 7, 3)], "close": [10.0, 11.0]})
    written = lake.write(frame, contract.RAW_PRICES, "AAPL")
    reader = LakeReader(tmp_path)
    assert reader.tickers() == ("AAPL",)
    assert reader.prices("AAPL").frame.equals(frame)
    assert written == contract.partition_path(tmp_path, contract.RAW_PRICES, "AAPL")


def test_default_lake_dir_is_the_pipelines(monkeypatch, tmp_path: Path) -> None:
    from stock_assets.settings import lake_dir

    monkeypatch.setenv(contract.paths.HOME_ENV, str(tmp_path / "home"))
    assert contract.default_lake_dir() == lake_dir() == (tmp_path / "home" / "lake").resolve()
    monkeypatch.delenv(contract.paths.HOME_ENV)
    monkeypatch.chdir(tmp_path)
    assert contract.default_lake_dir() == lake_dir() == (tmp_path / ".stock_assets" / "lake")


# -- tables --------------------------------------------------------------------------------------


def test_card_mapes_are_percent_and_convert_to_fractions() -> None:
    assert contract.card_mape_fraction(3.05) == pytest.approx(0.0305)
    assert contract.card_mape_fraction(None) is None
    assert contract.card_mape_fraction(float("nan")) is None


def test_the_pipelines_schemas_are_the_contracts() -> None:
    from stock_assets.agents.assets import REPORT_SCHEMA
    from stock_assets.ingestion.sources import PRICE_COLUMNS, PRICE_SCHEMA

    assert PRICE_SCHEMA is contract.PRICE_SCHEMA and PRICE_COLUMNS is contract.PRICE_COLUMNS
    assert REPORT_SCHEMA is contract.REPORT_SCHEMA
    assert set(contract.REQUIRED_COLUMNS[contract.AGENT_REPORT]) <= set(contract.REPORT_SCHEMA)
    assert set(contract.REQUIRED_COLUMNS[contract.RAW_PRICES]) <= set(contract.PRICE_SCHEMA)


# -- the forecast_mape rule ----------------------------------------------------------------------


def test_the_rules_defaults_are_monitorings() -> None:
    from serving.settings import Settings
    from stock_assets.monitoring_settings import MonitoringSettings

    monitoring, serving = MonitoringSettings(), Settings()
    assert (monitoring.mape_threshold, monitoring.naive_margin, monitoring.min_matured) == (
        rules.MAPE_THRESHOLD, rules.NAIVE_MARGIN, rules.MAPE_MIN_MATURED
    )
    assert (serving.mape_threshold, serving.naive_margin, serving.min_rolling_n) == (
        rules.MAPE_THRESHOLD, rules.NAIVE_MARGIN, rules.MAPE_MIN_MATURED
    )


@pytest.mark.parametrize(
    ("n", "rolling", "test", "kind", "mape"),
    [
        (5, (0.02, 0.03), (0.09, 0.1), "live", 0.02),  # enough matured: the live MAPE
        (4, (0.02, 0.03), (0.09, 0.1), "model_test", 0.09),  # too few: the model's test MAPE
        (9, (None, None), (0.09, 0.1), "model_test", 0.09),  # no rolling MAPE at all
        (4, (0.02, 0.03), (None, None), "none", None),  # nothing to judge
    ],
)
def test_evidence_is_live_once_enough_forecasts_matured(n, rolling, test, kind, mape) -> None:
    evidence = rules.mape_evidence(n, *rolling, *test, min_matured=5)
    assert (evidence.kind, evidence.mape) == (kind, mape)


@pytest.mark.parametrize(
    ("mape", "naive", "failures"),
    [
        (0.04, 0.04, 0),  # within both
        (0.05, None, 0),  # at the threshold passes
        (0.051, None, 1),  # above it fails
        (0.04, 0.03, 1),  # 0.04 > 0.03 x 1.25
        (0.0375, 0.03, 0),  # exactly naive x 1.25 passes
        (0.06, 0.03, 2),
        (float("nan"), None, 1),  # not finite never passes
    ],
)
def test_mape_problems(mape: float, naive: float | None, failures: int) -> None:
    assert len(rules.mape_problems(mape, naive, threshold=0.05, naive_margin=0.25)) == failures


@pytest.mark.parametrize(
    ("n", "mape", "naive", "card"),
    [(20, 0.04, 0.05, None), (20, 0.04, 0.03, None), (2, 0.01, 0.01, (6.0, 9.0)),
     (2, 0.01, 0.01, (3.0, 4.0)), (2, None, None, None), (20, 0.07, None, None)],
)  # fmt: skip
def test_serving_and_the_check_give_the_same_verdict(n, mape, naive, card) -> None:
    """The same evidence through the Dagster check and through GET /performance's judgement."""
    from serving.routes.performance import mape_check
    from serving.schemas import ModelCard, ModelMetrics
    from serving.schemas_performance import PerformancePoint
    from serving.settings import Settings
    from stock_assets.forecasting.checks import ModelTestMetrics, evaluate_forecast_mape
    from stock_assets.forecasting.performance import RollingMetrics
    from stock_assets.monitoring_settings import MonitoringSettings

    rolling = RollingMetrics(mape, naive, 0.5, n, date(2024, 6, 1), date(2024, 7, 3))
    fallback = None if card is None else ModelTestMetrics("3", card[0] / 100, card[1] / 100)
    outcome = evaluate_forecast_mape(rolling, MonitoringSettings(), fallback)

    point = PerformancePoint.model_construct(
        rolling_mape=mape, rolling_naive_mape=naive, rolling_n=n
    )
    production = None
    if card is not None:
        metrics = ModelMetrics.model_construct(
            test_mape_h5=contract.card_mape_fraction(card[0]),
            naive_mape_h5=contract.card_mape_fraction(card[1]),
        )
        production = ModelCard.model_construct(metrics=metrics)
    verdict = mape_check(point, production, Settings())
    prefix = {"live": "live:", "model_test": "model v3 test windows", "none": "none"}
    assert str(outcome.metadata["evidence"]).startswith(prefix[verdict.evidence])
    if verdict.evidence == "none":
        assert verdict.status == "insufficient_data" and outcome.passed
    else:
        assert verdict.status == ("passing" if outcome.passed else "failing")
        assert verdict.mape == pytest.approx(outcome.metadata["mape"])
