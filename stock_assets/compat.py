"""The only module that touches Dagster's private API (`dagster._core`), kept small on purpose.

Each name here is something the public API does not offer in 1.13: the run tags of a single-run
partition range, the check-execution records the sensors read in bulk, and the unwrapping of a
step error (its wrapper class is named, not exported). An upgrade that moves
one of them fails the compat test (test_compat.py) loudly, in one place.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus as CheckRecordStatus,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "CheckRecordStatus",
    "check_records",
    "innermost_error",
    "latest_check_evaluation",
    "partition_range_tags",
    "quiet_unemitted_check_notices",
]


# The logger of Dagster's plan executor: it notes every blocking check a step did not emit.
PLAN_LOGGER = "dagster._core.execution.plan.active"


def quiet_unemitted_check_notices() -> None:
    """Silence "Blocking asset check ... emitted no result": a ticker-range run of raw_prices
    applies its partitioned checks per ticker in code (Dagster records them only for single
    partitions), so that notice is expected there."""
    import logging

    logging.getLogger(PLAN_LOGGER).setLevel(logging.ERROR)


# What Dagster wraps a user error in: a step's body, and an IO manager's write or read (a full
# disk in the lake's write names its file only in the cause).
DAGSTER_ERROR_WRAPPERS = frozenset({
    "DagsterExecutionStepExecutionError", "DagsterExecutionHandleOutputError",
    "DagsterExecutionLoadInputError",
})


def innermost_error(error: Any) -> str:
    """The user-facing message of a step failure's SerializableErrorInfo: Dagster wraps a user
    error in DagsterExecutionStepExecutionError (once per layer), or in the IO manager's
    handle-output / load-input errors; unwrap to the user's own."""
    while error.cause is not None and error.cls_name in DAGSTER_ERROR_WRAPPERS:
        error = error.cause
    return error.message


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run cover the partitions first..last (a single-run backfill)."""
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def check_records(
    instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, limit: int, before: int | None
) -> list[Any]:
    """One page of a check's execution records, newest first (ids below `before`)."""
    return list(
        instance.event_log_storage.get_asset_check_execution_history(
            check_key, limit=limit, cursor=before
        )
    )


def latest_check_evaluation(
    instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, partition: str
) -> Any | None:
    """The newest completed evaluation of a check for one partition (None if it never ran)."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        check_key,
        limit=1,
        status={CheckRecordStatus.SUCCEEDED, CheckRecordStatus.FAILED},
        partition_filter=PartitionKeyFilter(key=partition),
    )
    return records[0].evaluation if records else None
