"""Drift reports: the lake path and its retention (pure), and GET /drift/{ticker} serving the very
bytes that the drift code wrote for a real Evidently report, latest or of one date, with a 404
naming why when there is none."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from serving.main import create_app
from stock_assets.forecasting.drift import measure_drift
from stock_assets.forecasting.drift_reports import (
    drift_report_dates,
    drift_report_path,
    prune_drift_reports,
    save_drift_report,
)
from stock_assets.tickers import InvalidTickerError

DAYS = (date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3))


class FakeReport:
    """A report whose HTML is a known string (the pure tests need no Evidently)."""

    def __init__(self, html: str) -> None:
        self.html = html

    def save_html(self, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html)
        return path


def test_reports_live_in_the_lake_one_per_date_and_ticker(tmp_path):
    assert drift_report_path(tmp_path, "AAPL", date(2024, 7, 3)) == (
        tmp_path / "drift_reports" / "AAPL" / "2024-07-03.html"
    )
    assert drift_report_path(tmp_path, "^GSPC", "2024-07-03").parent.name == "GSPC"
    with pytest.raises(InvalidTickerError):
        drift_report_path(tmp_path, "../etc", "2024-07-03")
    with pytest.raises(ValueError):
        drift_report_path(tmp_path, "AAPL", "20240703")


def test_only_the_newest_reports_of_a_ticker_are_kept(tmp_path):
    for day in (date(2024, 6, 28), *DAYS):
        save_drift_report(FakeReport(f"<p>{day}</p>"), tmp_path, "AAPL", day, keep=2)
    save_drift_report(FakeReport("<p>msft</p>"), tmp_path, "MSFT", DAYS[0], keep=2)
    folder = tmp_path / "drift_reports" / "AAPL"
    (folder / ".2024-07-04.html.abc.tmp").write_text("half")  # a write in progress
    (folder / "notes.html").write_text("stray")
    assert drift_report_dates(tmp_path, "AAPL") == ["2024-07-02", "2024-07-03"]
    assert drift_report_dates(tmp_path, "MSFT") == ["2024-07-01"]  # per ticker
    assert drift_report_dates(tmp_path, "NVDA") == []
    assert prune_drift_reports(tmp_path, "AAPL", keep=1) == [folder / "2024-07-02.html"]
    assert (folder / "2024-07-03.html").read_text() == "<p>2024-07-03</p>"


@pytest.fixture(scope="module")
def drift_result():
    """A real Evidently report: the current window moved three standard deviations."""
    rng = np.random.default_rng(7)
    reference = pl.DataFrame({"rsi_14": rng.normal(50, 5, 200), "vol_20": rng.normal(1, 0.1, 200)})
    current = pl.DataFrame({"rsi_14": rng.normal(65, 5, 20), "vol_20": rng.normal(1, 0.1, 20)})
    return measure_drift(reference, current, ["rsi_14", "vol_20"])


def test_the_api_serves_the_bytes_the_drift_code_wrote(writable_lake, pipeline, drift_result):
    lake_dir = writable_lake.dir
    # The pipeline's own feature_drift checks wrote reports for its dates; this test writes its own.
    assert drift_report_dates(lake_dir, "AAPL")
    import shutil

    shutil.rmtree(Path(lake_dir) / "drift_reports")
    paths = [save_drift_report(drift_result, lake_dir, "AAPL", day, keep=2) for day in DAYS]
    assert drift_report_dates(lake_dir, "AAPL") == ["2024-07-02", "2024-07-03"]
    assert drift_result.drift_share == pytest.approx(0.5)  # rsi_14 moved, vol_20 did not
    client = TestClient(create_app(pipeline.make_settings(writable_lake)))

    latest = client.get("/drift/AAPL")
    assert latest.status_code == 200
    assert latest.headers["content-type"].startswith("text/html")
    assert latest.headers["X-Report-Date"] == "2024-07-03"
    assert latest.headers["Content-Security-Policy"].startswith("sandbox")
    assert latest.content == paths[-1].read_bytes()
    assert len(latest.content) > 100_000 and b"<html" in latest.content[:2000].lower()

    dated = client.get("/drift/AAPL", params={"as_of": "2024-07-02"})
    assert dated.status_code == 200 and dated.content == paths[1].read_bytes()

    pruned = client.get("/drift/AAPL", params={"as_of": "2024-07-01"})
    assert pruned.status_code == 404
    assert pruned.json()["error"] == "not_materialized"
    assert "2024-07-02..2024-07-03" in pruned.json()["detail"]

    none_yet = client.get("/drift/MSFT").json()
    assert none_yet["error"] == "not_materialized" and "yet" in none_yet["detail"]
    assert none_yet["asset"] == "drift_reports"
    unknown = client.get("/drift/ZZZZ")
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_ticker"
    assert client.get("/drift/AAPL", params={"as_of": "July 3"}).status_code == 422
    assert client.get("/drift/aapl").status_code == 422
