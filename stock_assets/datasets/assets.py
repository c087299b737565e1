"""Training sequences for the parent (^GSPC) and each ticker, read through Feast.

The feature history comes from Feast's point-in-time join (not straight from the lake), so the
windows a model learns from are exactly the values the feature store says were known at each
close; the lake's indicator table only supplies which trading dates to ask for.
"""

from datetime import date

import dagster as dg
import polars as pl

from stock_assets.contract import FEAST_FEATURES
from stock_assets.datasets.windows import SequenceData, SplitConfig, build_sequences
from stock_assets.features.feature_store import FeatureStoreResource
from stock_assets.partitions import ticker_partitions
from stock_assets.tickers import MARKET_INDEX_KEY


class SequenceConfig(dg.Config):
    """How windows are cut: context and horizon in trading days; validation and test are fixed
    spans of the most recent windows (training ends SplitConfig.sessions_after_training = 128
    sessions before the latest price by default); `history_end` cuts the data (a walk-forward
    refit or a back-test's model sees nothing after it)."""

    context_length: int = SplitConfig.context_length
    horizon: int = SplitConfig.horizon
    val_sessions: int = SplitConfig.val_sessions
    test_sessions: int = SplitConfig.test_sessions
    history_start: str | None = None  # e.g. "2010-01-01" to train on recent years only
    history_end: str | None = None

    def split(self) -> SplitConfig:
        return SplitConfig(
            context_length=self.context_length,
            horizon=self.horizon,
            val_sessions=self.val_sessions,
            test_sessions=self.test_sessions,
        )


def feature_history(
    feature_store: FeatureStoreResource,
    ticker: str,
    indicators: pl.DataFrame,
    start: str | None,
    end: str | None = None,
) -> pl.DataFrame:
    """The ticker's feature rows as Feast knew them at each trading date's close."""
    dates = indicators["date"]
    if start:
        dates = dates.filter(dates >= date.fromisoformat(start))
    if end:
        dates = dates.filter(dates <= date.fromisoformat(end))
    history = feature_store.history(ticker, dates.to_list())
    incomplete = history.filter(pl.any_horizontal(pl.all().is_null()))
    if incomplete.height:
        raise dg.Failure(
            f"Feast has no features for {ticker} on {incomplete.height} of {history.height} dates "
            f"(first {incomplete['date'][0]}): materialize feast_features after price_indicators."
        )
    return history


def _sequences_output(data: SequenceData) -> dg.Output:
    summary = data.summary()
    return dg.Output(
        data,
        metadata={
            **{k: v for k, v in summary.items() if isinstance(v, (int, str))},
            "features": dg.MetadataValue.text(", ".join(data.feature_names)),
            "scaler_fitted_on": dg.MetadataValue.text(
                f"train rows up to {data.boundaries.train_last_target} only"
            ),
        },
    )


@dg.asset(
    group_name="datasets",
    io_manager_key="sequence_io_manager",
    deps=[FEAST_FEATURES],
    kinds={"numpy", "feast"},
)
def market_index_sequences(
    config: SequenceConfig,
    market_index_indicators: pl.DataFrame,
    feature_store: FeatureStoreResource,
) -> dg.Output:
    """^GSPC windows and targets for the parent model, split in time with an embargo."""
    history = feature_history(
        feature_store, MARKET_INDEX_KEY, market_index_indicators, config.history_start,
        config.history_end,
    )
    return _sequences_output(build_sequences(history, config.split(), ticker=MARKET_INDEX_KEY))


@dg.asset(
    partitions_def=ticker_partitions,
    group_name="datasets",
    io_manager_key="sequence_io_manager",
    deps=[FEAST_FEATURES],
    kinds={"numpy", "feast"},
)
def training_sequences(
    context: dg.AssetExecutionContext,
    config: SequenceConfig,
    price_indicators: pl.DataFrame,
    feature_store: FeatureStoreResource,
) -> dg.Output:
    """One ticker's windows and targets (scale-free log returns) for its child model."""
    ticker = context.partition_key
    history = feature_history(
        feature_store, ticker, price_indicators, config.history_start, config.history_end
    )
    return _sequences_output(build_sequences(history, config.split(), ticker=ticker))
