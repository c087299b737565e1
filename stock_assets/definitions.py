"""The stock_assets code location: every stage's assets, checks, jobs and sensors, one set of
resources. Stages are merged in data-flow order; see docs/ARCHITECTURE.md.

`build_definitions(settings)` is the code location for given settings (the CLI's launcher calls it
with the settings it was given). `defs`, which Dagster's loader asks for (`-m
stock_assets.definitions -a defs`, workspace.yaml), is built on first access from the process's
settings, so importing this module reads nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from stock_assets.agents.definitions import defs as agents_defs
from stock_assets.datasets.definitions import defs as datasets_defs
from stock_assets.execution import selected_executor
from stock_assets.features.definitions import defs as features_defs
from stock_assets.forecasting.definitions import defs as forecasting_defs
from stock_assets.ingestion.definitions import defs as ingestion_defs
from stock_assets.modeling.definitions import defs as modeling_defs
from stock_assets.monitoring.definitions import defs as monitoring_defs
from stock_assets.resources import build_resources
from stock_assets.strategy.definitions import defs as strategy_defs

if TYPE_CHECKING:
    from stock_assets.settings import Settings

STAGES = (
    ingestion_defs,
    features_defs,
    datasets_defs,
    modeling_defs,
    forecasting_defs,
    monitoring_defs,
    strategy_defs,
    agents_defs,
)


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Every stage, bound to the resources and executor of `settings` (default: the process's)."""
    from stock_assets.settings import get_settings

    settings = settings or get_settings()
    return dg.Definitions.merge(
        *STAGES,
        dg.Definitions(resources=build_resources(settings), executor=selected_executor(settings)),
    )


_DEFS: dg.Definitions | None = None


def __getattr__(name: str) -> dg.Definitions:
    """`defs`, built once per process on first access (PEP 562)."""
    global _DEFS
    if name != "defs":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _DEFS is None:
        _DEFS = build_definitions()
    return _DEFS


def __dir__() -> list[str]:
    return sorted([*globals(), "defs"])  # Dagster's loader finds `defs` by scanning dir()
