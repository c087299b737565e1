"""agent_report in Dagster: the report team on forecast partitions, the Qdrant cache, the
report_quality check, and the API serving what was materialized.

The end-to-end test runs the real graph on the synthetic market: ingestion, Feast, tiny parent
and child models, daily_forecast / forecast_performance (a back-test, then the daily job with its
feature_drift check), then agent_report. The scenario tests (a forecast up, down or flat, an LLM
that contradicts it, a drift alarm) need crafted forecasts: those are written in the contract's
exact schema by the `forecast_contract` helper of the agents conftest, beside real prices. No
Ollama exists here, so every report not written through the stub server is the deterministic
analyst's.
"""

from __future__ import annotations

import shutil
import warnings
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from stock_assets.agents.assets import (
    FEATURE_DRIFT_CHECK,
    REPORT_QUALITY_CHECK,
    REPORT_SCHEMA,
    agent_report,
    drift_from_evaluation,
    latest_feature_drift,
    performance_metrics,
    report_quality_result,
)
from stock_assets.agents.resources import ReportCacheResource, ReportLLMResource
from stock_assets.lake import PanelFrames, partition_path
from stock_assets.partitions import trading_date_partitions
from stock_assets.testing import loop_home

# Every test here shares one price lake: keep them on one xdist worker (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("agent_report")

LAST_SESSION = date(2024, 6, 28)  # the synthetic market's last day
EARLIER_SESSION = date(2024, 6, 27)
FLAT_SESSION = date(2024, 6, 26)
JUNETEENTH = date(2024, 6, 19)  # a weekday partition with the market closed
GOOD_ROLLING = {
    "rolling_mape": 0.0184,
    "rolling_naive_mape": 0.0210,
    "rolling_directional_accuracy": 0.58,
    "rolling_n": 40,
}
CONTRACT_COLUMNS = [
    "ticker", "as_of_date", "stance", "confidence", "rationale", "markdown", "author",
    "cache_hit", "created_at",
]  # fmt: skip
REPORT_ENV_VARS = (
    "OLLAMA_BASE_URL", "OLLAMA_MODEL", "OLLAMA_EMBED_MODEL", "QDRANT_URL", "QDRANT_API_KEY",
    "STOCK_ASSETS_ENV",
)  # fmt: skip


def report_assets() -> list:
    """agent_report, the real price assets, and the forecasting tables as partitioned specs."""
    from stock_assets.ingestion.assets import market_index_prices, raw_prices

    upstream = [
        dg.AssetSpec("daily_forecast", partitions_def=trading_date_partitions),
        dg.AssetSpec("forecast_performance", partitions_def=trading_date_partitions),
    ]
    return [raw_prices, market_index_prices, agent_report, *upstream]


@pytest.fixture
def offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Ollama, no Qdrant server: what this machine (and the README's run) has."""
    for name in REPORT_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def price_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """AAPL and ^GSPC prices materialized once by the real ingestion assets (synthetic market)."""
    from stock_assets.ingestion.sources import PriceSourceResource
    from stock_assets.partitions import ticker_partitions
    from stock_assets.resources import build_resources

    home = tmp_path_factory.mktemp("prices_home")
    source = PriceSourceResource(
        kind="synthetic", synthetic_start="2023-01-03", synthetic_end=LAST_SESSION.isoformat()
    )
    run = build_resources(home, price_source=source)
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ticker_partitions.name, ["AAPL"])
    for selection, key in ((["raw_prices"], "AAPL"), (["market_index_prices"], None)):
        result = dg.materialize(
            report_assets(), selection=selection, partition_key=key, resources=run,
            instance=instance, run_config=quiet,
        )  # fmt: skip
        assert result.success
    return home / "lake"


@pytest.fixture
def closes(offline_env, price_lake: Path, project_home: Path) -> dict[date, float]:
    """This test's lake starts with the shared prices; AAPL's closes by date."""
    shutil.copytree(price_lake, project_home / "lake", dirs_exist_ok=True)
    prices = pl.read_parquet(partition_path(project_home / "lake", "raw_prices", "AAPL"))
    return dict(zip(prices["date"].to_list(), prices["close"].to_list(), strict=True))


