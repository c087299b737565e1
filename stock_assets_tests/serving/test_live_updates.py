"""A real server on loopback keeps serving while the pipeline writes underneath it: the daily job
run for a new session through Dagster appears without a restart, and answers stay whole and
consistent while partitions are rewritten continuously."""

from __future__ import annotations

import math
import threading
import time
from datetime import date

import httpx
import pytest

from serving.main import create_app
from serving.settings import Settings

LAST_SESSION = date(2024, 7, 3)
NEXT_SESSION = date(2024, 7, 5)


def wait_for(condition, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "the new partition was never served"
        time.sleep(interval)


def test_a_new_session_materialized_while_serving_is_served_without_restart(
    writable_home, pipeline, live_server_for
):
    lake = writable_home
    # Default settings: answers are re-checked against the lake every 0.1 s.
    server = live_server_for(create_app(Settings(lake_dir=lake.dir)))
    with (
        httpx.Client(base_url=server.url, timeout=10) as http,
        pipeline.pipeline_home(lake.home.parent, reopen=True) as home,
    ):
        assert http.get("/forecasts/AAPL").json()["as_of_date"] == "2024-07-03"
        closes = http.get("/history/AAPL", params={"days": 1}).json()["closes"]
        assert [c["date"] for c in closes] == ["2024-07-03"]
        assert http.get("/performance/AAPL").json()["date"] == "2024-07-03"

        # The next session arrives: ingestion fetches AAPL's new prices (incrementally) and
        # features, then the daily job forecasts (07-05, AAPL) and scores what matured on 07-05.
        home.ingest(["AAPL"], NEXT_SESSION)
        home.daily(NEXT_SESSION, "AAPL")
        stored = lake.forecast("AAPL", NEXT_SESSION)
        performance = lake.performance("AAPL", NEXT_SESSION).sort("horizon")
        close = lake.prices("AAPL")["close"][-1]

        body = wait_for(
            lambda: (b := http.get("/forecasts/AAPL").json())["as_of_date"] == "2024-07-05" and b
        )
        assert body["last_close"] == pytest.approx(close) == stored["last_close"][0]
        assert body["model_version"] == stored["model_version"][0]
        assert [p["target_date"] for p in body["points"]] == [
            str(d) for d in stored["target_date"]
        ]
        assert body["points"][0]["target_date"] == "2024-07-08"
        assert [p["predicted_close"] for p in body["points"]] == pytest.approx(
            stored["predicted_close"].to_list(), rel=1e-12
        )
        latest = {f["ticker"]: f for f in http.get("/forecasts/latest").json()["forecasts"]}
        assert latest["AAPL"]["as_of_date"] == "2024-07-05"
        assert latest["MSFT"]["as_of_date"] == "2024-07-03"
        tickers = {t["ticker"]: t for t in http.get("/tickers").json()["tickers"]}
        assert tickers["AAPL"]["last_price_date"] == "2024-07-05"
        assert tickers["AAPL"]["latest_forecast_date"] == "2024-07-05"
        history = http.get("/history/AAPL", params={"days": 2}).json()
        assert [c["date"] for c in history["closes"]] == ["2024-07-03", "2024-07-05"]
        assert history["closes"][-1]["close"] == pytest.approx(close)
        assert history["forecast"]["as_of_date"] == "2024-07-05"
        # 07-03's one-step forecast matured on 07-05 (the holiday in between is no session).
        assert history["matured"][-1]["target_date"] == "2024-07-05"
        assert history["matured"][-1]["as_of_date"] == "2024-07-03"
        served = http.get("/performance/AAPL").json()
        assert served["date"] == "2024-07-05"
        assert served["rolling_mape"] == pytest.approx(performance["rolling_mape"][0])
        assert [m["horizon"] for m in served["matured"]] == performance["horizon"].to_list()


def test_answers_stay_whole_while_partitions_are_rewritten(
    writable_lake, pipeline, live_server_for
):
    server = live_server_for(create_app(Settings(lake_dir=writable_lake.dir)))
    stop = threading.Event()
    written: list[int] = []
    failures: list[str] = []
    seen: set[str] = set()

    def writer() -> None:
        # Rewrite the last session's real partition over and over (crafted versions, each with
        # its own last_close), far faster than a re-run or a backfill would.
        version = 100
        while not stop.is_set():
            version += 1
            pipeline.write_crafted_forecast(
                writable_lake.dir, "AAPL", LAST_SESSION, float(version), model_version=str(version)
            )
            written.append(version)
            time.sleep(0.002)

    def reader(path: str) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            while not stop.is_set():
                response = http.get(path)
                if response.status_code != 200:
                    failures.append(f"{path}: {response.status_code} {response.text[:200]}")
                    continue
                body = response.json()
                row = body if path == "/forecasts/AAPL" else body["forecasts"][0]
                version = row["model_version"]
                seen.add(version)
                # Every field of one answer comes from one version of the file.
                if version != "1" and row["last_close"] != float(version):
                    failures.append(f"{path}: v{version} with last_close {row['last_close']}")
                for point in body.get("points", []):
                    expected = row["last_close"] * math.exp(point["predicted_return"])
                    if not math.isclose(point["predicted_close"], expected, rel_tol=1e-9):
                        failures.append(f"{path}: a torn path in v{version}")

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader, args=(p,))
        for p in ("/forecasts/AAPL", "/forecasts/AAPL", "/forecasts/latest")
    ]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)

    assert failures == []
    assert len(written) > 20
    assert len(seen) > 3  # the readers saw the versions change while they read
    with httpx.Client(base_url=server.url) as http:
        final = str(written[-1])
        wait_for(lambda: http.get("/forecasts/AAPL").json()["model_version"] == final, timeout=3)
        wait_for(
            lambda: http.get("/forecasts/latest").json()["forecasts"][0]["model_version"] == final,
            timeout=3,
        )
