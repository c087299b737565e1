"""The production stack for real: PostgreSQL, Redis, and Dagster's code server, daemon and webserver
as separate processes (see conftest.py). Tickers are added and runs launched through the
webserver's GraphQL API, the queue is drained by the daemon, runs execute in the code server's
subprocesses, and what they record is read back from PostgreSQL and Redis directly."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("production_stack")]

TICKERS = ("AAPL", "MSFT")
LAUNCHED = "AAPL"  # one run keeps the test cheap; the queue and launcher are the same for many


def test_ticker_runs_launched_through_the_webserver_land_in_postgres_and_redis(
    production_stack, redis_server
):
    stack = production_stack

    # Add the tickers as the UI's "add partition" does.
    for ticker in TICKERS:
        stack.add_dynamic_partition("ticker", ticker)
    stored = {row[0] for row in stack.sql(
        "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'ticker'")}
    assert stored == set(TICKERS)

    # A run of one ticker partition: queued by the webserver, launched by the daemon, executed by
    # the code server's run worker.
    run_id = stack.launch_run("ticker_data_job", tags={"dagster/partition": LAUNCHED})
    assert stack.wait_for_run(run_id) == "SUCCESS", stack.logs()

    # The run, its partition tag and its materializations are rows in PostgreSQL.
    assert stack.sql("SELECT status FROM runs WHERE run_id = %s", (run_id,)) == [("SUCCESS",)]
    tags = dict(stack.sql("SELECT key, value FROM run_tags WHERE run_id = %s", (run_id,)))
    assert tags["dagster/partition"] == LAUNCHED
    materialized = {row[0] for row in stack.sql(
        "SELECT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION' "
        "AND partition = %s", (run_id, LAUNCHED))}
    assert materialized == {'["raw_prices"]', '["price_indicators"]'}
    events = dict(stack.sql("SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = %s "
                            "GROUP BY dagster_event_type", (run_id,)))
    assert events[dg.DagsterEventType.RUN_SUCCESS.value] == 1  # stored as "PIPELINE_SUCCESS"
    assert events[dg.DagsterEventType.STEP_SUCCESS.value] == 2

    # ...and the lake under the production home holds the ticker's synthetic history.
    home = Path(stack.env["STOCK_ASSETS_HOME"])
    prices = pl.read_parquet(home / "lake" / "raw_prices" / f"{LAUNCHED}.parquet")
    assert prices["ticker"].unique().to_list() == [LAUNCHED]
    assert str(prices["date"].max()) == stack.env["STOCK_ASSETS_SYNTHETIC_END"]
    assert prices.height > 1000

    # Publish to Feast from a run: the production profile's online store is the Redis server
    # (shared by the session's production tests: start from an empty one, e.g. after the Celery
    # test's home published AAPL, MSFT and JNJ there).
    redis_server.client().flushall()
    feast_run = stack.launch_run("__ASSET_JOB", asset_selection=["feast_features"])
    assert stack.wait_for_run(feast_run) == "SUCCESS", stack.logs()
    assert redis_server.client().dbsize() >= 1  # one hash per entity key

    from stock_assets.features.feature_store import FeatureStoreResource

    store = FeatureStoreResource(repo_path=str(Path(__file__).resolve().parents[2] / "feature_repo"),
                                 home=str(home), online_store="redis",
                                 redis_url=stack.env["FEAST_REDIS_URL"])
    online = store.online([LAUNCHED, "MSFT"], columns=("close", "rsi_14"))
    indicators = pl.read_parquet(home / "lake" / "price_indicators" / f"{LAUNCHED}.parquet").sort("date")
    launched = online.filter(pl.col("ticker") == LAUNCHED)
    assert launched["close"].item() == pytest.approx(indicators["close"][-1])
    assert launched["rsi_14"].item() == pytest.approx(indicators["rsi_14"][-1])
    # MSFT is a partition but was never ingested: the online store has nothing for it.
    assert online.filter(pl.col("ticker") == "MSFT")["close"].item() is None
