"""What daily_forecast shows in the UI and compares against: fan chart, reliability diagram, the
per-ticker table of a panel run, and the training-window reference the drift check reads."""

from __future__ import annotations

import dagster as dg
import polars as pl

from stock_assets.contract import PRICE_INDICATORS
from stock_assets.forecasting.model_choice import ForecastModel
from stock_assets.lake import LakeResource
from stock_assets.modeling.registry import MlflowResource
from stock_assets.quantiles import QUANTILE_COLUMNS


def forecast_fan_chart(frame: pl.DataFrame, prices: pl.DataFrame, title: str) -> dg.MetadataValue:
    """The last 60 closes up to the forecast date, then its median and 50/80/90 % bands."""
    from stock_assets.charts import fan_chart

    as_of = frame["as_of_date"][0]
    history = prices.filter(pl.col("date") <= as_of).tail(60)
    return fan_chart(
        history["date"].to_list(), history["close"].to_list(), frame["target_date"].to_list(),
        frame.select(QUANTILE_COLUMNS).to_numpy(), title,
        point=frame["predicted_close"].to_list(),
    )


def model_reliability_chart(mlflow: MlflowResource, model: ForecastModel) -> dg.MetadataValue:
    """Nominal vs observed coverage of the forecasting model's bands (and the volatility
    baselines') on its own test windows, as its MLflow run logged them."""
    from stock_assets.charts import reliability_chart
    from stock_assets.modeling.uncertainty import VOL_BASELINES

    metrics = mlflow.run_metrics(model.run_id)
    observed = {
        label: {n: metrics[f"{prefix}_coverage_{n}_hH"] for n in (50, 80, 90)}
        for label, prefix in [("model", "test"), *[(b, b) for b in VOL_BASELINES]]
        if all(f"{prefix}_coverage_{n}_hH" in metrics for n in (50, 80, 90))
    }
    return reliability_chart(observed, f"{model.label()}: coverage at the last step (test windows)")


def last_step_summary(
    ticker: str, frame: pl.DataFrame, model_label: str, last_row: str = "offline"
) -> dict[str, object]:
    """One row of the panel's per-ticker table: what was forecast for the last step, by which
    model, and which feature store served its window's last row."""
    last = frame.row(frame.height - 1, named=True)
    return {
        "ticker": ticker,
        "model": model_label,
        "last_row": last_row,
        "last_close": round(last["last_close"], 2),
        "target_date": str(last["target_date"]),
        "q10": round(last["close_q10"], 2),
        "median": round(last["close_q50"], 2),
        "q90": round(last["close_q90"], 2),
        "p_up": round(last["p_up"], 3),
    }


def feature_store_metadata(
    store: str, served: dict[str, str], skew: list[str], seconds: float | None
) -> dict[str, object]:
    """Which store served the windows' last rows (`served`: ticker -> "online"/"offline"), and,
    when the online store was read (`seconds`), which tickers it disagreed on and how long."""
    if not served:
        return {}
    online = sum(1 for s in served.values() if s == "online")
    if online == len(served):
        used = f"online ({store})"
    elif not online:
        used = "offline (a past date: point-in-time history)"
    else:
        used = f"online ({store}) for {online} tickers, offline for {len(served) - online}"
    metadata: dict[str, object] = {"last_row_store": used}
    if seconds is not None:
        metadata["online_skew"] = ", ".join(skew) if skew else "none"
        metadata["online_read_s"] = round(seconds, 4)
    return metadata


_REFERENCES: dict[tuple[str, str, str, str], pl.DataFrame] = {}


def training_reference(lake: LakeResource, model: ForecastModel) -> pl.DataFrame:
    """The model features of the model's training window, once per process.

    From the lake's price_indicators, the table Feast's offline store is published from: over
    past dates the two hold the same rows, and one Parquet read per ticker is what lets the daily
    panel judge drift for 500 tickers in one run (a point-in-time Feast query each would not).
    """
    from stock_assets.datasets.windows import model_feature_frame

    key = (str(lake.base), model.ticker, model.name, model.version)
    if key not in _REFERENCES:
        indicators = lake.read(PRICE_INDICATORS, model.ticker).sort("date")
        frame = model_feature_frame(indicators.filter(pl.col("date") <= model.train_end))
        _REFERENCES[key] = frame.filter(
            pl.col("date").is_between(model.train_start, model.train_end)
        )
    return _REFERENCES[key]