def report(materialize, resources: dict, day: date, ticker: str = "AAPL"):
    """Materialize agent_report[day] (the tickers with a forecast that day): (result, its
    materialization, its check evaluation)."""
    result = materialize(
        ["agent_report"], resources, partition_key=day.isoformat(), assets=report_assets(),
    )  # fmt: skip
    assert result.success, materialize.failures(result)
    [materialization] = result.asset_materializations_for_node("agent_report")
    [evaluation] = result.get_asset_check_evaluations()
    return result, materialization, evaluation


def stored_report(resources: dict, day: date, ticker: str = "AAPL") -> pl.DataFrame:
    return resources["lake"].read("agent_report", ticker, day.isoformat())


def meta(materialization, name: str):
    return materialization.metadata[name].value


# -- end to end -------------------------------------------------------------------------------


def test_report_on_the_real_forecast_end_to_end(tmp_path, offline_env) -> None:
    with loop_home(tmp_path, synthetic_start="2023-01-03") as home:
        home.ingest(["AAPL"], LAST_SESSION)
        home.train(["AAPL"])
        home.backtest("AAPL", "2024-06-14", EARLIER_SESSION)  # forecasts that mature by D
        daily = home.daily(LAST_SESSION, "AAPL")  # D's forecast, its score and both checks
        # A holiday: zero forecast rows (the partition exists, as the daily job would write it).
        home.materialize(["daily_forecast"], JUNETEENTH.isoformat(), checks=False)

        def report_of(day: date) -> tuple[dict, dict, dg.AssetCheckEvaluation]:
            result = home.materialize(["agent_report"], day.isoformat())
            [materialization] = result.asset_materializations_for_node("agent_report")
            [check] = [
                e for e in result.get_asset_check_evaluations() if e.check_name == "report_quality"
            ]
            frame = home.lake.read("agent_report", "AAPL", day.isoformat())
            row = frame.row(0, named=True) if frame.height else {}
            return row, {k: v.value for k, v in materialization.metadata.items()}, check

        row, metadata, check = report_of(LAST_SESSION)
        forecast = home.forecast("AAPL", LAST_SESSION).sort("horizon")
        performance = home.performance("AAPL", LAST_SESSION).row(0, named=True)
        [drift] = [
            e for e in daily.get_asset_check_evaluations() if e.check_name == "feature_drift"
        ]
        prices = home.lake.read("raw_prices", "AAPL")
        last_close = prices.filter(pl.col("date") == LAST_SESSION)["close"].item()

        # The numbers in the report are the data's: the close on D, the model's t+5 close, the
        # rolling MAPEs and direction of forecast_performance[D], the feature_drift check's share.
        markdown = row["markdown"]
        final_close = forecast["predicted_close"][-1]
        move_pct = 100 * (final_close / last_close - 1)
        assert forecast["last_close"][0] == pytest.approx(last_close)
        assert f"- **Last close:** {last_close:.2f}\n" in markdown
        assert f"{final_close:.2f} ({move_pct:+.2f}%)" in markdown
        assert f"- **Rolling MAPE:** {100 * performance['rolling_mape']:.2f}%\n" in markdown
        assert f"- **Naive MAPE:** {100 * performance['rolling_naive_mape']:.2f}%\n" in markdown
        if performance["rolling_directional_accuracy"] is None:  # no matured forecast made a call
            assert "- **Directional accuracy:** n/a\n" in markdown
        else:
            accuracy = 100 * performance["rolling_directional_accuracy"]
            assert f"{accuracy:.1f}% over {performance['rolling_n']} matured forecasts" in markdown
        # The final step's 80 % range and p_up, as daily_forecast holds them.
        final = forecast.row(-1, named=True)
        band = f"{final['close_q10']:.2f} to {final['close_q90']:.2f}"
        assert f"- **80% range t+{final['horizon']}:** {band} (" in markdown
        chance = f"{100 * final['p_up']:.1f}%"
        assert f"- **Probability of a rise by t+{final['horizon']}:** {chance}\n" in markdown
        share = drift.metadata["drift_share"].value
        assert f"- **Feature drift:** {100 * share:.1f}% of features drifted" in markdown
        # The stance never goes against the forecast's direction.
        direction = "flat" if abs(move_pct) < 0.25 else ("up" if move_pct > 0 else "down")
        allowed = {
            "up": {"BULLISH", "NEUTRAL"},
            "down": {"BEARISH", "NEUTRAL"},
            "flat": {"NEUTRAL"},
        }
        assert row["stance"] in allowed[direction]
        assert check.metadata["forecast_direction"].value == direction
        assert (row["ticker"], row["as_of_date"], row["author"]) == (
            "AAPL", LAST_SESSION, "deterministic-analyst",
        )  # fmt: skip
        assert row["model_version"] == forecast["model_version"][0]
        assert "_Written by deterministic-analyst." in markdown
        assert set(CONTRACT_COLUMNS) <= set(row) and list(row) == list(REPORT_SCHEMA)
        assert metadata["report"] == markdown and metadata["stance"] == row["stance"]
        assert (metadata["cache_hit"], metadata["cache_hits"], metadata["cache_misses"]) == (
            False, 0, 1,
        )  # fmt: skip
        assert metadata["cache"] == f"embedded {home.home / 'qdrant'}"
        assert check.passed, check.description
        assert check.partition == LAST_SESSION.isoformat()

        # The same partition again: served from Qdrant, the same report, counted as a hit.
        again, metadata, check = report_of(LAST_SESSION)
        assert (metadata["cache_hit"], metadata["cache_hits"], metadata["cache_misses"]) == (
            True, 1, 0,
        )  # fmt: skip
        assert again["cache_hit"] is True and again["markdown"] == markdown and check.passed

        # A forecast by a new model version (the same numbers, as from a retrained model): a miss.
        version = str(int(forecast["model_version"][0]) + 1)
        home.lake.write(
            forecast.with_columns(pl.lit(version).alias("model_version")),
            "daily_forecast", "AAPL", LAST_SESSION.isoformat(),
        )  # fmt: skip
        newest, metadata, check = report_of(LAST_SESSION)
        assert (metadata["cache_hit"], metadata["cache_misses"]) == (False, 1)
        assert newest["model_version"] == version and f"version {version};" in newest["markdown"]
        assert check.passed

        # The holiday: an empty report table that says why.
        closed, metadata, check = report_of(JUNETEENTH)
        assert closed == {} and metadata["dagster/row_count"] == 0
        assert metadata["status"] == "market closed on 2024-06-19: no forecast, no report"
        assert check.passed and check.metadata["market_closed"].value is True

        # The API serves the newest materialized report.
        from fastapi.testclient import TestClient

        from serving.main import create_app
        from serving.settings import Settings

        settings = Settings(lake_dir=home.home / "lake", reference_date=date(2024, 7, 1))
        with TestClient(create_app(settings)) as client:
            served = client.get("/reports/AAPL")
        assert served.status_code == 200, served.text
        body = served.json()
        assert (body["ticker"], body["as_of_date"], body["stance"], body["author"]) == (
            "AAPL", "2024-06-28", newest["stance"], "deterministic-analyst",
        )  # fmt: skip
        assert body["markdown"] == newest["markdown"] and body["cache_hit"] is False


