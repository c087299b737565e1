"""Features stage: indicators per ticker and for the index, published to Feast."""

import dagster as dg

from stock_assets.features.assets import feast_features, market_index_indicators, price_indicators

defs = dg.Definitions(assets=[price_indicators, market_index_indicators, feast_features])
