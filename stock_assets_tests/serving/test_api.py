"""Every endpoint against a lake the real pipeline produced (conftest's `pipeline_lake`: ingestion,
tiny models, a back-test, the daily job, agent reports): happy paths with the numbers checked
against the Parquet files, then each error case (404 unknown / not materialized, 422 rules, 503
for broken files), none of which may answer 500 or show a stack trace."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from serving.main import create_app
from serving.settings import Settings
from stock_assets.lake import partition_path

LAST_SESSION = date(2024, 7, 3)
NEXT_FIVE_SESSIONS = ["2024-07-05", "2024-07-08", "2024-07-09", "2024-07-10", "2024-07-11"]


def fresh_client(lake, **settings) -> TestClient:
    """An app with no answer caching, over a lake the test may change."""
    return TestClient(create_app(Settings(lake_dir=lake.dir, revalidate_seconds=0, **settings)))


def instant(value: str) -> datetime:
    """An API timestamp ('...Z') as an aware datetime, to compare with the lake's."""
    return datetime.fromisoformat(value)


def assert_error(response, status: int, error: str, *fragments: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    for fragment in fragments:
        assert fragment in body["detail"], body["detail"]
    assert "Traceback" not in response.text
    return body


# -- happy paths -------------------------------------------------------------------------------


def test_tickers_lists_each_ticker_with_its_last_price_and_model(client, pipeline_lake):
    body = client.get("/tickers").json()
    assert body["count"] == 2
    by_ticker = {t["ticker"]: t for t in body["tickers"]}
    assert sorted(by_ticker) == ["AAPL", "MSFT"]
    for ticker, summary in by_ticker.items():
        prices = pipeline_lake.prices(ticker)
        card = pipeline_lake.read("child_model", ticker).row(0, named=True)
        assert summary["last_price_date"] == str(prices["date"].max()) == "2024-07-03"
        assert summary["price_rows"] == prices.height
        assert summary["has_production_model"] is True
        # Each ticker's first model was promoted; AAPL's second candidate was not.
        assert summary["production_version"] == card["production_version"] == "1"
        # 2024-07-04 is a market-closed (zero-row) partition: the latest forecast is 07-03.
        assert summary["latest_forecast_date"] == "2024-07-03"


def test_latest_forecasts_has_one_row_per_ticker_with_the_last_step(client, pipeline_lake):
    body = client.get("/forecasts/latest").json()
    assert body["count"] == 2
    assert body["tickers_without_forecast"] == []
    for row in body["forecasts"]:
        stored = pipeline_lake.forecast(row["ticker"], LAST_SESSION).sort("horizon")
        last = stored.row(-1, named=True)
        assert row["as_of_date"] == "2024-07-03"
        assert row["horizon"] == 5
        assert row["target_date"] == "2024-07-11"
        assert row["predicted_close"] == pytest.approx(last["predicted_close"], rel=1e-12)
        assert row["predicted_return"] == pytest.approx(last["predicted_return"], rel=1e-12)
        assert row["last_close"] == pytest.approx(pipeline_lake.prices(row["ticker"])["close"][-1])
        assert row["model_name"] == last["model_name"] == f"stock_assets.{row['ticker']}"
        assert row["model_version"] == last["model_version"] == "1"
        assert instant(row["created_at"]) == last["created_at"]


def test_ticker_forecast_is_the_stored_path(client, pipeline_lake):
    body = client.get("/forecasts/AAPL").json()
    stored = pipeline_lake.forecast("AAPL", LAST_SESSION)
    assert body["ticker"] == "AAPL"
    assert body["as_of_date"] == "2024-07-03"  # the input window's end
    assert body["horizon"] == 5
    assert body["model_name"] == "stock_assets.AAPL"
    assert body["model_version"] == "1"
    assert instant(body["created_at"]) == stored["created_at"][0]
    assert body["last_close"] == pytest.approx(stored["last_close"][0], rel=1e-12)
    assert body["last_close"] == pytest.approx(pipeline_lake.prices("AAPL")["close"][-1])
    assert [p["target_date"] for p in body["points"]] == NEXT_FIVE_SESSIONS
    assert [p["horizon"] for p in body["points"]] == [1, 2, 3, 4, 5]
    assert [p["predicted_close"] for p in body["points"]] == pytest.approx(
        stored["predicted_close"].to_list(), rel=1e-12
    )
    assert [p["predicted_return"] for p in body["points"]] == pytest.approx(
        stored["predicted_return"].to_list(), rel=1e-12, abs=1e-15
    )
    for point in body["points"]:
        assert point["predicted_close"] == pytest.approx(
            body["last_close"] * math.exp(point["predicted_return"]), rel=1e-9
        )


@pytest.mark.parametrize(
    ("as_of", "served"),
    [
        ("2024-06-20", "2024-06-20"),  # a session: its own forecast
        ("2024-06-19", "2024-06-18"),  # Juneteenth: a zero-row partition, so the session before
        ("2024-06-22", "2024-06-21"),  # a Saturday: no partition at all
        ("2030-01-01", "2024-07-03"),  # after the last: the latest
    ],
)
def test_ticker_forecast_as_of_a_past_date(client, pipeline_lake, as_of, served):
    body = client.get("/forecasts/MSFT", params={"as_of": as_of}).json()
    assert body["as_of_date"] == served
    stored = pipeline_lake.forecast("MSFT", date.fromisoformat(served)).sort("horizon")
    assert [p["predicted_close"] for p in body["points"]] == pytest.approx(
        stored["predicted_close"].to_list(), rel=1e-12
    )


def test_index_is_addressed_by_symbol_or_key(client, pipeline_lake):
    by_symbol = client.get("/history/^GSPC", params={"days": 3}).json()
    by_key = client.get("/history/GSPC", params={"days": 3}).json()
    assert by_symbol == by_key
    index = pl.read_parquet(pipeline_lake.dir / "market_index_prices.parquet").tail(3)
    assert [c["close"] for c in by_key["closes"]] == pytest.approx(index["close"].to_list())
    assert by_key["forecast"] is None


def test_history_overlays_forecasts_on_actual_closes(client, pipeline_lake):
    body = client.get("/history/AAPL", params={"days": 10}).json()
    prices = pipeline_lake.prices("AAPL").tail(10)
    assert [c["date"] for c in body["closes"]] == [str(d) for d in prices["date"]]
    assert [c["close"] for c in body["closes"]] == pytest.approx(prices["close"].to_list())
    assert body["forecast"]["as_of_date"] == "2024-07-03"
    assert len(body["forecast"]["points"]) == 5
    # Horizon-1 forecasts that matured inside the window: one per session, each made the
    # session before (forecasts exist for the last 30 sessions).
    matured = body["matured"]
    assert [m["target_date"] for m in matured] == [str(d) for d in prices["date"]]
    sessions = pipeline_lake.prices("AAPL")["date"].to_list()
    for m in matured:
        made_on = sessions[sessions.index(date.fromisoformat(m["target_date"])) - 1]
        assert m["as_of_date"] == str(made_on)
        stored = pipeline_lake.forecast("AAPL", made_on).filter(pl.col("horizon") == 1)
        assert m["predicted_close"] == pytest.approx(stored["predicted_close"][0], rel=1e-12)
        assert m["actual_close"] == pytest.approx(
            prices.filter(pl.col("date") == date.fromisoformat(m["target_date"]))["close"][0]
        )


def test_history_days_longer_than_the_data_returns_all_of_it(client, pipeline_lake):
    body = client.get("/history/MSFT", params={"days": 2000}).json()
    assert len(body["closes"]) == pipeline_lake.prices("MSFT").height
    assert body["days"] == 2000


def test_performance_reports_rolling_metrics_and_the_check(client, pipeline_lake):
    body = client.get("/performance/AAPL", params={"days": 7}).json()
    stored = pipeline_lake.performance("AAPL", LAST_SESSION).sort("horizon")
    first = stored.row(0, named=True)
    assert body["date"] == "2024-07-03"  # 07-04's partition is market-closed (zero rows)
    assert body["rolling_mape"] == pytest.approx(first["rolling_mape"])
    assert body["rolling_naive_mape"] == pytest.approx(first["rolling_naive_mape"])
    # Hits among directional calls: null when no forecast in the window made a call.
    accuracy = first["rolling_directional_accuracy"]
    assert body["rolling_directional_accuracy"] == (
        None if accuracy is None else pytest.approx(accuracy)
    )
    assert body["rolling_n"] == first["rolling_n"] == 100  # 20 dates x 5 horizons
    assert body["beats_naive"] is (first["rolling_mape"] < first["rolling_naive_mape"])
    assert body["skill_vs_naive"] == pytest.approx(
        1 - first["rolling_mape"] / first["rolling_naive_mape"]
    )
    check = body["check"]
    assert (check["evidence"], check["mape"]) == ("live", pytest.approx(first["rolling_mape"]))
    assert check["naive_mape"] == pytest.approx(first["rolling_naive_mape"])
    assert (check["threshold"], check["naive_margin"], check["min_rolling_n"]) == (0.05, 0.25, 5)
    # The forecasts that matured on 07-03: made 1..5 sessions before, one per horizon.
    assert [m["horizon"] for m in body["matured"]] == [1, 2, 3, 4, 5]
    assert {m["target_date"] for m in body["matured"]} == {"2024-07-03"}
    for served, row in zip(body["matured"], stored.iter_rows(named=True), strict=True):
        assert served["as_of_date"] == str(row["as_of_date"])
        assert served["predicted_close"] == pytest.approx(row["predicted_close"], rel=1e-12)
        assert served["actual_close"] == pytest.approx(row["actual_close"], rel=1e-12)
        assert served["ape"] == pytest.approx(row["ape"], rel=1e-12)
        assert served["direction_hit"] is row["direction_hit"]
    assert len(body["series"]) == 7
    assert body["series"][-1]["date"] == "2024-07-03"
    assert [p["date"] for p in body["series"]] == sorted(p["date"] for p in body["series"])


@pytest.mark.parametrize("ticker", ["AAPL", "MSFT"])
def test_performance_check_is_the_verdict_of_dagsters_forecast_mape_check(
    client, pipeline_lake, ticker
):
    # The daily job evaluated forecast_mape on 2024-07-03 for each ticker (monitoring's defaults).
    verdict = pipeline_lake.mape_verdicts[ticker]
    assert verdict.partition == "2024-07-03"  # one evaluation for every ticker of the date
    check = client.get(f"/performance/{ticker}").json()["check"]
    assert check["status"] == ("passing" if verdict.passed else "failing"), verdict.description
    assert f"{100 * check['mape']:.2f}%" in verdict.description  # the same MAPE was judged


def test_performance_check_status_follows_the_settings(pipeline_lake, writable_lake):
    strict = fresh_client(pipeline_lake, mape_threshold=0.0001).get("/performance/AAPL").json()
    lenient = fresh_client(pipeline_lake, mape_threshold=0.5).get("/performance/AAPL").json()
    assert strict["check"]["status"] == "failing"
    assert lenient["check"]["status"] == "passing"
    # Too few matured forecasts: like Dagster's check, judge the production model's test MAPE
    # (model cards store percent; the API answers fractions).
    picky = fresh_client(pipeline_lake, min_rolling_n=1000).get("/performance/AAPL").json()
    production = pipeline_lake.read("model_history", "AAPL").row(0, named=True)
    assert production["model_version"] == "1"
    assert picky["check"]["evidence"] == "model_test"
    assert picky["check"]["mape"] == pytest.approx(production["test_mape_h5"] / 100)
    assert picky["check"]["naive_mape"] == pytest.approx(production["naive_mape_h5"] / 100)
    assert picky["check"]["status"] == "passing"  # ~3 %, within 5 % and naive x 1.25
    for asset in ("child_model", "model_history"):
        partition_path(writable_lake.dir, asset, "AAPL").unlink()
    blind = fresh_client(writable_lake, min_rolling_n=1000).get("/performance/AAPL").json()
    assert (blind["check"]["status"], blind["check"]["evidence"]) == ("insufficient_data", "none")


def test_performance_thresholds_are_monitorings_variables(
    writable_home, pipeline, monkeypatch
):
    """One STOCK_ASSETS_MAPE_THRESHOLD drives Dagster's check and the API's status."""
    monkeypatch.setenv("STOCK_ASSETS_MAPE_THRESHOLD", "0.02")  # AAPL's rolling MAPE is ~3.7 %
    with pipeline.pipeline_home(writable_home.home.parent, reopen=True) as home:
        daily = home.daily(LAST_SESSION, "AAPL")
    [verdict] = [e for e in daily.get_asset_check_evaluations() if e.check_name == "forecast_mape"]
    check = fresh_client(writable_home).get("/performance/AAPL").json()["check"]
    assert verdict.passed is False
    assert (check["status"], check["threshold"]) == ("failing", 0.02)
    assert check["mape"] == pytest.approx(verdict.metadata["mape"].value)


def test_models_show_production_version_metrics_and_promotion_history(client, pipeline_lake):
    aapl = client.get("/models/AAPL").json()
    history = pipeline_lake.read("model_history", "AAPL").sort("trained_at")
    card = pipeline_lake.read("child_model", "AAPL").row(0, named=True)
    v1 = history.row(0, named=True)
    assert [c["model_version"] for c in aapl["history"]] == ["1", "2"]
    assert [c["promoted"] for c in aapl["history"]] == history["promoted"].to_list()
    assert history["promoted"].to_list() == [True, False]  # v2 did not beat v1
    assert aapl["model_name"] == card["model_name"] == "stock_assets.AAPL"
    assert aapl["production_version"] == card["production_version"] == "1"
    production = aapl["production"]
    assert production["model_version"] == "1"
    assert production["run_id"] == v1["run_id"]
    assert (production["strategy"], production["architecture"]) == (v1["strategy"], "lstm")
    assert instant(production["trained_at"]) == v1["trained_at"]
    assert production["train_start"] == str(v1["train_start"])
    assert production["train_end"] == str(v1["train_end"])
    for name in ("test_mape_h1", "test_mape_h5", "naive_mape_h5"):  # percent -> fraction
        assert production["metrics"][name] == pytest.approx(v1[name] / 100)
    assert production["metrics"]["directional_accuracy_h5"] == pytest.approx(
        v1["directional_accuracy_h5"]
    )
    assert production["persistence_fallback"] is v1["persistence_fallback"]
    assert production["metrics"]["network_test_mape_h5"] == pytest.approx(
        v1["network_test_mape_h5"] / 100
    )
    assert aapl["latest"]["model_version"] == card["model_version"] == "2"
    assert aapl["latest"]["promoted"] is False
    assert aapl["latest"]["decision_reason"] == card["decision_reason"]
    msft = client.get("/models/MSFT").json()
    assert [c["model_version"] for c in msft["history"]] == ["1"]
    assert msft["production"] == msft["latest"]
    assert msft["latest"]["decision_reason"].startswith("no production model yet")


def test_models_of_the_index_are_the_parent_models_card(client, pipeline_lake):
    parent = pipeline_lake.read("parent_model").row(0, named=True)
    for ticker in ("GSPC", "^GSPC"):
        body = client.get(f"/models/{ticker}").json()
        assert body["model_name"] == parent["model_name"] == "stock_assets.GSPC"
        assert body["production_version"] == parent["production_version"]
        assert body["latest"]["run_id"] == parent["run_id"]
        assert body["latest"]["strategy"] == "parent"
        assert [c["model_version"] for c in body["history"]] == [parent["model_version"]]


@pytest.mark.parametrize(
    ("as_of", "served"),
    [(None, "2024-07-03"), ("2024-07-02", "2024-07-02"), ("2030-01-01", "2024-07-03")],
)
def test_reports_serve_the_latest_or_the_one_as_of_a_date(client, pipeline_lake, as_of, served):
    params = {"as_of": as_of} if as_of else {}
    body = client.get("/reports/AAPL", params=params).json()
    stored = pipeline_lake.read("agent_report", "AAPL", date.fromisoformat(served))
    row = stored.row(0, named=True)
    assert body["as_of_date"] == served == str(row["as_of_date"])
    for name in ("stance", "confidence", "rationale", "markdown", "author", "cache_hit"):
        assert body[name] == row[name], name
    assert instant(body["created_at"]) == row["created_at"]
    assert body["author"] == "deterministic-analyst"
    assert body["markdown"].startswith(f"# AAPL: daily analysis for {served}")


def test_health_reports_fresh_data(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok", body["problems"]
    assert body["reference_date"] == "2024-07-05"
    assets = {a["asset"]: a for a in body["assets"]}
    assert assets["raw_prices"]["latest_date"] == "2024-07-03"
    assert assets["raw_prices"]["age_days"] == 2
    assert assets["daily_forecast"]["tickers"] == 2
    assert assets["agent_report"]["missing_tickers"] == ["MSFT"]  # optional: no problem


def test_health_flags_stale_and_missing_data(writable_lake):
    shutil.rmtree(writable_lake.dir / "daily_forecast" / "MSFT")
    body = fresh_client(writable_lake, reference_date=date(2024, 7, 15)).get("/health").json()
    assert body["status"] == "degraded"
    assert "daily_forecast: not materialized for MSFT" in body["problems"]
    assert any(p.startswith("raw_prices: AAPL, MSFT older than 4 days") for p in body["problems"])
    assets = {a["asset"]: a for a in body["assets"]}
    assert assets["raw_prices"]["stale"] is True
    assert assets["raw_prices"]["age_days"] == 12


def test_metrics_count_requests_by_route_template_and_expose_data_age(client):
    before = client.get("/metrics").text
    for ticker in ("AAPL", "MSFT", "ZZZZ"):
        client.get(f"/forecasts/{ticker}")
    text = client.get("/metrics").text

    def count(body: str, status: str) -> float:
        line = (
            f'http_requests_total{{handler="/forecasts/{{ticker}}",method="GET",status="{status}"}}'
        )
        values = [float(x.split()[-1]) for x in body.splitlines() if x.startswith(line)]
        return values[0] if values else 0.0

    assert count(text, "200") - count(before, "200") == 2
    assert count(text, "404") - count(before, "404") == 1
    assert (
        'http_request_duration_seconds_bucket{handler="/forecasts/{ticker}",le="0.005",method="GET"}'
        in text
    )
    assert 'stock_assets_data_age_days{asset="raw_prices"} 2.0' in text
    assert 'stock_assets_data_tickers{asset="daily_forecast"} 2.0' in text
    assert "/forecasts/AAPL" not in text  # raw paths never become labels


def test_openapi_documents_every_endpoint_with_examples_and_errors(client):
    schema = client.get("/openapi.json").json()
    expected = {
        "/tickers", "/forecasts/latest", "/forecasts/{ticker}", "/history/{ticker}",
        "/performance/{ticker}", "/models/{ticker}", "/reports/{ticker}", "/health", "/metrics",
    }  # fmt: skip
    assert expected <= set(schema["paths"])
    components = schema["components"]["schemas"]
    for path in expected - {"/metrics"}:
        operation = schema["paths"][path]["get"]
        reference = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        model = components[reference.rsplit("/", 1)[-1]]
        assert model.get("examples"), f"{path}: response model without an example"
        if "{ticker}" in path:
            assert {"404", "422"} <= set(operation["responses"]), path
            ticker = next(p for p in operation["parameters"] if p["name"] == "ticker")
            assert ticker["schema"]["examples"] == ["AAPL"]


def test_dashboard_page_and_its_assets_are_served_without_a_cdn(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert '<table id="forecasts">' in page.text
    assert "http://" not in page.text and "https://" not in page.text
    script = client.get("/static/dashboard.js")
    assert script.status_code == 200
    assert "/forecasts/latest" in script.text and "https://" not in script.text
    assert client.get("/static/dashboard.css").status_code == 200


# -- errors ------------------------------------------------------------------------------------


TICKER_ROUTES = ["/forecasts/{}", "/history/{}", "/performance/{}", "/models/{}", "/reports/{}"]


@pytest.mark.parametrize("route", TICKER_ROUTES)
def test_unknown_ticker_is_a_404_naming_it(client, route):
    body = assert_error(client.get(route.format("ZZZZ")), 404, "unknown_ticker", "'ZZZZ'")
    assert body["ticker"] == "ZZZZ"
    assert "AAPL, MSFT" in body["detail"]  # says which tickers do have data


@pytest.mark.parametrize("route", TICKER_ROUTES)
@pytest.mark.parametrize(
    ("ticker", "hint"),
    [
        ("aapl", "Did you mean 'AAPL'?"),
        ("A$B", "upper-case"),
        ("TOOLONGTICKER", "1-7"),
        ("%2E%2E", "'..'"),
    ],
)
def test_malformed_ticker_is_a_422_stating_the_rule(client, route, ticker, hint):
    body = assert_error(
        client.get(route.format(ticker)), 422, "invalid_parameter", "Invalid ticker"
    )
    assert hint in body["detail"]
    assert body["errors"][0]["loc"] == ["path", "ticker"]


@pytest.mark.parametrize("route", ["/forecasts/AAPL", "/reports/AAPL"])
@pytest.mark.parametrize(
    ("as_of", "rule"),
    [
        ("2024/06/19", "YYYY-MM-DD"),
        ("20240619", "YYYY-MM-DD"),
        ("1719878400", "YYYY-MM-DD"),  # a timestamp pydantic alone would accept
        ("2024-06-19T00:00:00", "YYYY-MM-DD"),
        ("2024-02-30", "is not a calendar date"),
        ("", "YYYY-MM-DD"),
    ],
)
def test_malformed_as_of_is_a_422_stating_the_rule(client, route, as_of, rule):
    body = assert_error(client.get(route, params={"as_of": as_of}), 422, "invalid_parameter", rule)
    assert body["errors"][0]["loc"] == ["query", "as_of"]


@pytest.mark.parametrize("route", ["/history/AAPL", "/performance/AAPL"])
@pytest.mark.parametrize(
    ("days", "rule"),
    [("0", "greater than or equal to 1"), ("2001", "less than or equal to 2000"), ("x", "integer")],
)
def test_malformed_days_is_a_422_stating_the_rule(client, route, days, rule):
    assert_error(client.get(route, params={"days": days}), 422, "invalid_parameter", "days:", rule)


def test_as_of_before_the_first_forecast_is_a_404_saying_where_data_starts(client, pipeline_lake):
    first = pipeline_lake.prices("AAPL")["date"].tail(30)[0]
    body = assert_error(
        client.get("/forecasts/AAPL", params={"as_of": "2020-01-02"}),
        404,
        "not_materialized",
        "No daily_forecast for AAPL on or before 2020-01-02",
        f"the first is {first}",
    )
    assert body["asset"] == "daily_forecast"


def test_missing_assets_are_404s_naming_the_asset_to_materialize(writable_lake):
    for asset in ("daily_forecast", "forecast_performance", "child_model", "model_history"):
        target = writable_lake.dir / asset / "MSFT"
        (shutil.rmtree(target) if target.is_dir() else target.with_suffix(".parquet").unlink())
    (writable_lake.dir / "parent_model.parquet").unlink()
    client = fresh_client(writable_lake)
    for route, asset, stage in [
        ("/forecasts/MSFT", "daily_forecast", "forecasts"),
        ("/performance/MSFT", "forecast_performance", "forecasts"),
        ("/models/MSFT", "child_model", "models"),
        ("/reports/MSFT", "agent_report", "reports"),
        ("/models/GSPC", "parent_model", "models"),
    ]:
        body = assert_error(client.get(route), 404, "not_materialized", f"materialize {asset}")
        assert f"--stages {stage}" in body["detail"]
        assert body["asset"] == asset
    latest = client.get("/forecasts/latest").json()
    assert [f["ticker"] for f in latest["forecasts"]] == ["AAPL"]
    assert latest["tickers_without_forecast"] == ["MSFT"]
    history = client.get("/history/MSFT").json()  # prices exist: history without a forecast
    assert history["forecast"] is None and history["matured"] == []
    tickers = {t["ticker"]: t for t in client.get("/tickers").json()["tickers"]}
    assert tickers["MSFT"]["has_production_model"] is False
    assert tickers["MSFT"]["latest_forecast_date"] is None


def test_an_empty_lake_answers_empty_lists_and_no_data(tmp_path):
    client = TestClient(create_app(Settings(lake_dir=tmp_path / "nothing", revalidate_seconds=0)))
    assert client.get("/tickers").json() == {"count": 0, "tickers": []}
    assert client.get("/forecasts/latest").json()["count"] == 0
    health = client.get("/health").json()
    assert health["status"] == "no_data"
    assert "materialize raw_prices" in health["problems"][0]
    assert_error(client.get("/forecasts/AAPL"), 404, "unknown_ticker", "tickers with data: none")
    assert client.get("/").status_code == 200


def test_a_corrupt_partition_is_a_503_naming_it_not_a_500(writable_lake):
    path = partition_path(writable_lake.dir, "daily_forecast", "AAPL", "2024-07-03")
    path.write_bytes(b"not parquet at all")
    client = fresh_client(writable_lake)
    body = assert_error(
        client.get("/forecasts/AAPL"), 503, "data_unavailable", "daily_forecast[2024-07-03]"
    )
    assert str(writable_lake.dir) not in body["detail"]  # no server paths in answers


def test_a_partition_breaking_the_contract_is_a_503(writable_lake):
    path = partition_path(writable_lake.dir, "child_model", "AAPL")
    pl.read_parquet(path).drop("production_version").write_parquet(path)
    assert_error(
        fresh_client(writable_lake).get("/models/AAPL"),
        503,
        "data_unavailable",
        "production_version",
    )
    report = partition_path(writable_lake.dir, "agent_report", "AAPL", "2024-07-03")
    pl.read_parquet(report).with_columns(stance=pl.lit("very bullish")).write_parquet(report)
    assert_error(
        fresh_client(writable_lake).get("/reports/AAPL"), 503, "data_unavailable", "contract"
    )


@pytest.mark.parametrize(
    "url",
    ["/forecasts/%2E%2E%2Fraw_prices", "/history/..%2F..%2Fetc%2Fpasswd", "/models/AAPL%00"],
)
def test_path_tricks_never_reach_the_lake(client, url):
    response = client.get(url)
    assert response.status_code in (404, 422), response.text
    assert response.json()["error"] in ("not_found", "invalid_parameter")


def test_unknown_routes_and_methods_answer_json(client):
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.post("/forecasts/AAPL"), 405, "method_not_allowed")


def test_new_partitions_appear_without_a_restart_within_the_revalidation_window(
    writable_lake, pipeline
):
    client = TestClient(create_app(Settings(lake_dir=writable_lake.dir, revalidate_seconds=0.2)))
    assert client.get("/forecasts/AAPL").json()["model_version"] == "1"
    pipeline.write_crafted_forecast(
        writable_lake.dir, "AAPL", LAST_SESSION, 20.0, model_version="7", drift=0.01
    )
    deadline = time.monotonic() + 5
    while client.get("/forecasts/AAPL").json()["model_version"] != "7":
        assert time.monotonic() < deadline, "the rewritten partition was never served"
        time.sleep(0.02)
    assert client.get("/forecasts/AAPL").json()["last_close"] == 20.0


# -- the API never imports the pipeline -----------------------------------------------------------


def test_serving_imports_no_training_dagster_or_ml_code():
    code = (
        "import sys, serving.main\n"
        "heavy = {'dagster', 'torch', 'mlflow', 'sklearn', 'optuna', 'feast', 'evidently',"
        " 'langgraph', 'langchain_core', 'qdrant_client', 'pandas', 'duckdb'}\n"
        # the lake contract is the only pipeline module the API may load
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy or ("
        "m.startswith('stock_assets.') and m.split('.')[1] != 'contract'))\n"
        "print(','.join(bad))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_settings_default_to_the_project_home_lake(monkeypatch, tmp_path):
    monkeypatch.delenv("SERVING_LAKE_DIR", raising=False)
    monkeypatch.setenv("STOCK_ASSETS_HOME", str(tmp_path / "home"))
    assert Settings().lake_dir == (tmp_path / "home" / "lake").resolve()
    monkeypatch.setenv("SERVING_LAKE_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("SERVING_STALE_AFTER_DAYS", "6")
    settings = Settings()
    assert settings.lake_dir == tmp_path / "elsewhere"
    assert settings.stale_after_days == 6
    assert Settings(reference_date=date(2024, 1, 2)).today() == date(2024, 1, 2)
    assert Settings().today() >= date.today() - timedelta(days=1)
