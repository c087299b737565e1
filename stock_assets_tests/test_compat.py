"""The private Dagster API we use, in one place: this fails loudly when an upgrade moves it."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import dagster as dg

from stock_assets import compat

REPO = Path(__file__).resolve().parents[1]


def test_the_private_names_still_exist_and_mean_what_we_use_them_for():
    assert compat.ASSET_PARTITION_RANGE_START_TAG == "dagster/asset_partition_range_start"
    assert compat.ASSET_PARTITION_RANGE_END_TAG == "dagster/asset_partition_range_end"
    assert {s.name for s in compat.CheckRecordStatus} >= {"PLANNED", "SUCCEEDED", "FAILED"}
    assert compat.partition_range_tags("AAPL", "MSFT") == {
        "dagster/asset_partition_range_start": "AAPL",
        "dagster/asset_partition_range_end": "MSFT",
    }
    import importlib

    assert hasattr(importlib.import_module(compat.PLAN_LOGGER), "logger")
    compat.quiet_unemitted_check_notices()
    assert logging.getLogger(compat.PLAN_LOGGER).level == logging.ERROR


def test_check_records_are_read_newest_first_and_per_partition():
    key = dg.AssetCheckKey(dg.AssetKey("daily_forecast"), "feature_drift")
    with dg.instance_for_test() as instance:
        for day, passed in (("2024-06-27", True), ("2024-06-28", False)):
            instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(asset_key=key.asset_key, check_name=key.name,
                                        passed=passed, partition=day)
            )
        records = compat.check_records(instance, key, limit=10, before=None)
        assert [r.partition for r in records] == ["2024-06-28", "2024-06-27"]
        assert compat.latest_check_evaluation(instance, key, "2024-06-27").passed is True
        assert compat.latest_check_evaluation(instance, key, "2024-06-26") is None


def test_no_module_outside_compat_imports_dagsters_private_api():
    found = subprocess.run(
        ["grep", "-rln", r"dagster\._", "stock_assets", "serving", "--include=*.py"],
        cwd=REPO, capture_output=True, text=True, check=False,
    ).stdout.split()
    assert found == ["stock_assets/compat.py"], found
