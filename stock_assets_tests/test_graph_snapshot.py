"""The whole graph, as a user sees it in the UI, against a snapshot checked into the repo.

Every asset (group, partitions, parents), check (blocking or not), job (its selection and
partitions), schedule and sensor is listed in snapshots/definitions.json. A change to the graph
fails here until the snapshot is regenerated on purpose, so it shows up in review:

    STOCK_ASSETS_UPDATE_SNAPSHOT=1 python -m pytest stock_assets_tests/test_graph_snapshot.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def describe_partitions(partitions_def) -> str | None:
    """A stable, readable name for a partitions definition (None when unpartitioned)."""
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return f"dynamic:{partitions_def.name}"
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return f"time:{partitions_def.cron_schedule}:from {partitions_def.start.date()}"
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return "multi:" + "x".join(
            f"{d.name}={describe_partitions(d.partitions_def)}"
            for d in partitions_def.partitions_defs
        )
    return type(partitions_def).__name__


def graph_snapshot(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": describe_partitions(node.partitions_def),
            "parents": sorted(k.to_user_string() for k in node.parent_keys),
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: k.to_user_string()):
        spec = graph.get_check_spec(check_key)
        checks[check_key.to_user_string()] = {"blocking": spec.blocking}
    jobs = {}
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue  # Dagster's implicit asset job
        selected = job.asset_layer.selected_asset_keys if job.asset_layer else set()
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in selected),
            "partitions": describe_partitions(job.partitions_def),
        }
    schedules = {
        s.name: {"cron": s.cron_schedule, "job": s.job_name, "status": str(s.default_status.value)}
        for s in sorted(defs.schedules or [], key=lambda s: s.name)
    }
    sensors = {
        s.name: {
            "type": type(s).__name__,
            "jobs": sorted(j.name for j in s.jobs) if s.has_jobs else [],
            "status": str(s.default_status.value),
        }
        for s in sorted(defs.sensors or [], key=lambda s: s.name)
    }
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules,
            "sensors": sensors}


def test_the_graph_matches_its_snapshot():
    from stock_assets.definitions import defs

    current = graph_snapshot(defs)
    if os.environ.get("STOCK_ASSETS_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(SNAPSHOT.read_text())
    for section in ("assets", "checks", "jobs", "schedules", "sensors"):
        added = sorted(set(current[section]) - set(recorded[section]))
        removed = sorted(set(recorded[section]) - set(current[section]))
        changed = sorted(
            name for name in set(current[section]) & set(recorded[section])
            if current[section][name] != recorded[section][name]
        )
        assert not (added or removed or changed), (
            f"{section}: added {added}, removed {removed}, changed {changed}. If intended, "
            "regenerate: STOCK_ASSETS_UPDATE_SNAPSHOT=1 python -m pytest "
            "stock_assets_tests/test_graph_snapshot.py"
        )
