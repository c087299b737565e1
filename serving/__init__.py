"""The read-only API and dashboard over what Dagster materialized in the lake.

Nothing here trains or computes a model: every answer is read from the Parquet lake (see
docs/ARCHITECTURE.md), so the API stays small, fast and safe to scale separately from Dagster.
Run it with `uvicorn serving.main:app`.
"""
