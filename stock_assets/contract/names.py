"""Every asset, check, job and run-tag name of the graph, spelled once.

Why constants and not literals: the same names key the lake's folders, the checks' evaluations the
sensors read back, the run tags the CLI writes and the routes serving answers; a typo in one copy
would be a silent miss (an empty folder, a check never found), a typo in a constant is a NameError.
"""


# -- assets, by stage (the stage is also the asset group) ----------------------------------------
RAW_PRICES = "raw_prices"  # ingestion: per ticker
MARKET_INDEX_PRICES = "market_index_prices"  # ingestion: ^GSPC, unpartitioned
PRICE_INDICATORS = "price_indicators"  # features: per ticker
MARKET_INDEX_INDICATORS = "market_index_indicators"  # features
FEAST_FEATURES = "feast_features"  # features
TRAINING_SEQUENCES = "training_sequences"  # datasets: per ticker
MARKET_INDEX_SEQUENCES = "market_index_sequences"  # datasets
MODEL_HYPERPARAMETERS = "model_hyperparameters"  # modeling
PARENT_MODEL = "parent_model"  # modeling: a model card
CHILD_MODEL = "child_model"  # modeling: per ticker, a model card
MODEL_HISTORY = "model_history"  # modeling: per ticker, every card it had (child_model's 2nd output)
DAILY_FORECAST = "daily_forecast"  # forecasting: a panel (per trading date)
FORECAST_PERFORMANCE = "forecast_performance"  # forecasting: a panel
AGENT_REPORT = "agent_report"  # agents: a panel
STRATEGY_BACKTEST = "strategy_backtest"  # strategy: per ticker
STRATEGY_METRICS = "strategy_metrics"  # strategy: per ticker
DRIFT_REPORTS = "drift_reports"  # monitoring: the feature_drift check's HTML, a lake folder

# The date-partitioned (panel) assets: one partition per trading date, a file per ticker of it.
PANEL_ASSETS = (DAILY_FORECAST, FORECAST_PERFORMANCE, AGENT_REPORT)

# -- checks (name; the asset they belong to is beside each use) ----------------------------------
FORECAST_MAPE = "forecast_mape"  # on forecast_performance
INTERVAL_COVERAGE = "interval_coverage"  # on forecast_performance
FEATURE_DRIFT = "feature_drift"  # on daily_forecast and on market_index_indicators
REPORT_QUALITY = "report_quality"  # on agent_report
# The checks whose failure the retraining sensor acts on.
WATCHED_CHECKS = (FORECAST_MAPE, INTERVAL_COVERAGE, FEATURE_DRIFT)

# -- jobs --------------------------------------------------------------------------------------
DAILY_JOB = "daily_job"
TICKER_DATA_JOB = "ticker_data_job"
MARKET_DATA_JOB = "market_data_job"
FEAST_JOB = "feast_job"
RETRAIN_JOB = "retrain_job"
PARENT_RETRAIN_JOB = "parent_retrain_job"
REPORTS_JOB = "reports_job"
STRATEGY_JOB = "strategy_job"
TUNING_JOB = "tuning_job"

# -- partitions and run tags -------------------------------------------------------------------
TICKER_PARTITIONS = "ticker"  # the dynamic partitions definition's name
PARTITION_TAG = "dagster/partition"  # Dagster's tag of a single-partition run
# A panel run computes only these tickers: comma-separated keys (absent: every registered one).
TICKERS_TAG = "stock_assets/tickers"
# The daily schedule's runs carry their session, so a forecast of late prices can retry.
DAILY_DATE_TAG = "stock_assets/daily_date"

# Which `python -m stock_assets materialize --stages` value produces each lake table.
STAGE_OF_ASSET = {
    RAW_PRICES: "data",
    MARKET_INDEX_PRICES: "data",
    CHILD_MODEL: "models",
    PARENT_MODEL: "models",
    MODEL_HISTORY: "models",
    DAILY_FORECAST: "forecasts",
    FORECAST_PERFORMANCE: "forecasts",
    AGENT_REPORT: "reports",
    STRATEGY_BACKTEST: "strategy",
    STRATEGY_METRICS: "strategy",
}
