"""The report stage's data: what a report is written from, what the graph carries, what comes out.

`ReportInputs` is frozen and validated because it is also the cache key: two runs with equal inputs
must produce the same fingerprint (`fingerprint.py`), and a report must never be written from
look-ahead prices.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stock_assets.agents.verdict import Verdict
from stock_assets.quantiles import INTERVALS, P_UP, QUANTILE_COLUMNS

if TYPE_CHECKING:
    import polars as pl

Direction = Literal["up", "down", "flat"]
ReliabilityGrade = Literal["good", "fair", "weak", "unproven"]
VolatilityRegime = Literal["calm", "normal", "elevated"]


# The central interval every report quotes and every stance is judged on (close_q10..close_q90).
REPORT_INTERVAL = 80


class ForecastPoint(BaseModel):
    """One step of the forecast path: the close the model predicts `horizon` trading days ahead.

    `quantiles` are the predicted closes at `QUANTILE_COLUMNS`' levels, in that order, and `p_up`
    the probability that the step closes above the last close; both are None for a forecast from
    an older lake that has no distribution (the report then says the range is unavailable).
    """

    model_config = ConfigDict(frozen=True)

    target_date: date
    horizon: int = Field(ge=1)
    predicted_close: float = Field(gt=0)
    quantiles: tuple[float, ...] | None = None
    p_up: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _monotone_quantiles(self) -> ForecastPoint:
        if self.quantiles is None:
            return self
        if len(self.quantiles) != len(QUANTILE_COLUMNS):
            raise ValueError(
                f"quantiles must hold {len(QUANTILE_COLUMNS)} closes "
                f"({', '.join(QUANTILE_COLUMNS)}), got {len(self.quantiles)}"
            )
        if any(not math.isfinite(q) or q <= 0 for q in self.quantiles):
            raise ValueError(f"quantile closes must be positive and finite, got {self.quantiles}")
        # Monotone up to float noise (1e-9 relative): a crossing is a broken distribution.
        if any(
            b < a * (1 - 1e-9) for a, b in zip(self.quantiles, self.quantiles[1:], strict=False)
        ):
            raise ValueError(f"quantile closes must be monotone in q, got {self.quantiles}")
        return self

    def quantile(self, column: str) -> float | None:
        """The predicted close at one of QUANTILE_COLUMNS (None without a distribution)."""
        if self.quantiles is None:
            return None
        return self.quantiles[QUANTILE_COLUMNS.index(column)]

    def interval(self, level: int = REPORT_INTERVAL) -> tuple[float, float] | None:
        """(lower, upper) close of the central `level` % interval (None without a distribution)."""
        if self.quantiles is None:
            return None
        lower, upper = INTERVALS[level]
        return self.quantile(lower), self.quantile(upper)  # type: ignore[return-value]


class PriceBar(BaseModel):
    """One day of a price history (close and volume are all the market expert uses)."""

    model_config = ConfigDict(frozen=True)

    date: date
    close: float = Field(gt=0)
    volume: float = Field(ge=0, default=0.0)


class ReportInputs(BaseModel):
    """Everything one (date, ticker) report is written from; built from the lake's Parquet tables.

    MAPEs are in percent (1.84 means 1.84 %); directional accuracy and drift share are fractions
    in [0, 1]. Model-quality fields are None until forecasts have matured / drift has been measured.
    """

    model_config = ConfigDict(frozen=True)

    ticker: str = Field(min_length=1)
    as_of_date: date
    forecast: tuple[ForecastPoint, ...] = Field(min_length=1)
    last_close: float = Field(gt=0)
    model_name: str = Field(min_length=1)
    model_version: str = Field(min_length=1)
    rolling_mape_pct: float | None = Field(default=None, ge=0)
    naive_mape_pct: float | None = Field(default=None, ge=0)
    directional_accuracy: float | None = Field(default=None, ge=0, le=1)
    n_matured: int = Field(default=0, ge=0)
    drift_share: float | None = Field(default=None, ge=0, le=1)
    drifted: bool | None = None
    prices: tuple[PriceBar, ...] = ()
    index_prices: tuple[PriceBar, ...] = ()
    index_symbol: str = "^GSPC"
    news: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> ReportInputs:
        horizons = [p.horizon for p in self.forecast]
        if horizons != sorted(horizons) or len(set(horizons)) != len(horizons):
            raise ValueError(f"forecast horizons must be strictly increasing, got {horizons}")
        for point in self.forecast:
            if point.target_date <= self.as_of_date:
                raise ValueError(
                    f"forecast target {point.target_date} is not after as_of_date {self.as_of_date}"
                )
        for name, bars in (("prices", self.prices), ("index_prices", self.index_prices)):
            dates = [b.date for b in bars]
            if dates != sorted(dates) or len(set(dates)) != len(dates):
                raise ValueError(f"{name} must be strictly ascending by date")
            if dates and dates[-1] > self.as_of_date:
                raise ValueError(f"{name} reach {dates[-1]}, after as_of_date {self.as_of_date}")
        return self

    @property
    def final_forecast(self) -> ForecastPoint:
        return self.forecast[-1]

    def cache_query_text(self) -> str:
        """The text embedded for the semantic cache: the request described in words and numbers."""
        path = ", ".join(f"t+{p.horizon} {p.predicted_close:.2f}" for p in self.forecast)
        final = self.final_forecast
        band = final.interval()
        spread = (
            "range unavailable"
            if band is None
            else f"{REPORT_INTERVAL}% range {band[0]:.2f} to {band[1]:.2f}"
        )
        chance = "n/a" if final.p_up is None else f"{final.p_up:.3f}"

        def fmt(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.4g}"

        return (
            f"Daily analysis of {self.ticker} as of {self.as_of_date.isoformat()}. "
            f"Model {self.model_name} version {self.model_version}. "
            f"Last close {self.last_close:.2f}. Forecast {path}; t+{final.horizon} {spread}, "
            f"p_up {chance}. "
            f"Rolling MAPE {fmt(self.rolling_mape_pct)}%, naive MAPE {fmt(self.naive_mape_pct)}%, "
            f"directional accuracy {fmt(self.directional_accuracy)}, matured {self.n_matured}. "
            f"Drift share {fmt(self.drift_share)}, drifted {self.drifted}."
        )


def _bars(frame: pl.DataFrame, as_of: date, history_days: int) -> tuple[PriceBar, ...]:
    """The last `history_days` bars on or before `as_of` (never a later one: no look-ahead)."""
    import polars as pl

    volume = pl.col("volume") if "volume" in frame.columns else pl.lit(0.0)
    rows = (
        frame.select(
            pl.col("date").cast(pl.Date),
            pl.col("close").cast(pl.Float64),
            volume.cast(pl.Float64).alias("volume"),
        )
        .filter(pl.col("date") <= as_of)
        .drop_nulls(["date", "close"])
        .unique(subset="date", keep="last")
        .sort("date")
        .tail(history_days)
    )
    return tuple(PriceBar(date=d, close=c, volume=v or 0.0) for d, c, v in rows.iter_rows())


def _measured(value: Any) -> Any:
    """None for "not measured" however the table spells it (None, NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _distribution(row: Mapping[str, Any]) -> dict[str, Any]:
    """A daily_forecast row's quantiles and p_up, each None where the lake has no (or null) value.

    An older lake has no such columns; a row with any quantile missing has no usable range.
    """
    closes = [_measured(row.get(column)) for column in QUANTILE_COLUMNS]
    p_up = _measured(row.get(P_UP))
    return {
        "quantiles": None if any(c is None for c in closes) else tuple(map(float, closes)),
        "p_up": None if p_up is None else float(p_up),
    }


def build_report_inputs(
    forecast: pl.DataFrame,
    prices: pl.DataFrame,
    index_prices: pl.DataFrame,
    performance: Mapping[str, Any] | None = None,
    drift: Mapping[str, Any] | None = None,
    news: tuple[str, ...] = (),
    history_days: int = 60,
) -> ReportInputs:
    """ReportInputs from lake tables.

    `forecast` is one `daily_forecast` partition (ticker, as_of_date, target_date, horizon,
    last_close, predicted_close, model_name, model_version, and where the lake has them the
    quantile closes close_q05..close_q95 and p_up); `prices` / `index_prices` have at
    least `date, close` (and `volume`) and may extend past the as-of date: later rows are dropped.
    `performance` may hold rolling_mape_pct, naive_mape_pct, directional_accuracy, n_matured;
    `drift` may hold drift_share, drifted. Missing keys or None values mean "not measured yet".
    """
    if forecast.is_empty():
        raise ValueError("forecast frame is empty: nothing to report on")
    head = forecast.row(0, named=True)
    for column in ("ticker", "as_of_date", "model_name", "model_version", "last_close"):
        if forecast[column].n_unique() != 1:
            raise ValueError(f"forecast frame mixes several values of {column!r}")
    as_of = head["as_of_date"]
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    points = tuple(
        ForecastPoint(
            target_date=row["target_date"],
            horizon=row["horizon"],
            predicted_close=row["predicted_close"],
            **_distribution(row),
        )
        for row in forecast.sort("horizon").iter_rows(named=True)
    )
    performance = {k: _measured(v) for k, v in (performance or {}).items()}
    drift = {k: _measured(v) for k, v in (drift or {}).items()}
    n_matured = performance.get("n_matured")
    drifted = drift.get("drifted")
    return ReportInputs(
        ticker=str(head["ticker"]),
        as_of_date=as_of,
        forecast=points,
        last_close=float(head["last_close"]),
        model_name=str(head["model_name"]),
        model_version=str(head["model_version"]),
        rolling_mape_pct=performance.get("rolling_mape_pct"),
        naive_mape_pct=performance.get("naive_mape_pct"),
        directional_accuracy=performance.get("directional_accuracy"),
        n_matured=int(n_matured) if n_matured is not None else 0,
        drift_share=drift.get("drift_share"),
        drifted=bool(drifted) if drifted is not None else None,
        prices=_bars(prices, as_of, history_days),
        index_prices=_bars(index_prices, as_of, history_days)
        if not index_prices.is_empty()
        else (),
        news=tuple(news),
    )


@dataclass(frozen=True)
class PerformanceSummary:
    """What the performance analyst concludes: where the forecast points and how far to trust it."""

    direction: Direction
    final_return_pct: float
    step_returns_pct: tuple[float, ...]
    skill_vs_naive_pct: float | None
    grade: ReliabilityGrade
    notes: tuple[str, ...] = ()
    # The final step's 80 % range as % moves vs the last close, and its p_up (None: unavailable).
    range_pct: tuple[float, float] | None = None
    p_up: float | None = None


@dataclass(frozen=True)
class MarketSummary:
    """What the market expert sees in the recent tape (None where the history is too short)."""

    return_5d_pct: float | None
    return_20d_pct: float | None
    index_return_20d_pct: float | None
    relative_strength_pp: float | None
    volume_ratio: float | None
    volatility_20d_pct: float | None
    volatility_regime: VolatilityRegime | None
    above_sma20: bool | None
    news: tuple[str, ...] = ()
    news_status: str = "not fetched"


@dataclass(frozen=True)
class ReportDraft:
    """A written report before the critic has seen it."""

    markdown: str
    verdict: Verdict
    author: str
    attempts: int = 1
    events: tuple[str, ...] = ()


class ReportState(TypedDict, total=False):
    """What flows through the LangGraph graph; each node returns the keys it sets."""

    inputs: ReportInputs
    performance: PerformanceSummary
    market: MarketSummary
    draft: ReportDraft
    revision_notes: list[str]
    critic_rounds: int
    critic_issues: list[str]
    critic_approved: bool
    needs_revision: bool
    markdown: str
    events: Annotated[list[str], operator.add]  # each node appends what it did


@dataclass(frozen=True)
class ReportResult:
    """A finished report, from the graph or from the cache."""

    ticker: str
    as_of_date: date
    markdown: str
    verdict: Verdict
    author: str
    cache_hit: bool = False
    critic_rounds: int = 0
    critic_approved: bool = True
    critic_issues: tuple[str, ...] = ()
    model_version: str = ""
    events: tuple[str, ...] = field(default_factory=tuple)

    def to_row(self, created_at: datetime) -> dict[str, Any]:
        """One row of the `agent_report` table (ARCHITECTURE.md), plus the critic's outcome."""
        return {
            "ticker": self.ticker,
            "as_of_date": self.as_of_date,
            "stance": self.verdict.stance,
            "confidence": self.verdict.confidence,
            "rationale": self.verdict.rationale,
            "markdown": self.markdown,
            "author": self.author,
            "cache_hit": self.cache_hit,
            "critic_rounds": self.critic_rounds,
            "critic_approved": self.critic_approved,
            "model_version": self.model_version,
            "created_at": created_at,
        }
