"""Walk-forward back-test of the 12 main tickers over the most recent year; print honest scores.

Why: a forecast is judged out of sample only. Over the last year of ../shared/data/prices (the
252 sessions whose 5-session targets all exist), a child is refitted every K sessions on data
before each refit date (the parent once, on ^GSPC before the year), with the code the
`daily_forecast` asset runs for `backtest --refit-every K` (forecasting.walk_forward, inference,
scores), and scored beside naive persistence and three volatility baselines (random walk with
trailing one-year / RiskMetrics EWMA bands, GARCH(1,1)-t refitted at the same dates). Then the
transfer claim: children trained on only the 250 sessions before the year, freeze / fine_tune /
scratch, on the same metrics. Not a test: it reads ../shared/data/prices and takes minutes.

    python benchmarks/bench_forecasts.py [--tickers AAPL MSFT] [--refit-every 63]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from stock_assets.datasets.windows import SplitConfig, build_sequences
from stock_assets.features.indicators import compute_indicators
from stock_assets.forecasting.performance import NO_CALL_BAND, climatology
from stock_assets.forecasting.walk_forward import (
    Refit,
    WalkForwardConfig,
    forecast_refits,
    parent_before,
    train_model,
    walk_forward_refits,
)
from stock_assets.modeling.scores import brier, covered, directional_call, interval_score
from stock_assets.modeling.uncertainty import baseline_quantiles
from stock_assets.quantiles import QUANTILE_COLUMNS, QUANTILES
from stock_assets.tickers import load_watchlist

REPO = Path(__file__).resolve().parents[1]
PRICES = REPO.parent / "shared" / "data" / "prices"
MAIN_TICKERS = tuple(load_watchlist(REPO / "watchlist.yaml"))
EVAL_SESSIONS = 252
SHORT_HISTORY = 250
HORIZON = 5
LOW, HIGH = QUANTILES.index(0.10), QUANTILES.index(0.90)
LOW90, HIGH90 = QUANTILES.index(0.05), QUANTILES.index(0.95)
TARGETS = "80 % cov 77-83 %, 90 % cov 87-92 %, W80 h5 <= 0.95 x rw_trailing, MAPE <= 1.000 x naive"


def load(key: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    prices = pl.read_csv(PRICES / f"{key}.csv", try_parse_dates=True).with_columns(
        ticker=pl.lit(key)
    )
    return prices, compute_indicators(prices)


def scores(actual, last, closes, p_up, base_rate) -> dict[str, float]:
    """Every figure the table prints, for one model's (n, H) closes and (n, H, Q) quantiles."""
    row: dict[str, float] = {}
    for name, step in (("h1", 0), ("h5", HORIZON - 1)):
        y, q = actual[:, step], closes[:, step, :]
        row[f"mape_{name}"] = float(np.mean(np.abs(q[:, QUANTILES.index(0.5)] - y) / y))
        row[f"cov80_{name}"] = float(covered(y, q[:, LOW], q[:, HIGH]).mean())
        row[f"cov90_{name}"] = float(covered(y, q[:, LOW90], q[:, HIGH90]).mean())
    y, q = actual[:, -1], closes[:, -1, :]
    row["w80_h5"] = float(interval_score(y, q[:, LOW], q[:, HIGH], 80).mean())
    up = (y > last).astype(float)
    row["brier_h5"] = float(brier(p_up[:, -1], up).mean())
    row["brier_clim_h5"] = float(brier(base_rate, up).mean())
    return row


def point_scores(row: dict, actual, last, point) -> dict:
    """MAPE of the point forecast (not the median) and the directional calls."""
    for name, step in (("h1", 0), ("h5", HORIZON - 1)):
        row[f"mape_{name}"] = float(np.mean(np.abs(point[:, step] - actual[:, step]) / actual[:, step]))
    calls = directional_call(point[:, -1], last, NO_CALL_BAND)
    hits = (point[:, -1] > last) == (actual[:, -1] > last)
    row["call_rate"] = float(calls.mean())
    row["hit_rate"] = float(hits[calls].mean()) if calls.any() else float("nan")
    return row


