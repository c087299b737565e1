"""Datasets stage: windows, targets and train-only scalers for the parent and each ticker."""

import dagster as dg

from stock_assets.datasets.assets import market_index_sequences, training_sequences

defs = dg.Definitions(assets=[market_index_sequences, training_sequences])
