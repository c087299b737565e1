"""The synthetic market: reproducible, plausible bars on NYSE sessions, and shocks that do what
they say."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from stock_assets.ingestion.errors import PriceSourceError, UnknownTickerError
from stock_assets.ingestion.quality import (
    check_finite,
    check_gaps,
    check_ohlc_consistency,
    check_price_jumps,
    check_split_jumps,
    check_unique_dates,
)
from stock_assets.ingestion.synthetic import (
    DEFAULT_UNIVERSE,
    REGIMES,
    Shock,
    SyntheticMarket,
)
from stock_assets.market_calendar import trading_sessions

START, END = date(2018, 1, 2), date(2021, 12, 31)
SHOCK_DATE = date(2020, 6, 15)  # a Monday


def _market(seed: int = 7, **kwargs) -> SyntheticMarket:
    return SyntheticMarket(
        seed=seed, start=kwargs.pop("start", START), end=kwargs.pop("end", END), **kwargs
    )


def _log_returns(prices: pl.DataFrame) -> np.ndarray:
    return np.diff(np.log(prices["close"].to_numpy()))


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return _market()


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames(market: SyntheticMarket) -> None:
    again = _market()
    for ticker in DEFAULT_UNIVERSE:
        assert market.prices(ticker).equals(again.prices(ticker)), ticker


def test_different_seed_gives_different_prices(market: SyntheticMarket) -> None:
    other = _market(seed=8)
    for ticker in ("GSPC", "AAPL"):
        a, b = market.prices(ticker), other.prices(ticker)
        assert a["date"].equals(b["date"])
        assert not np.allclose(a["close"].to_numpy(), b["close"].to_numpy())


def test_a_sub_range_is_the_slice_of_the_full_range(market: SyntheticMarket) -> None:
    full = market.prices("MSFT")
    part = market.prices("MSFT", start=date(2019, 3, 1), end=date(2019, 6, 30))
    expected = full.filter(pl.col("date").is_between(date(2019, 3, 1), date(2019, 6, 30)))
    assert part.height == expected.height > 80
    assert part.equals(expected)
    # a fresh market asked only for the sub-range, before anything else, agrees too
    assert _market().prices("MSFT", start=date(2019, 3, 1), end=date(2019, 6, 30)).equals(expected)


def test_other_tickers_and_call_order_do_not_change_a_ticker(market: SyntheticMarket) -> None:
    reference = market.prices("AAPL")
    alone = _market(universe=("AAPL",))
    bigger = _market(universe=(*DEFAULT_UNIVERSE, "ZZZ", "BRK-B"))
    bigger.prices("ZZZ")
    bigger.prices("NVDA")
    assert alone.prices("AAPL").equals(reference)
    assert bigger.prices("AAPL").equals(reference)


def test_extending_the_end_keeps_every_earlier_day(market: SyntheticMarket) -> None:
    longer = _market(end=END + timedelta(days=200))
    for ticker in ("GSPC", "AAPL"):
        assert longer.prices(ticker, end=END).equals(market.prices(ticker))
    assert longer.prices("AAPL").height > market.prices("AAPL").height + 100


def test_reproducible_across_processes_with_different_hash_seeds(tmp_path: Path) -> None:
    """crc32-derived seeds, not hash(): a new interpreter with another PYTHONHASHSEED agrees."""
    script = (
        "from datetime import date; import sys\n"
        "from stock_assets.ingestion.synthetic import SyntheticMarket\n"
        "m = SyntheticMarket(seed=7, start=date(2018, 1, 2), end=date(2021, 12, 31))\n"
        "m.prices('AAPL').write_parquet(sys.argv[1])\n"
    )
    target = tmp_path / "aapl.parquet"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", script, str(target)], check=True, env=env, cwd=root)
    assert pl.read_parquet(target).equals(_market().prices("AAPL"))


# --- shape of the data ---------------------------------------------------------------------------


def test_schema(market: SyntheticMarket) -> None:
    prices = market.prices("JPM")
    assert prices.schema == pl.Schema(
        {
            "date": pl.Date,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "adj_close": pl.Float64,
            "volume": pl.Int64,
            "ticker": pl.String,
        }
    )
    assert prices["ticker"].unique().to_list() == ["JPM"]
    assert prices["adj_close"].equals(prices["close"])  # no dividends in the synthetic market


@pytest.mark.parametrize("ticker", DEFAULT_UNIVERSE)
def test_bars_are_consistent(market: SyntheticMarket, ticker: str) -> None:
    p = market.prices(ticker)
    open_, high, low, close = (p[c].to_numpy() for c in ("open", "high", "low", "close"))
    assert (high >= np.maximum(open_, close)).all()
    assert (low <= np.minimum(open_, close)).all()
    assert (low > 0).all()
    assert (p["volume"] > 0).all()
    for result in (
        check_ohlc_consistency(p),
        check_finite(p),
        check_unique_dates(p),
        check_gaps(p),
        check_price_jumps(p),  # no dividends or splits: adj_close == close, every move explained
        check_split_jumps(p),
    ):
        assert result.passed, result.description


def test_trading_days_only(market: SyntheticMarket) -> None:
    dates = market.prices("AAPL")["date"]
    assert dates.equals(trading_sessions(START, END), check_names=False)
    assert dates.dt.weekday().max() <= 5  # Monday=1 .. Friday=5
    assert date(2020, 12, 25) not in dates.to_list()
    assert date(2020, 12, 24) in dates.to_list()  # half day, still a session
    assert date(2018, 12, 5) not in dates.to_list()  # market closed: national day of mourning
    assert dates.is_sorted() and dates.n_unique() == dates.len() == 1008


def test_price_levels_span_orders_of_magnitude(market: SyntheticMarket) -> None:
    first = {t: market.prices(t)["close"][0] for t in DEFAULT_UNIVERSE}
    index_level = first.pop("GSPC")
    assert 1800 < index_level < 2500
    assert all(5 < level < 1200 for level in first.values()), first
    assert max(first.values()) / min(first.values()) > 10


def test_stocks_move_with_the_market_and_volume_with_the_move(market: SyntheticMarket) -> None:
    index_returns = _log_returns(market.prices("GSPC"))
    for ticker in ("AAPL", "XOM", "PG"):
        prices = market.prices(ticker)
        returns = _log_returns(prices)
        assert np.corrcoef(returns, index_returns)[0, 1] > 0.3, ticker
        assert np.corrcoef(np.abs(returns), prices["volume"].to_numpy()[1:])[0, 1] > 0.3, ticker


def test_regimes_switch_and_differ_in_volatility(market: SyntheticMarket) -> None:
    regimes = market.market_regimes()
    assert regimes["date"].equals(market.sessions)
    assert set(regimes["regime"].unique()) == set(REGIMES)
    returns = pl.DataFrame(
        {"regime": regimes["regime"][1:], "r": _log_returns(market.prices("GSPC"))}
    )
    vol = dict(returns.group_by("regime").agg(pl.col("r").std()).iter_rows())
    assert vol["volatile_bear"] > 2 * vol["calm_bull"]
    switches = (regimes["regime"] != regimes["regime"].shift(1)).sum()
    assert 5 <= switches <= 200


def test_default_end_is_the_last_completed_session() -> None:
    default = SyntheticMarket(start=date.today() - timedelta(days=30))
    assert default.end <= date.today()
    assert date.today() - default.end < timedelta(days=6)
    assert default.prices("GSPC")["date"].max() == default.end
    assert default.end.weekday() < 5


# --- shocks --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shocked() -> SyntheticMarket:
    return _market(shocks=[Shock("AAPL", SHOCK_DATE)])


def test_shock_day_log_return_is_the_price_jump(shocked: SyntheticMarket) -> None:
    prices = shocked.prices("AAPL", start=SHOCK_DATE - timedelta(days=3), end=SHOCK_DATE)
    assert prices["date"][-1] == SHOCK_DATE
    jump = np.log(prices["close"][-1] / prices["close"][-2])
    assert jump == pytest.approx(-0.25, abs=1e-12)  # the shock day's move IS the jump


def test_shock_changes_nothing_before_it_nor_other_tickers(
    market: SyntheticMarket, shocked: SyntheticMarket
) -> None:
    before = pl.col("date") < SHOCK_DATE
    assert shocked.prices("AAPL").filter(before).equals(market.prices("AAPL").filter(before))
    for ticker in ("GSPC", "MSFT"):
        assert shocked.prices(ticker).equals(market.prices(ticker))


def test_shock_multiplies_volatility_against_the_unshocked_path(
    market: SyntheticMarket, shocked: SyntheticMarket
) -> None:
    """Same random draws with and without the shock: the ratio isolates vol_multiplier.

    Only the deterministic drift (~1e-3 a day vs ~1.5e-2 of noise) is not scaled, so the ratio
    is 3 within 1 % (measured 2.98-3.00 over 20 seeds).
    """
    after = pl.col("date") > SHOCK_DATE
    with_shock = _log_returns(shocked.prices("AAPL").filter(after))
    without = _log_returns(market.prices("AAPL").filter(after))
    assert with_shock.std(ddof=1) / without.std(ddof=1) == pytest.approx(3.0, rel=0.01)


def test_realised_vol_after_vs_before_the_shock_is_about_the_multiplier() -> None:
    """What a monitor sees on the shocked series alone: std of 250 log returns after / before.

    The market's regime differs between the two windows, so one seed scatters (measured
    2.37..3.57 over 20 seeds); the median over 20 seeds is 2.88, within 10 % of 3. Sampling error
    of a std ratio of 250 returns each is ~9 %, regimes add the rest.
    """
    ratios = []
    for seed in range(20):
        prices = _market(seed=seed, shocks=[Shock("AAPL", SHOCK_DATE)]).prices("AAPL")
        returns = _log_returns(prices)
        k = prices["date"].to_list().index(SHOCK_DATE) - 1  # index of the shock day's return
        ratios.append(returns[k + 1 : k + 251].std(ddof=1) / returns[k - 250 : k].std(ddof=1))
    assert np.median(ratios) == pytest.approx(3.0, rel=0.10)
    assert min(ratios) > 2.0 and max(ratios) < 4.5


def test_drift_shift_moves_every_later_return(market: SyntheticMarket) -> None:
    drifted = _market(
        shocks=[Shock("AAPL", SHOCK_DATE, price_jump=0.0, vol_multiplier=1.0, drift_shift=0.01)]
    )
    after = pl.col("date") >= SHOCK_DATE
    base = _log_returns(market.prices("AAPL").filter(after))
    moved = _log_returns(drifted.prices("AAPL").filter(after))
    np.testing.assert_allclose(moved - base, 0.01, atol=1e-12)


def test_shock_on_a_weekend_hits_the_next_session() -> None:
    saturday = date(2020, 6, 13)
    prices = _market(shocks=[Shock("AAPL", saturday, price_jump=0.1)]).prices("AAPL")
    monday = prices.filter(pl.col("date") <= SHOCK_DATE).tail(2)
    assert monday["date"].to_list() == [date(2020, 6, 12), SHOCK_DATE]
    assert np.log(monday["close"][1] / monday["close"][0]) == pytest.approx(0.1, abs=1e-12)


def test_shock_validation() -> None:
    with pytest.raises(UnknownTickerError, match="ZZZ"):
        _market(shocks=[Shock("ZZZ", SHOCK_DATE)])
    with pytest.raises(ValueError, match="after start"):
        _market(shocks=[Shock("AAPL", START)])
    with pytest.raises(ValueError, match="vol_multiplier"):
        _market(shocks=[Shock("AAPL", SHOCK_DATE, vol_multiplier=0.0)])


# --- errors --------------------------------------------------------------------------------------


def test_unknown_ticker_error(market: SyntheticMarket) -> None:
    with pytest.raises(UnknownTickerError, match=r"unknown ticker 'IBM'.*AAPL") as error:
        market.prices("IBM")
    assert isinstance(error.value, ValueError) and isinstance(error.value, PriceSourceError)
    with pytest.raises(UnknownTickerError):
        market.prices("^GSPC")  # keys only; the symbol mapping lives in stock_assets.tickers


def test_a_range_outside_the_market_is_an_error_not_an_empty_frame(market: SyntheticMarket) -> None:
    with pytest.raises(PriceSourceError, match="no AAPL sessions"):
        market.prices("AAPL", start=date(2030, 1, 1))
    with pytest.raises(ValueError, match="after end"):
        market.prices("AAPL", start=date(2020, 1, 10), end=date(2020, 1, 1))
    # a range overlapping the market is clipped to it
    assert market.prices("AAPL", start=date(2000, 1, 1), end=START)["date"].to_list() == [START]


def test_invalid_construction() -> None:
    with pytest.raises(ValueError, match="before start"):
        SyntheticMarket(start=date(2020, 1, 2), end=date(2019, 1, 2))
    with pytest.raises(ValueError, match="seed"):
        SyntheticMarket(seed=-1, start=START, end=END)
