"""Features stage: indicators per ticker and for the index, published to Feast by feast_job."""

import dagster as dg

from stock_assets.features.assets import feast_features, market_index_indicators, price_indicators
from stock_assets.features.jobs import feast_job

defs = dg.Definitions(
    assets=[price_indicators, market_index_indicators, feast_features], jobs=[feast_job]
)