def distribution(prices, indicators, ticker, sessions, refits) -> tuple[np.ndarray, ...]:
    """(point (n, H), quantile closes (n, H, Q), p_up (n, H)) of the refits over their blocks."""
    frames = forecast_refits(refits, ticker=ticker, prices=prices, features=indicators,
                             created_at=datetime.now(UTC))
    ordered = [frames[d] for d in sessions]
    point = np.stack([f["predicted_close"].to_numpy() for f in ordered])
    quantiles = np.stack([f.select(QUANTILE_COLUMNS).to_numpy() for f in ordered])
    p_up = np.stack([f["p_up"].to_numpy() for f in ordered])
    return point, quantiles, p_up


def baselines(close: np.ndarray, rows: np.ndarray, blocks: list) -> dict[str, np.ndarray]:
    """Each volatility baseline's quantile log returns at the rows, GARCH refitted before each
    block on the rows before it (as the model is)."""
    parts: dict[str, list[np.ndarray]] = {}
    start = 0
    for block in blocks:
        block_rows = rows[start : start + len(block)]
        for name, q in baseline_quantiles(close, block_rows, HORIZON,
                                          fit_end=int(block_rows[0]) - 1).items():
            parts.setdefault(name, []).append(q)
        start += len(block)
    return {name: np.concatenate(q) for name, q in parts.items()}


def evaluate_ticker(ticker, index_indicators, config, split) -> dict[str, dict]:
    prices, indicators = load(ticker)
    dates = indicators["date"].to_list()
    close = indicators["close"].to_numpy().astype(float)
    sessions = dates[-EVAL_SESSIONS - HORIZON : -HORIZON]
    rows = np.array([dates.index(d) for d in sessions])
    actual = close[rows[:, None] + np.arange(1, HORIZON + 1)]
    last = close[rows]
    clim = climatology(prices.filter(pl.col("date") <= sessions[-1]), [HORIZON])
    base = clim.filter(pl.col("as_of_date").is_in(sessions)).sort("as_of_date")["base_rate"]
    base_rate = base.fill_null(0.5).to_numpy()
    refits = walk_forward_refits(ticker=ticker, sessions=sessions, history=indicators,
                                 index_history=index_indicators, config=config, split=split)
    for refit in refits:  # out of sample, by construction
        assert refit.bundle.train_end < refit.sessions[0].isoformat()
    point, quantiles, p_up = distribution(prices, indicators, ticker, sessions, refits)
    results = {"model": point_scores(scores(actual, last, quantiles, p_up, base_rate),
                                     actual, last, point)}
    naive = np.repeat(last[:, None], HORIZON, axis=1)
    results["naive"] = point_scores({}, actual, last, naive)

    half = np.full((len(rows), HORIZON), 0.5)
    for name, q in baselines(close, rows, [r.sessions for r in refits]).items():
        results[name] = scores(actual, last, last[:, None, None] * np.exp(q), half, base_rate)

    # Transfer with little history: 250 sessions before the year, no refit.
    short = indicators.filter(pl.col("date") < sessions[0]).tail(SHORT_HISTORY)
    short_data = build_sequences(short, split, ticker=ticker)
    parent = parent_before(index_indicators, sessions[0], config, split)  # the refits' parent
    for strategy in ("freeze", "fine_tune", "scratch"):
        network, bundle = train_model(
            short_data, strategy=strategy,
            parent_state=None if strategy == "scratch" else parent.state_dict,
            config=config, train=config.train_config(),
        )
        one = [Refit(list(sessions), bundle, network, "short", strategy)]
        pt, qs, pu = distribution(prices, indicators, ticker, sessions, one)
        results[f"short_{strategy}"] = point_scores(
            scores(actual, last, qs, pu, base_rate), actual, last, pt)
        # ...and the network itself, before shrinkage toward persistence (skill weight 1):
        # with so little history, shrinkage makes all three strategies persistence.
        network.skill_weight.fill_(1.0)
        raw, _, _ = distribution(prices, indicators, ticker, sessions, one)
        results[f"short_{strategy}"]["raw_mape_h5_ratio"] = float(
            np.mean(np.abs(raw[:, -1] - actual[:, -1]) / actual[:, -1])
            / np.mean(np.abs(last - actual[:, -1]) / actual[:, -1]))
    full = build_sequences(indicators, split, ticker=ticker)
    results["model"]["production_train_end"] = full.boundaries.train_last_target.isoformat()
    results["model"]["sessions_after_train_end"] = split.sessions_after_training
    results["model"]["window"] = f"{sessions[0]}..{sessions[-1]}"
    return results


