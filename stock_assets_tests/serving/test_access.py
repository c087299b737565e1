"""Rate limits and the optional API key, on the app built over the pipeline's lake: a client over
its per-route limit gets a 429 with Retry-After and the app's JSON error, other routes and other
clients are unaffected, cached answers count; with STOCK_ASSETS_API_KEY set every route but
/health (and the dashboard page) answers 401 without the key and 200 with it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.main import create_app
from serving.settings import Settings

KEY = "test-key-7f3a"


def client_for(lake, pipeline, address: str = "testclient", **overrides) -> TestClient:
    app = create_app(pipeline.make_settings(lake, **overrides))
    return TestClient(app, client=(address, 50000))


def test_a_client_over_its_route_limit_gets_429_with_retry_after(pipeline_lake, pipeline):
    client = client_for(pipeline_lake, pipeline, rate_limits={"/forecasts/{ticker}": "3/minute"})
    answers = [client.get("/forecasts/AAPL") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    # Two of the three were micro-cache hits: they count all the same.
    over = client.get("/forecasts/AAPL")
    assert over.status_code == 429
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert over.headers["X-RateLimit-Limit"] == "3"
    body = over.json()
    assert body["error"] == "rate_limited"
    assert "/forecasts/{ticker}" in body["detail"] and "3 per 1 minute" in body["detail"]
    # The limit is per route template, not per URL: another ticker is the same route.
    assert client.get("/forecasts/MSFT").status_code == 429
    # Other routes keep the default limit, and other clients have their own count.
    assert [client.get("/tickers").status_code for _ in range(5)] == [200] * 5
    other = TestClient(client.app, client=("10.0.0.2", 50000))
    assert other.get("/forecasts/AAPL").status_code == 200
    metrics = client.get("/metrics").text
    assert 'http_requests_total{handler="/forecasts/{ticker}",method="GET",status="429"} 2.0' in metrics


def test_the_limiter_can_be_turned_off(pipeline_lake, pipeline):
    client = client_for(
        pipeline_lake, pipeline, rate_limit_enabled=False, rate_limits={"/tickers": "1/minute"}
    )
    answers = [client.get("/tickers") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert not hasattr(client.app.state, "rate_limits")


def test_limits_are_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SERVING_RATE_LIMIT_DEFAULT", "10/second")
    monkeypatch.setenv("SERVING_RATE_LIMITS", '{"/history/{ticker}": "5/minute"}')
    monkeypatch.setenv("STOCK_ASSETS_API_KEY", KEY)
    settings = Settings(lake_dir=tmp_path)
    assert settings.rate_limit_default == "10/second"
    assert settings.rate_limits == {"/history/{ticker}": "5/minute"}
    assert settings.api_key is not None and settings.api_key.get_secret_value() == KEY
    assert KEY not in repr(settings)  # a SecretStr: never in logs or tracebacks


@pytest.mark.parametrize("path", ["/tickers", "/forecasts/AAPL", "/metrics", "/drift/AAPL",
                                  "/openapi.json", "/history/AAPL?days=5"])
def test_with_a_key_set_every_data_route_needs_it(pipeline_lake, pipeline, path):
    client = client_for(pipeline_lake, pipeline, api_key=KEY)
    missing = client.get(path)
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert "X-API-Key" in missing.json()["detail"] and "missing" in missing.json()["detail"]
    wrong = client.get(path, headers={"X-API-Key": KEY + "x"})
    assert wrong.status_code == 401 and "wrong" in wrong.json()["detail"]
    assert KEY not in wrong.text
    with_key = client.get(path, headers={"X-API-Key": KEY})
    bearer = client.get(path, headers={"Authorization": f"Bearer {KEY}"})
    expected = 200  # the pipeline lake's feature_drift checks wrote AAPL's drift reports
    assert with_key.status_code == bearer.status_code == expected


def test_with_a_key_set_health_and_the_dashboard_page_stay_open(pipeline_lake, pipeline):
    client = client_for(pipeline_lake, pipeline, api_key=KEY)
    assert client.get("/health").json()["status"] in {"ok", "degraded"}
    page = client.get("/")
    assert page.status_code == 200 and "dashboard.js" in page.text
    assert client.get("/static/dashboard.js").status_code == 200
    # The page's data calls are not open: the script must send the key it was given.
    assert client.get("/forecasts/latest").status_code == 401
    script = client.get("/static/dashboard.js").text
    assert "X-API-Key" in script and "sessionStorage" in script


def test_without_a_key_the_api_is_open(client):
    assert client.get("/tickers").status_code == 200
    assert client.get("/metrics").status_code == 200
