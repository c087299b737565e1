"""A Dagster instance on a production stack's Postgres, for the tests that inspect it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def instance_on(dagster_home: Path, env: Mapping[str, str]):
    """A DagsterInstance from `dagster_home`'s dagster.yaml, its DAGSTER_PG_* values taken from
    `env` only while it is built (the test process's own environment is left as it was)."""
    import dagster as dg

    from stock_assets.testing import environment

    with environment({k: v for k, v in env.items() if k.startswith("DAGSTER_PG_")}):
        return dg.DagsterInstance.from_config(str(dagster_home))
