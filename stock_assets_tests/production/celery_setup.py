"""What test_celery_executor.py runs in a subprocess, with the production environment, before its
Celery runs: the tickers' partitions, their data, Feast's features and a tiny parent model, in
process (not on Celery), so that the runs under test only train children.

    python -m stock_assets_tests.production.celery_setup AAPL MSFT JNJ
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import dagster as dg

from stock_assets.testing import TINY_MODEL

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Short windows (the parent's and the children's must agree) keep the tiny trainings fast.
SEQUENCES = {"context_length": 20, "horizon": 5}


def retrain_run_config() -> dict[str, Any]:
    """Run config of one child's retrain_job run, as the Launchpad would send it."""
    return {
        **QUIET,
        "ops": {
            "training_sequences": {"config": SEQUENCES},
            "child_model": {"config": {**TINY_MODEL, "strategy": "fine_tune"}},
        },
    }


def prepare(tickers: Sequence[str]) -> None:
    from stock_assets.definitions import defs
    from stock_assets.partitions import ticker_partitions
    from stock_assets.resources import build_resources

    assets = list(defs.assets or [])
    resources = build_resources()

    def must(selection: list[str], partition: str | None = None, **ops: dict) -> None:
        result = dg.materialize(
            assets, selection=dg.AssetSelection.assets(*selection), partition_key=partition,
            resources=resources, instance=instance,
            run_config={**QUIET, "ops": {op: {"config": c} for op, c in ops.items()}},
            raise_on_error=False,
        )
        if not result.success:
            failures = [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure]
            raise SystemExit(f"setup of {selection} ({partition}) failed: {failures}")

    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(ticker_partitions.name, list(tickers))
        must(["market_index_prices", "market_index_indicators"])
        for ticker in tickers:
            must(["raw_prices", "price_indicators"], ticker)
        must(["feast_features"])
        must(["market_index_sequences", "parent_model"], market_index_sequences=SEQUENCES,
             parent_model=TINY_MODEL)


if __name__ == "__main__":
    prepare(sys.argv[1:])
