"""The charts on a model's materialization: loss curve, test-window forecasts, fan, reliability."""

from __future__ import annotations

import dagster as dg
import polars as pl

from stock_assets.charts import reliability_chart, window_fan_chart
from stock_assets.datasets.windows import SequenceData
from stock_assets.metadata import figure_markdown, pyplot
from stock_assets.modeling.evaluation import reconstruct_prices
from stock_assets.modeling.probabilistic import distribution
from stock_assets.modeling.training import TrainResult, predict_returns


def loss_curve_chart(result: TrainResult, title: str) -> dg.MetadataValue:
    figure, axis = pyplot().subplots(figsize=(7, 3.5))
    epochs = list(range(1, result.epochs_run + 1))
    axis.plot(epochs, result.train_losses, label="train")
    axis.plot(epochs, result.val_losses, label="validation")
    if result.best_epoch:
        axis.axvline(result.best_epoch, color="grey", linestyle="--", linewidth=0.8, label="best")
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss (standardised)")
    axis.set_title(title)
    axis.legend()
    return figure_markdown(figure)


def window_point_chart(network, data: SequenceData, title: str) -> dg.MetadataValue:
    """Actual close H days ahead vs the model's and naive persistence's, over the test windows."""
    predicted = reconstruct_prices(data.anchor_close_test, predict_returns(network, data.X_test))
    dates = [d.astype(object) for d in data.anchor_dates_test]
    figure, axis = pyplot().subplots(figsize=(8, 3.5))
    axis.plot(dates, data.future_close_test[:, -1], color="black", linewidth=1, label="actual")
    axis.plot(dates, predicted[:, -1], linewidth=1, label="model")
    axis.plot(dates, data.anchor_close_test, linewidth=0.8, linestyle=":", label="naive")
    axis.set_title(f"{title}: close {data.horizon} trading days after each test date")
    axis.legend()
    return figure_markdown(figure)




def model_charts(
    result: TrainResult, network, spread, data: SequenceData, intervals: pl.DataFrame, title: str
) -> dict[str, dg.MetadataValue]:
    """Every chart of a trained model, keyed as the UI shows them."""
    median = predict_returns(network, data.X_test)
    closes, _ = distribution(
        median, spread, data.vol_features[data.anchor_rows_test], data.anchor_close_test
    )
    dates = [d.astype(object) for d in data.anchor_dates_test]
    observed = {
        row["model"]: {n: row[f"coverage_{n}_hH"] for n in (50, 80, 90)}
        for row in intervals.iter_rows(named=True)
    }
    return {
        "loss_curve": loss_curve_chart(result, title),
        "test_forecast": window_point_chart(network, data, title),
        "test_fan_chart": window_fan_chart(
            dates, data.future_close_test[:, -1], closes[:, -1, :],
            f"{title}: close {data.horizon} sessions ahead, median and 50/80/90 % bands (test)",
        ),
        "reliability_diagram": reliability_chart(
            observed, f"{title}: coverage at h{data.horizon} (test windows)"
        ),
    }
