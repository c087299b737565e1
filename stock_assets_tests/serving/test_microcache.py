"""The micro-cache in front of the read routes: what it keeps, for how long, and that requests it
answers are still counted under their route."""

from __future__ import annotations

import re
import time

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.microcache import MicroCache


def counting_app(ttl: float) -> tuple[TestClient, dict[str, int]]:
    """A Starlette app that counts the calls reaching each route, behind a MicroCache."""
    calls = {"forecast": 0, "missing": 0}

    async def forecast(request: Request) -> JSONResponse:
        calls["forecast"] += 1
        return JSONResponse(
            {"ticker": request.path_params.get("ticker"), "as_of": request.query_params.get("as_of"),
             "call": calls["forecast"]},
        )

    async def missing(request: Request) -> JSONResponse:
        calls["missing"] += 1
        return JSONResponse({"detail": "not materialized"}, status_code=404)

    app = Starlette(routes=[
        Route("/forecasts/{ticker}", forecast, methods=["GET", "POST"]),
        Route("/reports/{ticker}", missing),
        Route("/health", forecast),
    ])
    app.add_middleware(MicroCache, seconds=ttl)
    return TestClient(app), calls


def test_a_repeated_url_is_answered_from_the_cache_with_the_same_bytes():
    client, calls = counting_app(ttl=60)
    first = client.get("/forecasts/AAPL")
    again = client.get("/forecasts/AAPL")
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers == first.headers
    assert calls["forecast"] == 1
    # The query string and the path are the key: another URL reaches the route.
    assert client.get("/forecasts/AAPL", params={"as_of": "2024-07-02"}).json()["call"] == 2
    assert client.get("/forecasts/MSFT").json()["call"] == 3
    assert calls["forecast"] == 3


def test_errors_and_non_get_requests_are_never_cached():
    client, calls = counting_app(ttl=60)
    for _ in range(3):
        assert client.get("/reports/AAPL").status_code == 404
    assert calls["missing"] == 3  # data that appears after a 404 is served at once
    client.post("/forecasts/AAPL")
    client.post("/forecasts/AAPL")
    assert calls["forecast"] == 2
    assert client.get("/health").status_code == 200  # not a cached prefix
    assert client.get("/health").status_code == 200
    assert calls["forecast"] == 4


def test_an_answer_expires_after_the_window_and_zero_turns_the_cache_off():
    client, _ = counting_app(ttl=0.05)
    client.get("/forecasts/AAPL")
    time.sleep(0.1)
    assert client.get("/forecasts/AAPL").json()["call"] == 2
    off, off_calls = counting_app(ttl=0)
    off.get("/forecasts/AAPL")
    off.get("/forecasts/AAPL")
    assert off_calls["forecast"] == 2


def test_cached_answers_are_counted_under_their_route_template(pipeline_lake):
    from serving.main import create_app
    from stock_assets_tests.serving.conftest import make_settings

    app = create_app(make_settings(pipeline_lake, revalidate_seconds=60))
    with TestClient(app) as client:
        bodies = {client.get("/forecasts/AAPL").content for _ in range(5)}
        assert len(bodies) == 1
        assert client.get("/forecasts/aapl").status_code == 422  # validated, never cached
        metrics = client.get("/metrics").text
    counted = re.search(
        r'http_requests_total\{handler="/forecasts/\{ticker\}",method="GET",status="200"\} (\S+)',
        metrics,
    )
    assert counted is not None and float(counted.group(1)) == pytest.approx(5.0)
    assert 'handler="/forecasts/{ticker}",method="GET",status="422"} 1.0' in metrics
    # Four of the five identical GETs were answered from the cache (the 422 is never cached).
    assert "stock_assets_microcache_hits_total 4.0" in metrics
    assert "stock_assets_microcache_misses_total 2.0" in metrics
