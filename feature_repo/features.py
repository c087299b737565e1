"""Feast definitions: the `ticker` entity and the daily indicator feature view.

The offline table is written by the `feast_features` asset from the lake's indicator tables (one
row per ticker and trading day, stamped at that day's close), so training and inference read
point-in-time-correct history through Feast.
"""

import os
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureView, Field, FileSource
from feast.types import Float64, Int64
from feast.value_type import ValueType

from stock_assets.features.indicators import INDICATOR_COLUMNS

FEATURE_VIEW_NAME = "price_indicators"


def offline_table_path() -> Path:
    home = Path(os.environ.get("STOCK_ASSETS_HOME") or Path.cwd() / ".stock_assets")
    return home.expanduser().resolve() / "feast" / "price_indicators.parquet"


def build_feature_definitions(offline_path: Path) -> tuple[Entity, FeatureView]:
    """The entity and feature view over the offline table at `offline_path`."""
    ticker = Entity(
        name="ticker",
        join_keys=["ticker"],
        value_type=ValueType.STRING,
        description="A stock or index partition key (AAPL, GSPC for ^GSPC).",
    )
    source = FileSource(
        name="price_indicators_source",
        path=str(offline_path),
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    )
    view = FeatureView(
        name=FEATURE_VIEW_NAME,
        entities=[ticker],
        # A trading day's features stay valid over weekends and holidays, not longer.
        ttl=timedelta(days=7),
        schema=[Field(name="close", dtype=Float64), Field(name="volume", dtype=Int64)]
        + [Field(name=column, dtype=Float64) for column in INDICATOR_COLUMNS],
        source=source,
        online=True,
        tags={"owner": "stock_assets", "stage": "features"},
    )
    return ticker, view


# Module-level objects for the `feast` CLI (`feast -c feature_repo apply`).
ticker, price_indicators = build_feature_definitions(offline_table_path())
