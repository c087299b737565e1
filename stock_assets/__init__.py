"""stock_assets: a Dagster asset graph from daily prices to self-healing forecasts."""
