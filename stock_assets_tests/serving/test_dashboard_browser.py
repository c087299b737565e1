"""The dashboard in a real headless Chromium against a live server over the lake the real pipeline
materialized (conftest's `probabilistic_lake`): the table lists each ticker's latest forecast with
its 80 % range and P(up), each fan chart drew its closes, the median path and the 50/80/90 %
bands, no script error occurred, and a screenshot is kept in test-artifacts/dashboard.png. A lake
from before the quantiles still draws its charts, without bands.

Needs Debian's chromium (`apt-get install -y chromium`); the test skips, saying so, without it.
Chromium is driven over the DevTools protocol with the `websockets` client uvicorn already
installs: no Selenium or Playwright download.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from serving.main import create_app
from serving.settings import Settings

LAST_SESSION = date(2024, 7, 3)
REFERENCE_DATE = date(2024, 7, 5)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1280,1400",
    "--remote-debugging-port=0",
]


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class DevTools:
    """A minimal DevTools-protocol client for one page target."""

    def __init__(self, websocket_url: str) -> None:
        from websockets.sync.client import connect

        self.socket = connect(websocket_url, max_size=None, open_timeout=10)
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        call_id = next(self.ids)
        self.socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def close(self) -> None:
        self.socket.close()


@pytest.fixture()
def browser(tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    profile = tmp_path / "chromium-profile"
    process = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            pages = [t for t in json.loads(answer.read()) if t["type"] == "page"]
        devtools = DevTools(pages[0]["webSocketDebuggerUrl"])
        yield devtools
        devtools.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


READ_PAGE = """(() => ({
  state: document.body.dataset.state,
  error: document.getElementById('error').textContent,
  rows: [...document.querySelectorAll('#forecasts tbody tr')].map(
    (tr) => [...tr.cells].map((td) => td.textContent)),
  charts: [...document.querySelectorAll('figure.chart')].map((f) => ({
    ticker: f.dataset.ticker,
    caption: f.querySelector('figcaption').textContent,
    closes: f.querySelector('polyline.closes').getAttribute('points').trim().split(/\\s+/).length,
    forecast: f.querySelector('polyline.forecast').getAttribute('points').trim().split(/\\s+/).length,
    median: f.querySelectorAll('polyline.forecast.median').length,
    bands: [...f.querySelectorAll('polygon.band')].map((b) => b.getAttribute('class')),
    dots: f.querySelectorAll('circle.forecast-dot').length,
    legend: f.querySelector('.legend').textContent,
    matured: f.querySelectorAll('circle.matured').length,
    width: f.querySelector('svg').getBoundingClientRect().width,
  })),
  health: document.getElementById('health').textContent,
}))()"""


def load_dashboard(lake, live_server_for, browser, screenshot: str | None = None) -> dict:
    """Open the dashboard over `lake`, wait until it is drawn; no script may have thrown."""
    settings = Settings(lake_dir=lake.dir, reference_date=REFERENCE_DATE)
    server = live_server_for(create_app(settings))
    browser.call("Page.enable")
    browser.call("Runtime.enable")
    browser.call("Page.navigate", url=f"{server.url}/")

    deadline = time.monotonic() + 30
    while browser.evaluate("document.body && document.body.dataset.state") not in (
        "ready",
        "error",
    ):
        assert time.monotonic() < deadline, "the dashboard never finished loading"
        time.sleep(0.1)
    page = browser.evaluate(READ_PAGE)
    if screenshot is not None:
        shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        png = base64.b64decode(shot["data"])
        (artifacts / screenshot).write_bytes(png)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    exceptions = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"]
    assert exceptions == []
    assert page["state"] == "ready", page["error"]
    return page


def test_dashboard_renders_forecast_table_and_fan_charts(
    probabilistic_lake, live_server_for, browser
):
    page = load_dashboard(probabilistic_lake, live_server_for, browser, "dashboard.png")

    rows = {row[0]: row for row in page["rows"]}
    assert sorted(rows) == ["AAPL", "MSFT"]
    for ticker, row in rows.items():
        stored = probabilistic_lake.forecast(ticker, LAST_SESSION)
        last = stored.row(-1, named=True)
        assert row[1] == "2024-07-03"  # as of
        assert row[2] == f"{last['last_close']:.2f}"
        assert row[3] == "5 d"
        assert row[4] == "2024-07-11"
        assert row[5] == f"{last['predicted_close']:.2f}"
        change = 100 * (last["predicted_close"] / last["last_close"] - 1)
        assert row[6] == f"{'+' if change >= 0 else ''}{change:.2f}%"
        assert row[7].startswith(f"{last['close_q10']:.2f} – {last['close_q90']:.2f} (")
        assert row[8] == f"{100 * last['p_up']:.0f}%"
        assert row[9] == f"stock_assets.{ticker} v{last['model_version']}"

    charts = {chart["ticker"]: chart for chart in page["charts"]}
    assert sorted(charts) == ["AAPL", "MSFT"]
    for chart in charts.values():
        assert "forecast as of 2024-07-03" in chart["caption"]
        assert "P(up by 2024-07-11)" in chart["caption"]
        assert chart["closes"] == 90  # the last 90 sessions
        assert chart["forecast"] == 6  # the last close, then 5 median steps
        assert chart["median"] == 1 and chart["dots"] == 5
        # Widest first, so the narrower bands are drawn over it.
        assert chart["bands"] == ["band band-90", "band band-80", "band band-50"]
        assert "50 / 80 / 90 % bands" in chart["legend"]
        assert chart["matured"] == 29  # h1 forecasts made on 30 sessions; the last is pending
        assert chart["width"] > 200
    assert page["health"].startswith("data fresh")


def test_dashboard_over_a_lake_without_quantiles_draws_paths_without_bands(
    pipeline_lake, pipeline, tmp_path, live_server_for, browser
):
    old = pipeline.Lake(tmp_path / "home", pipeline_lake.tickers)
    shutil.copytree(pipeline_lake.dir, old.dir)
    for asset in ("daily_forecast", "forecast_performance"):
        pipeline.drop_probabilistic_columns(old.dir, asset)
    page = load_dashboard(old, live_server_for, browser, "dashboard-old-lake.png")
    for row in page["rows"]:
        assert (row[7], row[8]) == ("—", "—")
    for chart in page["charts"]:
        assert chart["bands"] == [] and chart["median"] == 0
        assert chart["forecast"] == 6  # the point forecast's path instead
        assert "bands" not in chart["legend"]
