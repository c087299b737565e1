"""A deterministic, seeded synthetic stock market.

It lets a machine with no internet and no data run the whole pipeline, and lets tests inject a
known shock (a crash followed by a volatile regime) to prove that monitoring and retraining react.

The model, in daily log returns:

- a market factor m_t with Markov regime switching between calm_bull, volatile_bear and sideways
  (each with its own drift and volatility); GSPC *is* that market, starting near 2000;
- each stock r_t = alpha + beta * m_t + gamma * s_t + sigma * e_t, with its own beta, sector
  loading gamma on its sector's factor s_t, idiosyncratic volatility, drift and starting price
  (log-uniform over 10..1000, so models must be scale-free);
- a universe of any size: the 12 named stocks, then generated tickers spread round-robin over 11
  sectors (`synthetic_universe(500)`: TEC001, HLT001, ...), so a 500-ticker run is reproducible
  on any machine;
- bars around the close path: part of the day's move happens overnight (open), high and low
  reach beyond open/close by an exponential excursion scaled by the day's volatility; volume
  rises with |r_t|. There are no dividends or splits, so adj_close == close.

Determinism: every random stream comes from numpy's default_rng seeded with (seed, crc32(key),
stream), never Python's hash(), and each stream is drawn in one call in date order. So a ticker's
history depends only on (seed, ticker, start, its shocks): not on the other tickers, on the range
requested or the call order, and extending `end` leaves every earlier day unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from stock_assets.contract import PRICE_SCHEMA
from stock_assets.ingestion.errors import PriceSourceError, UnknownTickerError
from stock_assets.market_calendar import last_completed_session, trading_sessions

DEFAULT_UNIVERSE: tuple[str, ...] = (
    "GSPC",
    "AAPL",
    "AMZN",
    "GOOGL",
    "JNJ",
    "JPM",
    "META",
    "MSFT",
    "NVDA",
    "PG",
    "TSLA",
    "UNH",
    "XOM",
)
MARKET_TICKER = "GSPC"
CALENDAR = "XNYS"

# GICS-like sectors: code -> name. Each has its own factor (a shared daily shock).
SECTORS: dict[str, str] = {
    "TEC": "Information Technology", "HLT": "Health Care", "FIN": "Financials",
    "CND": "Consumer Discretionary", "CNS": "Consumer Staples", "IND": "Industrials",
    "ENE": "Energy", "UTL": "Utilities", "MAT": "Materials", "REA": "Real Estate",
    "COM": "Communication Services",
}
NAMED_SECTORS: dict[str, str] = {
    "AAPL": "TEC", "AMZN": "CND", "GOOGL": "COM", "JNJ": "HLT", "JPM": "FIN", "META": "COM",
    "MSFT": "TEC", "NVDA": "TEC", "PG": "CNS", "TSLA": "CND", "UNH": "HLT", "XOM": "ENE",
}
SECTOR_VOL = 0.006  # daily volatility of a sector factor


def synthetic_universe(n: int) -> tuple[str, ...]:
    """N stock tickers (the index not included): the 12 named ones first, then generated ones
    spread round-robin over the sectors (TEC001, HLT001, FIN001, ...). Deterministic."""
    if n < 1:
        raise ValueError(f"a universe needs at least one ticker, got {n}")
    named = [t for t in DEFAULT_UNIVERSE if t != MARKET_TICKER]
    codes = list(SECTORS)
    generated = [f"{codes[i % len(codes)]}{i // len(codes) + 1:03d}" for i in range(max(0, n - len(named)))]
    return tuple([*named, *generated][:n])


def sector_of(ticker: str) -> str | None:
    """The sector code of a named or generated ticker (None for the index)."""
    if ticker in NAMED_SECTORS:
        return NAMED_SECTORS[ticker]
    return ticker[:3] if ticker[:3] in SECTORS and ticker[3:].isdigit() else None

# Regimes of the market factor: daily log drift and volatility, and a persistent transition
# matrix (rows: from, columns: to; expected stays of ~65, ~25 and ~50 sessions).
REGIMES: tuple[str, ...] = ("calm_bull", "volatile_bear", "sideways")
REGIME_DRIFT = np.array([0.0007, -0.0012, 0.0001])
REGIME_VOL = np.array([0.0075, 0.020, 0.011])
REGIME_TRANSITIONS = np.array(
    [
        [0.985, 0.005, 0.010],
        [0.020, 0.960, 0.020],
        [0.012, 0.008, 0.980],
    ]
)

# Random streams, one numpy draw each (see the module docstring).
_MARKET_KEY = "__market__"
_STREAM_REGIME, _STREAM_MARKET_NOISE = 0, 1
_STREAM_PARAMS, _STREAM_NOISE, _STREAM_BARS, _STREAM_VOLUME = 0, 1, 2, 3


@dataclass(frozen=True)
class Shock:
    """A regime shock to one ticker from `date` on (the first session on or after it).

    On that session the close-to-close LOG return is exactly `price_jump` (-0.25 -> close falls
    to e^-0.25 = 78 % of the previous close); on every later session the random part of the
    return is multiplied by `vol_multiplier` and `drift_shift` is added to the daily log drift.
    A shock is idiosyncratic: a shock to GSPC does not move the stocks (add one per ticker for a
    market-wide crash). Several shocks to one ticker compound.
    """

    ticker: str
    date: date
    price_jump: float = -0.25
    vol_multiplier: float = 3.0
    drift_shift: float = 0.0


@dataclass(frozen=True)
class _TickerParams:
    beta: float
    idio_vol: float
    alpha: float
    start_price: float
    base_volume: float
    sector_loading: float = 0.0


def _rng(seed: int, key: str, stream: int) -> np.random.Generator:
    """A generator that depends only on (seed, key, stream): crc32 is stable across processes."""
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8")), stream])


class SyntheticMarket:
    """Daily OHLCV for a fixed universe on NYSE sessions from `start` to `end`, reproducible."""

    def __init__(
        self,
        seed: int = 7,
        start: date = date(2015, 1, 2),
        end: date | None = None,
        universe: Sequence[str] = DEFAULT_UNIVERSE,
        shocks: Sequence[Shock] = (),
    ) -> None:
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}.")
        self.seed = seed
        self.start = start
        self.end = end if end is not None else last_completed_session(calendar=CALENDAR)
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}.")
        self.universe: tuple[str, ...] = tuple(dict.fromkeys(universe))
        if not self.universe:
            raise ValueError("the universe is empty.")
        for shock in shocks:
            if shock.ticker not in self.universe:
                raise UnknownTickerError(
                    f"shock for {shock.ticker!r}, which is not in the universe {self.universe}."
                )
            if shock.date <= self.start:
                raise ValueError(
                    f"shock on {shock.date} for {shock.ticker} must come after start {self.start}."
                )
            if shock.vol_multiplier <= 0:
                raise ValueError(f"vol_multiplier must be > 0, got {shock.vol_multiplier}.")
        self.shocks: tuple[Shock, ...] = tuple(sorted(shocks, key=lambda s: s.date))
        self.sessions: pl.Series = trading_sessions(self.start, self.end, CALENDAR)
        if self.sessions.is_empty():
            raise ValueError(f"no {CALENDAR} session between {self.start} and {self.end}.")
        self._market: tuple[np.ndarray, np.ndarray] | None = None
        self._histories: dict[str, pl.DataFrame] = {}

    def __repr__(self) -> str:
        return (
            f"SyntheticMarket(seed={self.seed}, start={self.start}, end={self.end}, "
            f"universe={len(self.universe)} tickers, shocks={len(self.shocks)})"
        )

    def prices(
        self, ticker: str, start: date | None = None, end: date | None = None
    ) -> pl.DataFrame:
        """`date, open, high, low, close, adj_close, volume, ticker` between start and end
        (inclusive, clipped to the market's range); an empty answer is a PriceSourceError."""
        if ticker not in self.universe:
            raise UnknownTickerError(
                f"synthetic: unknown ticker {ticker!r}; this market has {list(self.universe)}."
            )
        if start is not None and end is not None and start > end:
            raise ValueError(f"start {start} is after end {end}.")
        history = self._histories.get(ticker)
        if history is None:
            history = self._histories[ticker] = self._simulate(ticker)
        window = history
        if start is not None:
            window = window.filter(pl.col("date") >= start)
        if end is not None:
            window = window.filter(pl.col("date") <= end)
        if window.is_empty():
            raise PriceSourceError(
                f"synthetic: no {ticker} sessions between {start or self.start} and "
                f"{end or self.end}; the market covers {self.start}..{self.end}."
            )
        return window

    def market_regimes(self) -> pl.DataFrame:
        """`date, regime`: the hidden state of the market factor on each session."""
        regimes, _ = self._market_factor()
        return pl.DataFrame(
            {
                "date": self.sessions,
                "regime": pl.Series([REGIMES[i] for i in regimes], dtype=pl.String),
            }
        )

    # --- simulation ------------------------------------------------------------------------

    def _market_factor(self) -> tuple[np.ndarray, np.ndarray]:
        """Regime index and standard-normal shock of the market on every session."""
        if self._market is None:
            n = self.sessions.len()
            uniforms = _rng(self.seed, _MARKET_KEY, _STREAM_REGIME).random(n)
            cumulative = np.cumsum(REGIME_TRANSITIONS, axis=1)
            regimes = np.empty(n, dtype=np.int64)
            state = 0  # every market opens in calm_bull
            for t in range(n):
                state = int(np.searchsorted(cumulative[state], uniforms[t], side="right"))
                state = min(state, len(REGIMES) - 1)
                regimes[t] = state
            noise = _rng(self.seed, _MARKET_KEY, _STREAM_MARKET_NOISE).standard_normal(n)
            self._market = (regimes, noise)
        return self._market

    def _params(self, ticker: str) -> _TickerParams:
        draws = _rng(self.seed, ticker, _STREAM_PARAMS).random(6)  # the first 5 as before
        if ticker == MARKET_TICKER:
            return _TickerParams(
                beta=1.0,
                idio_vol=0.0,
                alpha=0.0,
                start_price=1900.0 + 400.0 * draws[3],
                base_volume=float(np.exp(np.log(2.5e9) + draws[4] * np.log(4e9 / 2.5e9))),
            )
        return _TickerParams(
            beta=0.5 + 1.0 * draws[0],
            idio_vol=0.006 + 0.012 * draws[1],
            alpha=-0.0002 + 0.0006 * draws[2],
            start_price=float(np.exp(np.log(10.0) + draws[3] * np.log(1000.0 / 10.0))),
            base_volume=float(np.exp(np.log(2e6) + draws[4] * np.log(8e7 / 2e6))),
            sector_loading=0.5 + draws[5] if sector_of(ticker) else 0.0,
        )

    def _sector_factor(self, ticker: str) -> np.ndarray:
        """The daily shock of the ticker's sector (zeros when it has none)."""
        sector = sector_of(ticker)
        n = self.sessions.len()
        if sector is None:
            return np.zeros(n)
        return SECTOR_VOL * _rng(self.seed, f"__sector_{sector}__", 0).standard_normal(n)

    def _simulate(self, ticker: str) -> pl.DataFrame:
        params = self._params(ticker)
        regimes, market_noise = self._market_factor()
        n = self.sessions.len()
        idio = _rng(self.seed, ticker, _STREAM_NOISE).standard_normal(n)

        drift = params.alpha + params.beta * REGIME_DRIFT[regimes]
        noise = (
            params.beta * REGIME_VOL[regimes] * market_noise
            + params.sector_loading * self._sector_factor(ticker)
            + params.idio_vol * idio
        )
        day_vol = np.sqrt(
            (params.beta * REGIME_VOL[regimes]) ** 2
            + (params.sector_loading * SECTOR_VOL) ** 2
            + params.idio_vol**2
        )
        jumps: dict[int, float] = {}
        session_days = self.sessions.to_numpy()
        for shock in self.shocks:
            if shock.ticker != ticker:
                continue
            k = int(np.searchsorted(session_days, np.datetime64(shock.date, "D")))
            if k >= n:
                continue  # after the market's end: no effect yet
            after = slice(k + 1, n)
            noise[after] *= shock.vol_multiplier
            day_vol[after] *= shock.vol_multiplier
            drift[after] += shock.drift_shift
            jumps[k] = shock.price_jump
        returns = drift + noise
        for k, jump in jumps.items():
            returns[k] = jump

        log_close = np.log(params.start_price) + np.cumsum(returns)
        close = np.exp(log_close)
        previous_close = np.exp(np.concatenate(([np.log(params.start_price)], log_close[:-1])))

        bars = _rng(self.seed, ticker, _STREAM_BARS).random((n, 3))
        overnight_share = 0.5 * bars[:, 0]
        open_ = previous_close * np.exp(overnight_share * returns)
        high_reach = 0.5 * day_vol * -np.log1p(-bars[:, 1])
        low_reach = 0.5 * day_vol * -np.log1p(-bars[:, 2])
        high = np.maximum(open_, close) * np.exp(high_reach)
        low = np.minimum(open_, close) * np.exp(-low_reach)

        volume_noise = _rng(self.seed, ticker, _STREAM_VOLUME).standard_normal(n)
        volume = params.base_volume * np.exp(0.25 * volume_noise) * (1.0 + 25.0 * np.abs(returns))
        volume = np.maximum(np.rint(volume), 1.0).astype(np.int64)

        return pl.DataFrame(
            {
                "date": self.sessions,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "adj_close": close,
                "volume": volume,
                "ticker": ticker,
            },
            schema=PRICE_SCHEMA,
        )
