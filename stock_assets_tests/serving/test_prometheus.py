"""Metrics end to end: a real Prometheus (Debian's `prometheus` package) scrapes a real uvicorn
serving the pipeline's lake with an API key set, and every PromQL query of the Grafana dashboard
answers through Prometheus' HTTP API with the values the lake and the traffic imply. Offline: the
dashboard's metric and label names are the app's, and deploy/prometheus.yml passes promtool.

Without the binaries (`apt-get install prometheus`, or PROMETHEUS_BIN / PROMTOOL_BIN) the tests
that need them skip, saying so."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from serving.main import create_app

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "stock_assets.json"
DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
JOB = "stock_assets_api"
KEY = "prometheus-test-key"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
                "and", "or", "unless", "inf", "nan"}
ADDED_BY_PROMETHEUS = {"job", "instance"}


def binary(env: str, name: str) -> str | None:
    return os.environ.get(env) or shutil.which(name)


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"]
            for target in panel["targets"]]


def names_in(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) a PromQL expression uses."""
    labels = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    for selector in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", selector))
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\b(?:by|without)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", bare)
    metrics = {
        token for token in re.findall(r"[a-zA-Z_:][\w:]*(?!\w*\s*\()", bare)
        if token.lower() not in PROMQL_WORDS and not re.fullmatch(r"[\d.eE]+", token)
    }
    return metrics, labels - ADDED_BY_PROMETHEUS - {"le"}


def exported(text: str) -> dict[str, set[str]]:
    """Sample name -> label names, from a /metrics exposition."""
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = re.match(r"([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s", line)
        if match and not line.startswith("#"):
            labels = set(re.findall(r'([a-zA-Z_]\w*)="', match.group(2) or ""))
            found.setdefault(match.group(1), set()).update(labels)
    return found


def traffic(http: httpx.Client) -> None:
    """200s (most from the micro-cache), 404s, 401s and 429s."""
    key = {"X-API-Key": KEY}
    for _ in range(5):
        for path in ("/forecasts/AAPL", "/forecasts/MSFT", "/forecasts/latest", "/history/AAPL"):
            assert http.get(path, headers=key).status_code == 200
    assert http.get("/forecasts/ZZZZ", headers=key).status_code == 404
    assert http.get("/forecasts/AAPL").status_code == 401
    statuses = [http.get("/tickers", headers=key).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_every_dashboard_query_uses_metrics_and_labels_the_app_exports(probabilistic_lake, pipeline):
    from fastapi.testclient import TestClient

    client = TestClient(create_app(pipeline.make_settings(
        probabilistic_lake, api_key=KEY, rate_limits={"/tickers": "2/minute"})))
    traffic(client)
    names = exported(client.get("/metrics", headers={"X-API-Key": KEY}).text)
    uid = re.search(r"uid:\s*(\S+)", DATASOURCES.read_text()).group(1)
    queries = panel_queries()
    assert len({title for title, _ in queries}) >= 8
    for title, expr in queries:
        metrics, labels = names_in(expr)
        assert metrics, f"{title}: no metric in {expr}"
        assert metrics <= set(names), f"{title}: {sorted(metrics - set(names))} not exported"
        offered = set().union(*(names[m] for m in metrics))
        assert labels <= offered, f"{title}: labels {sorted(labels - offered)} not on {metrics}"
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]


def test_the_names_check_itself_catches_a_wrong_metric():
    metrics, labels = names_in(
        'sum by (handler) (rate(http_requests_totl{job="x",status=~"5.."}[$__rate_interval]))'
    )
    assert metrics == {"http_requests_totl"} and labels == {"handler", "status"}