def test_stance_follows_the_forecast_direction_and_its_range(
    closes, forecast_contract, materialize, resources
) -> None:
    run = resources()
    old_lake = None  # a partition written before forecasts had quantiles and p_up
    cases = {
        LAST_SESSION: (0.02, 0.015, "BULLISH", "up"),
        EARLIER_SESSION: (-0.03, 0.015, "BEARISH", "down"),
        FLAT_SESSION: (0.001, 0.015, "NEUTRAL", "flat"),
        # Up 0.8 % in a range of about -3.5 % to +5.2 %: the band straddles the close, no call.
        date(2024, 6, 25): (0.008, 0.015, "NEUTRAL", "up"),
        date(2024, 6, 24): (0.008, old_lake, "BULLISH", "up"),
    }
    for day, (log_return, daily_vol, stance, direction) in cases.items():
        frame = forecast_contract.write_contract_forecast(
            "AAPL", day, closes[day], log_return, daily_vol=daily_vol
        )
        forecast_contract.write_contract_performance("AAPL", day, GOOD_ROLLING, closes)
        _, materialization, check = report(materialize, run, day)
        row = stored_report(run, day).row(0, named=True)
        assert (row["stance"], meta(materialization, "stance")) == (stance, stance), day
        assert check.passed and check.metadata["forecast_direction"].value == direction
        final = frame.sort("horizon").row(-1, named=True)
        if daily_vol is old_lake:
            assert "- **80% range t+5:** unavailable" in row["markdown"]
            assert check.metadata["range_80_pct"].value == "unavailable"
        else:
            band = f"{final['close_q10']:.2f} to {final['close_q90']:.2f}"
            assert f"- **80% range t+5:** {band} (" in row["markdown"]
            chance = f"- **Probability of a rise by t+5:** {100 * final['p_up']:.1f}%"
            assert chance in row["markdown"]