def fmt(value) -> str:
    if isinstance(value, str):
        return value
    return "   n/a" if value is None or not np.isfinite(value) else f"{value:6.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", nargs="+", default=list(MAIN_TICKERS))
    parser.add_argument("--refit-every", type=int, default=63)
    parser.add_argument("--history-sessions", type=int, default=WalkForwardConfig().history_sessions,
                        help="sessions each refit trains on (0: all history)")
    args = parser.parse_args()
    if not (PRICES / "GSPC.csv").exists():
        print(f"no price data at {PRICES} (expected GSPC.csv and <TICKER>.csv); skipping")
        return 2
    config = WalkForwardConfig(refit_every=args.refit_every,
                               history_sessions=args.history_sessions or None)
    split = SplitConfig()
    print(f"walk-forward: refit every {args.refit_every} sessions, {config}\nsplit {split}\n")
    started = time.perf_counter()
    _, index_indicators = load("GSPC")
    per_ticker = {}
    for ticker in args.tickers:
        began = time.perf_counter()
        per_ticker[ticker] = evaluate_ticker(ticker, index_indicators, config, split)
        model = per_ticker[ticker]["model"]
        print(f"{ticker:<5} window {model['window']}  production train_end "
              f"{model['production_train_end']} ({model['sessions_after_train_end']} sessions "
              f"before the latest price)  [{time.perf_counter() - began:5.1f}s]", flush=True)

    names = ["model", "naive", "rw_trailing", "rw_ewma", "garch_t",
             "short_freeze", "short_fine_tune", "short_scratch"]
    columns = ["mape_h1", "mape_h5", "cov80_h1", "cov80_h5", "cov90_h1", "cov90_h5", "w80_h5",
               "brier_h5", "brier_clim_h5", "call_rate", "hit_rate"]
    print("\nper ticker (eval window above; MAPE and Winkler as fractions of price)")
    print(f"{'ticker':<6}{'model':<16}" + "".join(f"{c:>14}" for c in
                                                  ["mape_h5/naive", "w80_h5/rw_tr", *columns]))
    averages: dict[str, dict[str, list[float]]] = {}
    for ticker, results in per_ticker.items():
        for name in names:
            row = results[name]
            ratio = row.get("mape_h5", np.nan) / results["naive"]["mape_h5"]
            w_ratio = row.get("w80_h5", np.nan) / results["rw_trailing"]["w80_h5"]
            row = {**row, "mape_h5_ratio": ratio, "w80_ratio": w_ratio,
                   "mape_h1_ratio": row.get("mape_h1", np.nan) / results["naive"]["mape_h1"]}
            for key, value in row.items():
                if isinstance(value, float):
                    averages.setdefault(name, {}).setdefault(key, []).append(value)
            print(f"{ticker:<6}{name:<16}{fmt(ratio):>14}{fmt(w_ratio):>14}"
                  + "".join(f"{fmt(row.get(c)):>14}" for c in columns))
    print(f"\naverage over {len(per_ticker)} tickers (targets: {TARGETS})")
    print(f"{'model':<16}{'h1/naive':>10}{'h5/naive':>10}{'w80/rw_tr':>10}"
          + "".join(f"{c:>14}" for c in columns))
    for name in names:
        mean = {k: statistics.fmean([v for v in vs if np.isfinite(v)] or [np.nan])
                for k, vs in averages[name].items()}
        print(f"{name:<16}{fmt(mean.get('mape_h1_ratio')):>10}{fmt(mean.get('mape_h5_ratio')):>10}"
              f"{fmt(mean.get('w80_ratio')):>10}" + "".join(f"{fmt(mean.get(c)):>14}" for c in columns))
    print("\ntransfer with 250 sessions of history (the network before shrinkage, MAPE h5 / naive):")
    for name in ("short_freeze", "short_fine_tune", "short_scratch"):
        values = averages[name]["raw_mape_h5_ratio"]
        print(f"  {name:<16} mean {statistics.fmean(values):.4f}  "
              f"better than naive on {sum(v < 1 for v in values)}/{len(values)}")
    worst = max(averages["model"]["mape_h5_ratio"])
    better = sum(r < 1.0 for r in averages["model"]["mape_h5_ratio"])
    print(f"\nmodel: worst ticker MAPE h5 {worst:.4f} x naive (target <= 1.01); "
          f"{better}/{len(per_ticker)} tickers better than naive at h5")
    print(f"done in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
