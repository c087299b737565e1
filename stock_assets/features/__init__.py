"""Features: pure Polars indicators of daily prices, their assets and the Feast feature store."""
