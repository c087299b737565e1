"""The long/flat rule on crafted forecasts: exact positions, costs, and quantstats' metrics."""

from __future__ import annotations

import polars as pl
import pytest
import quantstats as qs

from stock_assets.strategy.rules import Rule, as_pandas, backtest, daily_positions
from stock_assets_tests.strategy.crafted_log import CLOSES, crafted_log, perfect, sessions

DAYS = sessions(len(CLOSES))
# Perfect foresight, daily: long exactly on the sessions whose close rose (dates 1..10).
DAILY_POSITIONS = [1, 1, 0, 1, 0, 0, 1, 1, 1, 0]
# Perfect foresight, h = 2 holds decided at sessions 0, 2, 4, 6, 8 (102/100 up, 100/102 down,
# 97/100 down, 100/97 up, 102/100 up).
HORIZON2_POSITIONS = [1, 1, 0, 0, 0, 0, 1, 1, 1, 1]


def test_daily_positions_follow_the_h1_forecast() -> None:
    frame = daily_positions(crafted_log(CLOSES, perfect(CLOSES)), Rule(rebalance="daily"))
    assert frame["date"].to_list() == DAYS[1:]
    assert frame["decision_date"].to_list() == DAYS[:-1]
    assert frame["position"].to_list() == DAILY_POSITIONS
    assert frame["asset_return"][2] == pytest.approx(99 / 102 - 1)