def test_an_llm_report_that_contradicts_the_forecast_fails_the_check(
    closes, forecast_contract, materialize, resources, stub_ollama, closed_port_url
) -> None:
    # The stub Ollama answers BEARISH every time; the forecast is up, so the critic sends the
    # draft back once, gets BEARISH again and does not approve. The report is stored (the check
    # does not block) and the check fails, naming the contradiction.
    forecast_contract.write_contract_forecast("AAPL", LAST_SESSION, closes[LAST_SESSION], 0.02)
    forecast_contract.write_contract_performance("AAPL", LAST_SESSION, GOOD_ROLLING, closes)
    llm = ReportLLMResource(ollama_base_url=stub_ollama, ollama_model="stub-model")
    run = resources(report_llm=llm)
    _, materialization, check = report(materialize, run, LAST_SESSION)
    row = stored_report(run, LAST_SESSION).row(0, named=True)
    assert (row["author"], row["stance"], row["critic_approved"]) == (
        "ollama:stub-model", "BEARISH", False,
    )  # fmt: skip
    assert meta(materialization, "critic_rounds") == 1
    assert meta(materialization, "cache_stores") == 0  # a rejected report is never cached
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "stance BEARISH but the forecast direction is up" in check.metadata["failures"].value
    assert "the critic did not approve the verdict" in check.metadata["failures"].value

    # Ollama configured but down: the deterministic analyst writes it, and the byline says so.
    unreachable = ReportLLMResource(ollama_base_url=closed_port_url, ollama_model="m")
    down = resources(report_llm=unreachable)
    _, materialization, check = report(materialize, down, LAST_SESSION)
    row = stored_report(down, LAST_SESSION).row(0, named=True)
    assert row["author"] == "deterministic-analyst" and row["stance"] == "BULLISH"
    assert meta(materialization, "writer") == "deterministic-analyst (ollama:m unreachable)"
    assert "_Written by deterministic-analyst (ollama:m unreachable)." in row["markdown"]
    assert check.passed


# -- the check on crafted rows, and the pure helpers ------------------------------------------


def test_crafted_bad_reports_fail_the_quality_check(make_inputs) -> None:
    from datetime import UTC, datetime

    from stock_assets.agents.graph import write_report
    from stock_assets.agents.llm import DeterministicAnalystLLM

    inputs = make_inputs(final_return_pct=2.0)
    good = write_report(inputs, DeterministicAnalystLLM()).to_row(datetime(2024, 6, 3, tzinfo=UTC))
    assert report_quality_result(good, inputs).passed
    close_line = f"- **Last close:** {inputs.last_close:.2f}"
    assert close_line in good["markdown"]
    tampered = {
        "a wrong last close": {
            "markdown": good["markdown"].replace(
                close_line, f"- **Last close:** {inputs.last_close + 1:.2f}"
            )
        },
        "a stance against the forecast": {"stance": "BEARISH"},
        "an invalid confidence": {"confidence": "Certain"},
        "a missing section": {
            "markdown": good["markdown"].replace("## Market context", "## Other")
        },
        "an invented number": {
            "markdown": good["markdown"].replace(
                "## Verdict", "Analysts see a 37.25% upside.\n\n## Verdict"
            )
        },
        "another author": {"author": "ollama:llama3.2"},
    }
    for name, change in tampered.items():
        result = report_quality_result({**good, **change}, inputs)
        assert not result.passed, name
        assert result.check_name == REPORT_QUALITY_CHECK and result.description, name
    wrong_close = report_quality_result({**good, **tampered["a wrong last close"]}, inputs)
    assert wrong_close.metadata["number_mismatches"].value == 1
    assert wrong_close.description.startswith("Last close: report says")


