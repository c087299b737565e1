"""A Dagster instance on a production stack's Postgres, for the tests that inspect it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def instance_on(dagster_home: Path, env: Mapping[str, str]):
    """A DagsterInstance from `dagster_home`'s dagster.yaml, its DAGSTER_PG_* values taken from
    `env` only while it is built (the test process's own environment is left as it was)."""
    import dagster as dg

    previous = {k: os.environ.get(k) for k in env if k.startswith("DAGSTER_PG_")}
    os.environ.update({k: env[k] for k in previous})
    try:
        return dg.DagsterInstance.from_config(str(dagster_home))
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
