"""strategy_backtest and strategy_metrics: does trading on the forecasts make money after costs?

One run per ticker reads the ticker's whole performance log (every matured forecast) from the
lake by path, runs the long/flat rule of `strategy.rules`, and writes the daily series and the
one-row-per-strategy metrics (strategy, buy-and-hold, always-flat, same sessions).

Why by path and not as an input: forecast_performance is a panel (partitioned by date, every
ticker's rows), and a ticker's back-test reads that ticker's files of every date
(`forecast_performance/<T>/<date>.parquet`), not every ticker's.
"""

from collections.abc import Iterator
from enum import Enum

import dagster as dg
import polars as pl

from stock_assets.contract import FORECAST_PERFORMANCE, STRATEGY_BACKTEST, STRATEGY_METRICS
from stock_assets.lake import LakeResource
from stock_assets.metadata import figure_markdown, markdown_table, pyplot
from stock_assets.partitions import ticker_partitions
from stock_assets.strategy.rules import Rule, backtest

PERFORMANCE_LOG = FORECAST_PERFORMANCE
SHOWN_METRICS = (
    "strategy", "total_return", "cagr", "volatility", "sharpe", "sortino", "calmar",
    "max_drawdown", "win_rate", "profit_factor", "trades", "turnover", "exposure",
)  # fmt: skip


class Rebalancing(Enum):
    """When the rule decides: every session (h=1 forecast) or every `horizon` sessions."""

    daily = "daily"
    horizon = "horizon"


class StrategyConfig(dg.Config):
    """The rule's knobs; the defaults decide every 5 sessions on the h=5 forecast, 5 bp costs."""

    horizon: int = 5
    rebalance: Rebalancing = Rebalancing.horizon
    cost_bps: float = 5.0
    p_up_threshold: float = 0.5
    # In-sample forecasts (target inside the model's training window) flatter any rule.
    include_in_sample: bool = False

    def rule(self) -> Rule:
        return Rule(self.horizon, self.rebalance.value, self.cost_bps, self.p_up_threshold)


def performance_log(lake: LakeResource, ticker: str) -> pl.DataFrame:
    """Every matured forecast of the ticker: all its forecast_performance partitions, concatenated."""
    frames = [lake.read(PERFORMANCE_LOG, ticker, day) for day in lake.partitions(PERFORMANCE_LOG, ticker)]
    frames = [frame for frame in frames if frame.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def equity_chart(series: pl.DataFrame, title: str) -> dg.MetadataValue:
    """Equity of the strategy vs buy-and-hold (start 1.0), their drawdowns underneath."""
    figure, (top, bottom) = pyplot().subplots(
        2, 1, figsize=(8, 4.6), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    days = series["date"].to_list()
    top.plot(days, series["equity"], color="tab:blue", linewidth=1.3, label="strategy")
    top.plot(days, series["buy_hold_equity"], color="black", linewidth=1, label="buy and hold")
    top.fill_between(days, 0, 1, where=(series["position"] > 0).to_list(), alpha=0.08,
                     color="tab:green", transform=top.get_xaxis_transform(), label="long")
    top.axhline(1.0, color="grey", linewidth=0.6, linestyle=":")
    top.set_ylabel("equity")
    top.set_title(title)
    top.legend(loc="best", fontsize=7)
    bottom.fill_between(days, series["drawdown"], 0, color="tab:blue", alpha=0.35, label="strategy")
    bottom.plot(days, series["buy_hold_drawdown"], color="black", linewidth=0.8, label="buy and hold")
    bottom.set_ylabel("drawdown")
    bottom.legend(loc="lower left", fontsize=7)
    figure.autofmt_xdate()
    return figure_markdown(figure)


def _metadata(
    series: pl.DataFrame, metrics: pl.DataFrame, rule: Rule, ticker: str, skipped: int
) -> dict[str, object]:
    """What a person checks in the UI: the window, the rule, the metrics table, the curve."""
    base: dict[str, object] = {
        "rule": rule.describe(),
        "in_sample_forecasts_skipped": skipped,
    }
    if series.is_empty():
        return base | {
            "message": dg.MetadataValue.text(
                f"No back-test for {ticker}: its performance log has no matured out-of-sample "
                f"forecast of horizon {rule.hold} with a full holding period after it. "
                f"Materialize daily_forecast and forecast_performance for {ticker} first."
            )
        }
    first, last = series["date"].min(), series["date"].max()
    window = f"{first}..{last} ({series.height} sessions)"
    return base | {
        "window": window,
        "metrics": dg.MetadataValue.md(markdown_table(metrics.select(SHOWN_METRICS))),
        "strategy_total_return": float(metrics["total_return"][0]),
        "buy_hold_total_return": float(metrics["total_return"][1]),
        "equity_curve": equity_chart(series, f"{ticker}: {rule.rebalance} long/flat, {window}"),
    }


@dg.multi_asset(
    outs={
        STRATEGY_BACKTEST: dg.AssetOut(
            description=(
                "Daily series of the long/flat rule on the ticker's matured forecasts: position, "
                "turnover, cost, net returns and equity of the strategy and buy-and-hold, drawdowns."
            ),
            group_name="strategy",
            kinds={"parquet"},
        ),
        STRATEGY_METRICS: dg.AssetOut(
            description=(
                "One row per strategy (strategy, buy_and_hold, always_flat) over the same sessions: "
                "quantstats' return, CAGR, volatility, Sharpe, Sortino, Calmar, max drawdown, win "
                "rate, profit factor; trades, turnover, exposure."
            ),
            group_name="strategy",
            kinds={"parquet"},
        ),
    },
    # Lineage only: the log is read from the lake by path (see the module docstring).
    deps=[dg.AssetDep(PERFORMANCE_LOG, partition_mapping=dg.AllPartitionMapping())],
    partitions_def=ticker_partitions,
)
def strategy_backtest(
    context: dg.AssetExecutionContext, config: StrategyConfig, lake: LakeResource
) -> Iterator[dg.Output]:
    """Trades the ticker's forecasts with the documented rule and scores it against buy-and-hold."""
    ticker = context.partition_key
    log = performance_log(lake, ticker)
    skipped = 0
    if not config.include_in_sample and "in_sample" in log.columns:
        skipped = int(log["in_sample"].fill_null(False).sum())
        log = log.filter(~pl.col("in_sample").fill_null(False))
    rule = config.rule()
    series, metrics = backtest(log, rule, ticker)
    metadata = _metadata(series, metrics, rule, ticker, skipped)
    yield dg.Output(series, output_name=STRATEGY_BACKTEST, metadata=metadata)
    yield dg.Output(
        metrics,
        output_name=STRATEGY_METRICS,
        metadata={k: v for k, v in metadata.items() if k != "equity_curve"},
    )