def test_performance_metrics_are_quoted_in_percent() -> None:
    frame = pl.DataFrame([GOOD_ROLLING, GOOD_ROLLING])
    assert performance_metrics(frame) == pytest.approx(
        {"rolling_mape_pct": 1.84, "naive_mape_pct": 2.10, "directional_accuracy": 0.58,
         "n_matured": 40}
    )  # fmt: skip
    assert performance_metrics(frame.head(0)) is None
    unmeasured = pl.DataFrame(
        [{**GOOD_ROLLING, "rolling_mape": float("nan"), "rolling_directional_accuracy": None}]
    )
    metrics = performance_metrics(unmeasured)
    assert metrics["rolling_mape_pct"] is None and metrics["directional_accuracy"] is None


def test_drift_from_evaluation_reads_the_checks_metadata() -> None:
    assert drift_from_evaluation(False, {"drift_share": dg.MetadataValue.float(0.4)}) == {
        "drift_share": 0.4, "drifted": True,
    }  # fmt: skip
    assert drift_from_evaluation(True, {"drift_share": 0.1, "drifted": False}) == {
        "drift_share": 0.1, "drifted": False,
    }  # fmt: skip
    assert drift_from_evaluation(True, {"other": 1}) is None


def test_a_drift_alarm_on_the_forecast_makes_the_report_neutral(
    closes, forecast_contract, materialize, resources, instance
) -> None:
    # daily_forecast evaluates feature_drift per date for every ticker, each ticker's verdict in
    # `results` (stock_assets/forecasting/checks.py); a stand-in with the same check key records a
    # drift alarm for AAPL on LAST_SESSION only.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        spec = dg.AssetCheckSpec(
            FEATURE_DRIFT_CHECK.name, asset="daily_forecast", partitions_def=trading_date_partitions
        )
    frame = forecast_contract.forecast_frame("AAPL", LAST_SESSION, closes[LAST_SESSION], 0.02)

    @dg.asset(name="daily_forecast", partitions_def=trading_date_partitions, check_specs=[spec])
    def drifted_forecast():
        yield dg.Output(PanelFrames({(LAST_SESSION.isoformat(), "AAPL"): frame}))
        yield dg.AssetCheckResult(
            check_name=FEATURE_DRIFT_CHECK.name,
            passed=False,
            metadata={
                "as_of_date": "2024-06-28",
                "results": {"AAPL": {"passed": False, "drift_share": 0.625, "drifted": True}},
            },
        )

    assert latest_feature_drift(instance, FEATURE_DRIFT_CHECK, LAST_SESSION, "AAPL") is None
    assets = [a for a in report_assets() if a.key != FEATURE_DRIFT_CHECK.asset_key]
    run = resources()
    result = materialize(
        ["daily_forecast"], run, LAST_SESSION.isoformat(), assets=[*assets, drifted_forecast]
    )
    assert result.success, materialize.failures(result)
    assert latest_feature_drift(instance, FEATURE_DRIFT_CHECK, LAST_SESSION, "AAPL") == {
        "drift_share": 0.625, "drifted": True,
    }  # fmt: skip
    assert latest_feature_drift(instance, FEATURE_DRIFT_CHECK, EARLIER_SESSION, "AAPL") is None
    assert latest_feature_drift(instance, FEATURE_DRIFT_CHECK, LAST_SESSION, "MSFT") is None

    forecast_contract.write_contract_performance("AAPL", LAST_SESSION, GOOD_ROLLING, closes)
    _, materialization, check = report(materialize, run, LAST_SESSION)
    row = stored_report(run, LAST_SESSION).row(0, named=True)
    assert "- **Feature drift:** 62.5% of features drifted (drift alarm)" in row["markdown"]
    assert "- **Reliability grade:** weak" in row["markdown"]
    # An up forecast from a model whose inputs drifted: no directional call.
    assert (row["stance"], row["confidence"]) == ("NEUTRAL", "Low")
    assert check.passed and check.metadata["reliability_grade"].value == "weak"
    assert meta(materialization, "drift") == str({"drift_share": 0.625, "drifted": True})


# -- resources --------------------------------------------------------------------------------