def test_horizon_positions_hold_for_h_sessions_without_overlap() -> None:
    rule = Rule(horizon=2, rebalance="horizon")
    frame = daily_positions(crafted_log(CLOSES, perfect(CLOSES)), rule)
    assert frame["date"].to_list() == DAYS[1:]
    assert frame["position"].to_list() == HORIZON2_POSITIONS
    assert frame["decision_date"].to_list() == [DAYS[i] for i in (0, 0, 2, 2, 4, 4, 6, 6, 8, 8)]
    # h = 3: decisions at 0, 3, 6 only; session 10 would need a hold ending past the log.
    frame = daily_positions(crafted_log(CLOSES, perfect(CLOSES)), Rule(horizon=3))
    assert frame["date"].to_list() == DAYS[1:10]
    assert frame["position"].to_list() == [0, 0, 0, 0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize(("cost_bps", "long"), [(0, True), (3, True), (5, False)])
def test_expected_return_must_beat_the_round_trip_cost(cost_bps: float, long: bool) -> None:
    log = crafted_log(CLOSES, lambda i, h: (0.0008, 0.9))  # 8 bp expected every session
    frame = daily_positions(log, Rule(rebalance="daily", cost_bps=cost_bps))
    assert set(frame["position"].to_list()) == {1.0 if long else 0.0}


def test_p_up_must_beat_the_threshold_and_a_missing_forecast_is_flat() -> None:
    log = crafted_log(CLOSES, perfect(CLOSES))
    strict = daily_positions(log, Rule(rebalance="daily", p_up_threshold=0.9))
    assert strict["position"].sum() == 0  # p_up 0.9 is not > 0.9
    gap = log.filter(~((pl.col("as_of_date") == DAYS[3]) & (pl.col("horizon") == 1)))
    frame = daily_positions(gap, Rule(rebalance="daily"))
    assert frame["position"].to_list() == [1, 1, 0, 0, 0, 0, 1, 1, 1, 0]  # date 4 now flat


@pytest.mark.parametrize("cost_bps", [5.0, 10.0])
def test_costs_take_turnover_times_cost(cost_bps: float) -> None:
    log = crafted_log(CLOSES, perfect(CLOSES))
    free, _ = backtest(log, Rule(rebalance="daily", cost_bps=0), "AAPL")
    paid, metrics = backtest(log, Rule(rebalance="daily", cost_bps=cost_bps), "AAPL")
    assert paid["position"].to_list() == free["position"].to_list()  # every move beats 20 bp
    turnover = 6  # in on dates 1, 4, 7; out on 3, 5, 10
    lost = free["strategy_return"].sum() - paid["strategy_return"].sum()
    assert lost == pytest.approx(turnover * cost_bps / 10_000)
    assert paid["cost"].sum() == pytest.approx(turnover * cost_bps / 10_000)
    # buy-and-hold pays its one entry, on the first session
    assert (free["buy_hold_return"] - paid["buy_hold_return"]).to_list() == pytest.approx(
        [cost_bps / 10_000] + [0.0] * 9
    )
    row = metrics.filter(pl.col("strategy") == "strategy").row(0, named=True)
    assert (row["trades"], row["turnover"], row["exposure"]) == (3, 6.0, 0.6)
    hold = metrics.filter(pl.col("strategy") == "buy_and_hold").row(0, named=True)
    assert (hold["trades"], hold["turnover"], hold["exposure"]) == (1, 1.0, 1.0)


def test_metrics_are_quantstats_own_on_the_same_returns() -> None:
    series, metrics = backtest(crafted_log(CLOSES, perfect(CLOSES)), Rule(rebalance="daily"), "AAPL")
    for name, column in (("strategy", "strategy_return"), ("buy_and_hold", "buy_hold_return")):
        returns = as_pandas(series, column)
        row = metrics.filter(pl.col("strategy") == name).row(0, named=True)
        assert row["sharpe"] == pytest.approx(qs.stats.sharpe(returns))
        assert row["sortino"] == pytest.approx(qs.stats.sortino(returns))
        assert row["calmar"] == pytest.approx(qs.stats.calmar(returns))
        assert row["cagr"] == pytest.approx(qs.stats.cagr(returns))
        assert row["volatility"] == pytest.approx(qs.stats.volatility(returns))
        assert row["win_rate"] == pytest.approx(qs.stats.win_rate(returns))
        assert row["profit_factor"] == pytest.approx(qs.stats.profit_factor(returns))
        assert row["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(returns))
    # and they agree with the series itself
    strategy = metrics.filter(pl.col("strategy") == "strategy").row(0, named=True)
    assert strategy["total_return"] == pytest.approx(series["equity"][-1] - 1)
    assert strategy["max_drawdown"] == pytest.approx(series["drawdown"].min())
    # perfect foresight gains on its 6 long days; its 3 exits cost 5 bp on a flat day
    assert strategy["win_rate"] == pytest.approx(6 / 9)
    _, free = backtest(crafted_log(CLOSES, perfect(CLOSES)), Rule(rebalance="daily", cost_bps=0), "A")
    assert free.filter(pl.col("strategy") == "strategy")["win_rate"][0] == 1.0
    hold = metrics.filter(pl.col("strategy") == "buy_and_hold").row(0, named=True)
    # the first session's 1 % less the 5 bp entry, then 101 -> 102 over the rest
    assert hold["total_return"] == pytest.approx((1.01 - 5e-4) * 102 / 101 - 1)


def test_always_flat_earns_nothing_with_undefined_ratios() -> None:
    _, metrics = backtest(crafted_log(CLOSES, perfect(CLOSES)), Rule(rebalance="daily"), "AAPL")
    flat = metrics.filter(pl.col("strategy") == "always_flat").row(0, named=True)
    assert (flat["total_return"], flat["max_drawdown"], flat["trades"], flat["exposure"]) == (
        0.0, 0.0, 0, 0.0,
    )  # fmt: skip
    assert flat["sharpe"] is None and flat["sortino"] is None


def test_an_empty_log_gives_empty_tables() -> None:
    empty = crafted_log(CLOSES, perfect(CLOSES)).head(0)
    series, metrics = backtest(empty, Rule(), "AAPL")
    assert series.is_empty() and metrics.is_empty()
    assert {"date", "position", "strategy_return", "equity", "drawdown"} <= set(series.columns)
    # a log without the hold's horizon has no decision either
    series, _ = backtest(crafted_log(CLOSES, perfect(CLOSES), horizons=(1,)), Rule(horizon=5), "X")
    assert series.is_empty()
