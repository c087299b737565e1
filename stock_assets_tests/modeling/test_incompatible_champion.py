"""A production model that cannot read the challenger's windows, through the real registry.

parent_model v1 is trained on 20-session windows; the windows are then re-cut to 10 sessions, so
v1 cannot be scored on the challenger's test windows. Before issue #15 the gate took that as "no
production model yet" and v2 promoted silently; now v2 is registered but kept out of production,
with the reason in the metadata and the version tags, until `replace_incompatible_champion`.
A real Dagster instance, MLflow SQLite store and Feast store under a temporary home.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

PARENT = "stock_assets.GSPC"
TINY = {
    "epochs": 1, "hidden_size": 8, "num_layers": 1, "batch_size": 32, "learning_rate": 3e-3,
    "seed": 1, "use_tuned_params": False, "naive_tolerance": 10.0, "interval_tolerance": 10.0,
}  # fmt: skip
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@pytest.fixture(scope="module")
def index_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from stock_assets.datasets.definitions import defs as datasets
    from stock_assets.features.definitions import defs as features
    from stock_assets.ingestion.definitions import defs as ingestion
    from stock_assets.modeling.definitions import defs as modeling
    from stock_assets.testing import loop_home

    assets = [*ingestion.assets, *features.assets, *datasets.assets, *modeling.assets]
    with loop_home(tmp_path_factory.mktemp("incompatible"), "2023-01-03") as loop:
        instance = loop.instance
        resources = loop.resources("2024-06-28")

        def run(selection: list[str], **configs: dict) -> dg.ExecuteInProcessResult:
            result = dg.materialize(
                assets,
                selection=dg.AssetSelection.assets(*selection),
                resources=resources,
                instance=instance,
                run_config={**QUIET, "ops": {op: {"config": c} for op, c in configs.items()}},
            )
            assert result.success
            return result

        run(["market_index_prices", "market_index_indicators", "feast_features"])
        yield run, resources["mlflow"]


def _parent(run, context_length: int, **config: Any) -> dict[str, Any]:
    result = run(
        ["market_index_sequences", "parent_model"],
        market_index_sequences={"context_length": context_length, "horizon": 5},
        parent_model={**TINY, **config},
    )
    [materialization] = result.asset_materializations_for_node("parent_model")
    return {key: value.value for key, value in materialization.metadata.items()}


def test_an_incompatible_champion_is_kept_unless_config_says_replace_it(index_home) -> None:
    run, mlflow = index_home
    first = _parent(run, context_length=20)
    assert mlflow.production_version(PARENT).version == "1"

    # Windows of 10 sessions: v1 (lookback 20) cannot be scored on them.
    kept = _parent(run, context_length=10)
    assert mlflow.production_version(PARENT).version == "1"  # main promoted v2 here
    assert first["promotion_decision"] == "promoted"
    why = "v1: lookback 20 vs 10 sessions"
    assert kept["champion_incompatible"] == why
    assert kept["promotion_decision"] == "kept_incompatible_champion"
    assert kept["promotion"] == (
        f"production cannot be scored on the challenger's test windows ({why}); keeping it "
        "(set replace_incompatible_champion to replace it)"
    )
    assert kept["production_version"] == "1" and "champion_mape_h5" not in kept
    tags = dict(mlflow.client().get_model_version(PARENT, "2").tags)
    assert tags["promotion_decision"] == "kept_incompatible_champion"
    assert tags["champion_incompatible"] == why
    assert tags["promotion_reason"] == kept["promotion"] and tags["champion_mape"] == ""

    replaced = _parent(run, context_length=10, replace_incompatible_champion=True)
    assert replaced["promotion_decision"] == "promoted"
    assert replaced["promotion"].startswith(
        f"production cannot be scored on the challenger's test windows ({why}); replacing it"
    )
    assert mlflow.production_version(PARENT).version == "3"
    tags = dict(mlflow.client().get_model_version(PARENT, "3").tags)
    assert (tags["promotion_decision"], tags["champion_incompatible"]) == ("promoted", why)