def test_report_resources_come_from_the_environment(
    project_home, offline_env, monkeypatch, closed_port_url
) -> None:
    from stock_assets.agents.llm import DeterministicAnalystLLM
    from stock_assets.resources import build_resources

    local = build_resources(project_home)
    assert local["report_llm"].get_llm().name == "deterministic-analyst"
    assert local["report_cache"].qdrant_path == str(project_home / "qdrant")
    assert local["report_cache"].qdrant_url is None

    monkeypatch.setenv("OLLAMA_BASE_URL", closed_port_url)
    monkeypatch.setenv("OLLAMA_MODEL", "llama3.2:3b")
    monkeypatch.setenv("QDRANT_URL", "http://qdrant:6333")
    configured = build_resources(project_home)
    llm, cache = configured["report_llm"], configured["report_cache"]
    assert (llm.ollama_base_url, llm.ollama_model) == (closed_port_url, "llama3.2:3b")
    assert (cache.qdrant_url, cache.qdrant_path) == ("http://qdrant:6333", None)
    fallback = llm.get_llm()  # configured but nothing listens: the deterministic analyst
    assert isinstance(fallback, DeterministicAnalystLLM)
    assert fallback.note == "ollama:llama3.2:3b unreachable"


def test_cache_resource_releases_the_embedded_store_between_calls(tmp_path, make_inputs) -> None:
    from stock_assets.agents.graph import write_report
    from stock_assets.agents.llm import DeterministicAnalystLLM

    resource = ReportCacheResource(qdrant_path=str(tmp_path / "qdrant"), lock_wait_s=0.2)
    llm, inputs = DeterministicAnalystLLM(), make_inputs()
    # Two steps open the same embedded folder at once (as parallel Dagster steps do).
    with resource.open() as first, resource.open() as second:
        assert first.lookup(inputs, requested_by=llm.name) is None
        assert second.lookup(inputs, requested_by=llm.name) is None  # not locked out
        written = write_report(inputs, llm, cache=first)
        assert written.cache_hit is False and first.stats.stores == 1
        assert second.lookup(inputs, requested_by=llm.name).markdown == written.markdown
        assert first.stats.unavailable == second.stats.unavailable == 0


# -- wiring -----------------------------------------------------------------------------------


def test_agent_report_is_wired_into_the_code_location() -> None:
    from stock_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("agent_report"))
    assert node.group_name == "agents" and node.partitions_def == trading_date_partitions
    assert {k.to_user_string() for k in node.parent_keys} == {
        "daily_forecast", "forecast_performance", "raw_prices", "market_index_prices",
    }  # fmt: skip
    [check_key] = [k for k in graph.asset_check_keys if k.asset_key == node.key]
    spec = graph.get_check_spec(check_key)
    assert (check_key.name, spec.blocking, spec.partitions_def) == (
        "report_quality", False, trading_date_partitions,
    )  # fmt: skip
    # The drift the report quotes is the monitoring stage's check on the same forecast partition.
    from stock_assets.forecasting.checks import FEATURE_DRIFT_SPEC

    assert FEATURE_DRIFT_SPEC.key == FEATURE_DRIFT_CHECK
    assert FEATURE_DRIFT_SPEC.partitions_def == trading_date_partitions
    assert isinstance(defs.resources["report_llm"], ReportLLMResource)
    assert isinstance(defs.resources["report_cache"], ReportCacheResource)


def test_the_reports_stage_follows_the_forecasts_dates() -> None:
    from stock_assets.plan import forecast_stages, plan_stages, report_stages

    as_of = {"AAPL": LAST_SESSION, "MSFT": EARLIER_SESSION}
    [stage] = report_stages(as_of, workers=2)
    assert [(l.job, l.partition_key, dict(l.tags)["stock_assets/tickers"]) for l in stage.launches] == [
        ("reports_job", "2024-06-27", "MSFT"),
        ("reports_job", "2024-06-28", "AAPL"),
    ]
    latest = forecast_stages(as_of, workers=2)[-1].launches  # not the warm-ups
    assert [(l.partition_key, l.tags) for l in latest] == [
        (l.partition_key, l.tags) for l in stage.launches
    ]
    names = [s.name for s in plan_stages(["AAPL"], as_of={"AAPL": LAST_SESSION})]
    assert names[-2:] == ["reports", "strategy"] and names.index("reports") > names.index("forecasts")
