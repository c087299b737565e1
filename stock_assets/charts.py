"""The charts of a probabilistic forecast, for Dagster UI metadata: fan charts and reliability.

Why shared: `daily_forecast` draws the fan of one forecast, `child_model` the fan of its test
windows and the reliability of its bands; both must read the same way to a user.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import dagster as dg
import numpy as np

from stock_assets.metadata import figure_markdown, pyplot
from stock_assets.quantiles import INTERVALS, QUANTILE_COLUMNS

_BAND_ALPHA = {90: 0.15, 80: 0.25, 50: 0.4}


def _index(column: str) -> int:
    return QUANTILE_COLUMNS.index(column)


def _bands(axis, xs, q: np.ndarray, linewidth: float) -> None:
    """The 90/80/50 % bands (widest first) and the median of quantile rows q along xs."""
    for nominal in (90, 80, 50):
        low, high = INTERVALS[nominal]
        axis.fill_between(xs, q[:, _index(low)], q[:, _index(high)], color="tab:blue",
                          alpha=_BAND_ALPHA[nominal], linewidth=0, label=f"{nominal} % band")
    axis.plot(xs, q[:, _index("close_q50")], color="tab:blue", linewidth=linewidth,
              label="median")


def fan_chart(
    history_dates: Sequence[date],
    history_close: Sequence[float],
    target_dates: Sequence[date],
    quantile_closes: np.ndarray,
    title: str,
    point: Sequence[float] | None = None,
) -> dg.MetadataValue:
    """Recent closes, then the forecast's median and its 50/80/90 % bands, one step per target
    date. quantile_closes: (steps, len(QUANTILE_COLUMNS)). The bands start at the last close."""
    q = np.asarray(quantile_closes, dtype=np.float64)
    last_date, last_close = history_dates[-1], float(history_close[-1])
    xs = [last_date, *target_dates]
    figure, axis = pyplot().subplots(figsize=(8, 3.6))
    axis.plot(history_dates, history_close, color="black", linewidth=1, label="close")
    # the bands start at the last close: prepend it as a row where every quantile equals it
    _bands(axis, xs, np.vstack([np.full(q.shape[1], last_close), q]), linewidth=1.4)
    if point is not None:
        axis.plot(xs, [last_close, *point], color="tab:orange", linestyle="--", linewidth=1,
                  label="point forecast")
    axis.set_title(title)
    axis.legend(loc="best", fontsize=7, framealpha=0.6)
    figure.autofmt_xdate()
    return figure_markdown(figure)


def window_fan_chart(
    anchor_dates: Sequence[date], actual: np.ndarray, quantile_closes: np.ndarray, title: str
) -> dg.MetadataValue:
    """Over a model's test windows: the actual close at the last step against that step's
    median and 50/80/90 % bands, as forecast from each window's anchor."""
    q = np.asarray(quantile_closes, dtype=np.float64)
    figure, axis = pyplot().subplots(figsize=(8, 3.6))
    _bands(axis, anchor_dates, q, linewidth=1)
    axis.plot(anchor_dates, actual, color="black", linewidth=1, label="actual")
    axis.set_title(title)
    axis.legend(loc="upper left", fontsize=7)
    figure.autofmt_xdate()
    return figure_markdown(figure)


def reliability_chart(observed: dict[str, dict[int, float]], title: str) -> dg.MetadataValue:
    """Nominal vs observed coverage of the 50/80/90 % intervals, one line per model; the
    diagonal is perfect calibration. observed: {label: {nominal: observed share}}."""
    figure, axis = pyplot().subplots(figsize=(4.2, 4.2))
    axis.plot([30, 100], [30, 100], color="grey", linestyle=":", linewidth=1, label="ideal")
    for label, points in observed.items():
        nominal = sorted(points)
        axis.plot(nominal, [100.0 * points[n] for n in nominal], marker="o", linewidth=1,
                  label=label)
    axis.set_xlabel("nominal coverage (%)")
    axis.set_ylabel("observed coverage (%)")
    axis.set_xlim(30, 100)
    axis.set_ylim(30, 100)
    axis.set_title(title)
    axis.legend(fontsize=7)
    return figure_markdown(figure)
