"""A real server on loopback keeps serving while the pipeline writes underneath it: a new session
materialized through Dagster appears without a restart, and answers stay whole and consistent
while partitions are rewritten continuously."""

from __future__ import annotations

import math
import threading
import time
from datetime import date

import httpx

from serving.main import create_app
from serving.settings import Settings

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
    writable_lake, contract, live_server_for
):
    # Default settings: answers are re-checked against the lake every 0.1 s.
    server = live_server_for(create_app(Settings(lake_dir=writable_lake.dir)))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/forecasts/AAPL").json()["as_of_date"] == "2024-07-03"
        assert http.get("/history/AAPL", params={"days": 1}).json()["closes"][0]["date"] == (
            "2024-07-03"
        )

        # The real pipeline fetches the next session's prices for AAPL (incrementally) ...
        contract.materialize_prices(writable_lake.home, ["AAPL"], NEXT_SESSION, index=False)
        close = writable_lake.prices("AAPL")["close"][-1]
        # ... and the forecast for it lands (stand-in for the daily_forecast asset).
        contract.write_contract_forecast(writable_lake.dir, "AAPL", NEXT_SESSION, close)

        body = wait_for(
            lambda: (b := http.get("/forecasts/AAPL").json())["as_of_date"] == "2024-07-05" and b
        )
        assert body["last_close"] == close
        assert body["points"][0]["target_date"] == "2024-07-08"
        latest = {f["ticker"]: f for f in http.get("/forecasts/latest").json()["forecasts"]}
        assert latest["AAPL"]["as_of_date"] == "2024-07-05"
        assert latest["MSFT"]["as_of_date"] == "2024-07-03"
        tickers = {t["ticker"]: t for t in http.get("/tickers").json()["tickers"]}
        assert tickers["AAPL"]["last_price_date"] == "2024-07-05"
        assert tickers["AAPL"]["latest_forecast_date"] == "2024-07-05"
        history = http.get("/history/AAPL", params={"days": 2}).json()
        assert [c["date"] for c in history["closes"]] == ["2024-07-03", "2024-07-05"]
        assert history["forecast"]["as_of_date"] == "2024-07-05"


def test_answers_stay_whole_while_partitions_are_rewritten(
    writable_lake, contract, live_server_for
):
    server = live_server_for(create_app(Settings(lake_dir=writable_lake.dir)))
    stop = threading.Event()
    written: list[int] = []
    failures: list[str] = []
    seen: set[str] = set()

    def writer() -> None:
        # Rewrite today's partition over and over, each version with its own last_close, and
        # add new sessions, as a backfill or a re-run would.
        version = 100
        while not stop.is_set():
            version += 1
            contract.write_contract_forecast(
                writable_lake.dir, "AAPL", date(2024, 7, 3), float(version),
                model_version=str(version),
            )  # fmt: skip
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
