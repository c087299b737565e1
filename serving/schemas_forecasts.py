"""Response bodies of /forecasts and /history: the forecast path with its distribution per step.

Why each step carries seven quantiles and p_up: the point forecast alone says nothing about how
sure the model is; a client draws the 50/80/90 % bands from the quantiles (`stock_assets.quantiles
.INTERVALS` names the pairs) and reads the chance of a rise from p_up. Partitions written before
the forecasts were probabilistic answer null for these fields.
"""

from __future__ import annotations

import datetime as dt

from pydantic import ConfigDict, Field

from serving.schemas import ApiModel


def _quantile(percent: int) -> str:
    return f"Predicted close at the {percent} % quantile; null in forecasts older than quantiles."


class StepDistribution(ApiModel):
    """The predictive distribution of one step's close (field names are daily_forecast's)."""

    close_q05: float | None = Field(default=None, description=_quantile(5))
    close_q10: float | None = Field(default=None, description=_quantile(10))
    close_q25: float | None = Field(default=None, description=_quantile(25))
    close_q50: float | None = Field(default=None, description=_quantile(50) + " The median.")
    close_q75: float | None = Field(default=None, description=_quantile(75))
    close_q90: float | None = Field(default=None, description=_quantile(90))
    close_q95: float | None = Field(default=None, description=_quantile(95))
    p_up: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Probability that the step's close ends above last_close; null in forecasts "
        "older than quantiles.",
    )


# -- forecasts ---------------------------------------------------------------------------------


class ForecastPoint(StepDistribution):
    horizon: int = Field(ge=1, description="Trading sessions after the input window's end.")
    target_date: dt.date
    predicted_close: float = Field(description="The point forecast.")
    predicted_return: float = Field(description="Log return vs last_close.")


class ForecastPath(ApiModel):
    ticker: str
    as_of_date: dt.date = Field(description="The input window's end (the partition's date).")
    last_close: float
    horizon: int = Field(description="Steps in the path (H).")
    model_name: str
    model_version: str
    created_at: dt.datetime
    points: list[ForecastPoint]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticker": "AAPL",
                    "as_of_date": "2024-06-28",
                    "last_close": 19.41,
                    "horizon": 2,
                    "model_name": "stock_assets.AAPL",
                    "model_version": "3",
                    "created_at": "2024-06-28T21:05:00Z",
                    "points": [
                        {
                            "horizon": 1,
                            "target_date": "2024-07-01",
                            "predicted_close": 19.48,
                            "predicted_return": 0.0036,
                            "close_q05": 18.9,
                            "close_q10": 19.03,
                            "close_q25": 19.25,
                            "close_q50": 19.48,
                            "close_q75": 19.71,
                            "close_q90": 19.93,
                            "close_q95": 20.06,
                            "p_up": 0.56,
                        },
                        {
                            "horizon": 2,
                            "target_date": "2024-07-02",
                            "predicted_close": 19.55,
                            "predicted_return": 0.0072,
                            "close_q05": 18.72,
                            "close_q10": 18.9,
                            "close_q25": 19.21,
                            "close_q50": 19.55,
                            "close_q75": 19.88,
                            "close_q90": 20.2,
                            "close_q95": 20.39,
                            "p_up": 0.58,
                        },
                    ],
                }
            ]
        }
    )


class LatestForecast(StepDistribution):
    """One ticker's latest forecast, summarised by its last step (with that step's quantiles)."""

    ticker: str
    as_of_date: dt.date
    last_close: float
    horizon: int
    target_date: dt.date = Field(description="The last step's date.")
    predicted_close: float = Field(description="The last step's predicted close.")
    predicted_return: float
    model_name: str
    model_version: str
    created_at: dt.datetime


class LatestForecasts(ApiModel):
    count: int
    forecasts: list[LatestForecast]
    tickers_without_forecast: list[str] = Field(
        description="Tickers with prices but no daily_forecast partition yet."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "count": 1,
                    "forecasts": [
                        {
                            "ticker": "AAPL",
                            "as_of_date": "2024-06-28",
                            "last_close": 19.41,
                            "horizon": 5,
                            "target_date": "2024-07-08",
                            "predicted_close": 19.7,
                            "predicted_return": 0.0148,
                            "close_q05": 18.4,
                            "close_q10": 18.7,
                            "close_q25": 19.2,
                            "close_q50": 19.7,
                            "close_q75": 20.2,
                            "close_q90": 20.7,
                            "close_q95": 21.0,
                            "p_up": 0.62,
                            "model_name": "stock_assets.AAPL",
                            "model_version": "3",
                            "created_at": "2024-06-28T21:05:00Z",
                        }
                    ],
                    "tickers_without_forecast": ["MSFT"],
                }
            ]
        }
    )


# -- history -----------------------------------------------------------------------------------


class PricePoint(ApiModel):
    date: dt.date
    close: float


class MaturedForecast(ApiModel):
    """A one-step-ahead forecast whose target date has passed, next to what happened."""

    target_date: dt.date
    as_of_date: dt.date
    predicted_close: float
    actual_close: float
    covered_80: bool | None = Field(
        default=None,
        description="The actual close fell inside the forecast's 80 % band (null: no quantiles).",
    )


class History(ApiModel):
    ticker: str
    days: int = Field(description="Trading sessions requested; `closes` may hold fewer.")
    closes: list[PricePoint]
    forecast: ForecastPath | None = Field(
        description="The latest forecast path with its quantiles per step, if any."
    )
    matured: list[MaturedForecast] = Field(
        description="Horizon-1 forecasts that matured inside the window (forecast_performance)."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticker": "AAPL",
                    "days": 2,
                    "closes": [
                        {"date": "2024-06-27", "close": 18.61},
                        {"date": "2024-06-28", "close": 19.41},
                    ],
                    "forecast": None,
                    "matured": [
                        {
                            "target_date": "2024-06-28",
                            "as_of_date": "2024-06-27",
                            "predicted_close": 18.7,
                            "actual_close": 19.41,
                            "covered_80": True,
                        }
                    ],
                }
            ]
        }
    )