def test_the_deploy_config_passes_promtool():
    promtool = binary("PROMTOOL_BIN", "promtool")
    if promtool is None:
        pytest.skip("promtool not found: apt-get install prometheus (or set PROMTOOL_BIN)")
    result = subprocess.run([promtool, "check", "config", str(REPO / "deploy" / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def query(prometheus: httpx.Client, expr: str) -> list[dict]:
    answer = prometheus.get("/api/v1/query", params={"query": expr}).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def wait_for_scrapes(prometheus: httpx.Client, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = query(prometheus, f'count_over_time(up{{job="{JOB}"}}[5m])')
        if result and float(result[0]["value"][1]) >= count:
            assert query(prometheus, f'up{{job="{JOB}"}}')[0]["value"][1] == "1"
            return
        assert time.monotonic() < deadline, f"Prometheus did not scrape {count} times"
        time.sleep(0.2)


@pytest.fixture()
def prometheus_for(tmp_path):
    executable = binary("PROMETHEUS_BIN", "prometheus")
    if executable is None:
        pytest.skip("prometheus not found: apt-get install prometheus (or set PROMETHEUS_BIN)")
    processes: list[subprocess.Popen] = []

    def start(target_port: int) -> httpx.Client:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"scrape_configs:\n  - job_name: {JOB}\n"
            f"    authorization: {{credentials: {KEY}}}\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
        )
        port = free_port()
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process
        processes.append(subprocess.Popen(
            [executable, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))  # fmt: skip
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.get("/-/ready").status_code == 200:
                    return client
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or processes[-1].poll() is not None:
                raise RuntimeError((tmp_path / "prometheus.log").read_text()[-2000:])
            time.sleep(0.1)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=15)


def test_a_real_prometheus_answers_every_dashboard_query(
    probabilistic_lake, pipeline, live_server_for, prometheus_for
):
    app = create_app(pipeline.make_settings(
        probabilistic_lake, api_key=KEY, rate_limits={"/tickers": "2/minute"}))
    server = live_server_for(app)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        # Every series exists before the first scrape, as on a server that has been up a while:
        # rate() sees no increase in a series' first sample.
        for path in ("/forecasts/AAPL", "/forecasts/latest", "/history/AAPL", "/forecasts/ZZZZ"):
            http.get(path, headers={"X-API-Key": KEY})
        http.get("/forecasts/AAPL")  # 401
        prometheus = prometheus_for(server.port)
        wait_for_scrapes(prometheus, 1)
        traffic(http)
    wait_for_scrapes(prometheus, 4)  # rate() needs two samples after the traffic

    results = {}
    for title, expr in panel_queries():
        series = query(prometheus, expr.replace("$__rate_interval", "1m"))
        assert series, f"{title}: no series for {expr}"
        values = [float(s["value"][1]) for s in series]
        assert all(math.isfinite(v) and v >= 0 for v in values), f"{title}: {values}"
        results[expr] = series

    def by(label: str, fragment: str) -> dict[str, float]:
        [expr] = [e for e in results if fragment in e]
        return {s["metric"].get(label, ""): float(s["value"][1]) for s in results[expr]}

    assert by("handler", "sum by (handler)")["/forecasts/{ticker}"] > 0
    p50, p95, p99 = (by("", f"histogram_quantile({q},")[""] for q in ("0.5", "0.95", "0.99"))
    assert 0 < p50 <= p95 <= p99 < 2.5
    assert by("", 'status=~"5.."')[""] == 0  # nothing failed
    assert 0 < by("", 'status=~"4.."')[""] < 1  # the 404, the 401 and the 429
    assert set(by("status", "401|429")) == {"401", "429"}
    stats = app.state.metrics.cache
    assert by("", "stock_assets_microcache_hit_ratio")[""] == pytest.approx(
        stats.hits / (stats.hits + stats.misses))
    assert 0.5 < by("", "sum(rate(stock_assets_microcache_hits_total") [""] <= 1
    ages = by("asset", "stock_assets_data_age_days")
    # Seen on 2024-07-05: prices end 2024-07-03; daily_forecast has the (empty) holiday 07-04.
    assert (ages["raw_prices"], ages["daily_forecast"]) == (2, 1)
    assert set(by("asset", "last_write_age_seconds")) >= {"raw_prices", "daily_forecast"}
    for column, fragment in (("rolling_mape", "rolling_mape"),
                             ("rolling_coverage_80", "rolling_coverage_80")):
        served = by("ticker", fragment)
        assert set(served) == {"AAPL", "MSFT"}
        for ticker, value in served.items():
            lake = probabilistic_lake.performance(ticker, date_of_latest(probabilistic_lake, ticker))
            assert value == pytest.approx(lake[column][0]), (ticker, column)


def date_of_latest(lake, ticker: str):
    """The newest forecast_performance partition with rows (holidays hold none)."""
    from datetime import date

    folder = lake.dir / "forecast_performance" / ticker
    for path in sorted(folder.glob("*.parquet"), reverse=True):
        day = date.fromisoformat(path.stem)
        if lake.performance(ticker, day).height:
            return day
    raise AssertionError(f"no forecast_performance rows for {ticker}")
