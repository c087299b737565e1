"""Agent report latency, cold vs cached, and the Qdrant cache's hit rate over a replay.

Why: the `agent_report` asset runs for every (date, ticker); a re-run of partitions whose inputs
did not change (a backfill, a retried run, a restarted daemon) should come from the cache, and a
retrained model must not be served a stale report. This measures both on the deterministic path
with the default embedder (offline MiniLM) and embedded Qdrant.

Scenario (20 trading days x 12 tickers = 240 partitions):
  1. daily run: each day's 12 reports in date order, empty cache -> every lookup misses (cold).
  2. replay: all 240 partitions again (a backfill); before it, 3 tickers were retrained and
     promoted for the last 10 days, so those 30 partitions carry a new model version and must
     miss; the other 210 must hit. Expected hit rate 210 / 240 = 87.5 %.
Prices are the real CSVs of ../shared/data/prices when present (the last 20 trading days they
hold), else a seeded random walk; forecasts and performance metrics are synthetic.

    python benchmarks/bench_agent_reports.py [--days 20] [--qdrant-path DIR]
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
import zlib
from datetime import date, timedelta
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stock_assets.agents.cache import ReportCache, load_minilm  # noqa: E402
from stock_assets.agents.graph import build_report_graph, write_report  # noqa: E402
from stock_assets.agents.llm import (  # noqa: E402
    DeterministicAnalystLLM,
    OllamaReportLLM,
    make_report_llm,
)
from stock_assets.agents.quality import check_report_quality  # noqa: E402
from stock_assets.agents.state import ReportInputs, build_report_inputs  # noqa: E402
from stock_assets.tickers import load_watchlist  # noqa: E402

# The project's main tickers (watchlist.yaml), the same twelve every benchmark uses.
TICKERS = load_watchlist(REPO / "watchlist.yaml")
RETRAINED = ["NVDA", "TSLA", "XOM"]
PRICES_DIR = REPO.parent / "shared" / "data" / "prices"
HORIZONS = 5


def _synthetic_prices(seed: int, start: float, vol: float, end: date, n: int) -> pl.DataFrame:
    rng = random.Random(seed)
    days: list[date] = []
    day = end
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    days.reverse()
    closes = [start]
    for _ in days[1:]:
        closes.append(closes[-1] * math.exp(rng.gauss(0.0003, vol)))
    volumes = [rng.uniform(2e7, 9e7) for _ in days]
    return pl.DataFrame({"date": days, "close": closes, "volume": volumes})


def load_prices(days: int) -> tuple[dict[str, pl.DataFrame], str]:
    """Price tables per ticker and ^GSPC: the real CSVs when present, else random walks."""
    needed = [*TICKERS, "GSPC"]
    if all((PRICES_DIR / f"{t}.csv").exists() for t in needed):
        frames = {
            t: pl.read_csv(PRICES_DIR / f"{t}.csv", try_parse_dates=True)
            .select("date", "close", "volume")
            .tail(days + 80)
            for t in needed
        }
        return frames, f"real CSVs from {PRICES_DIR}"
    end = date(2024, 6, 28)
    frames = {
        t: _synthetic_prices(i, 50 + 40 * i, 0.01 + 0.002 * i, end, days + 80)
        for i, t in enumerate(TICKERS)
    }
    frames["GSPC"] = _synthetic_prices(99, 5200.0, 0.008, end, days + 80)
    return frames, "seeded random walks (shared CSVs not found)"


def build_inputs(
    frames: dict[str, pl.DataFrame], ticker: str, as_of: date, day_index: int, version: str
) -> ReportInputs:
    """One partition's inputs: a synthetic forecast and performance log over the prices."""
    rng = random.Random(zlib.crc32(f"{ticker}|{as_of}|{version}".encode()))
    prices = frames[ticker]
    last_close = prices.filter(pl.col("date") <= as_of)["close"][-1]
    final = rng.gauss(0.0, 2.0)
    targets = [d for d in (as_of + timedelta(days=i) for i in range(1, 10)) if d.weekday() < 5]
    forecast = pl.DataFrame(
        {
            "ticker": [ticker] * HORIZONS,
            "as_of_date": [as_of] * HORIZONS,
            "target_date": targets[:HORIZONS],
            "horizon": list(range(1, HORIZONS + 1)),
            "last_close": [last_close] * HORIZONS,
            "predicted_close": [
                last_close * (1 + final / 100 * h / HORIZONS) for h in range(1, HORIZONS + 1)
            ],
            "model_name": [f"child_lstm_{ticker}"] * HORIZONS,
            "model_version": [version] * HORIZONS,
        }
    )
    naive = rng.uniform(1.2, 3.0)
    performance = {
        "rolling_mape_pct": naive * rng.uniform(0.85, 1.08),
        "naive_mape_pct": naive,
        "directional_accuracy": rng.uniform(0.45, 0.62),
        "n_matured": 5 + day_index,
    }
    share = rng.uniform(0.0, 0.6)
    drift = {"drift_share": share, "drifted": share > 0.5}
    return build_report_inputs(forecast, prices, frames["GSPC"], performance, drift)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--qdrant-path", type=Path, default=None)
    args = parser.parse_args()

    frames, source = load_prices(args.days)
    trading_days = frames["GSPC"]["date"].tail(args.days).to_list()
    print(f"prices: {source}; {len(trading_days)} days x {len(TICKERS)} tickers")

    started = time.perf_counter()
    load_minilm()
    print(f"embedder load (once per process): {time.perf_counter() - started:.2f} s")

    llm = DeterministicAnalystLLM()
    started = time.perf_counter()
    graph = build_report_graph(llm)
    print(f"graph compile (once per process): {1000 * (time.perf_counter() - started):.1f} ms")

    base_inputs = {
        (day, ticker): build_inputs(frames, ticker, day, i, "3")
        for i, day in enumerate(trading_days)
        for ticker in TICKERS
    }

    # No cache at all: the graph alone (what every cold report pays, plus the cache's own cost).
    no_cache = []
    for inputs in list(base_inputs.values())[:60]:
        t0 = time.perf_counter()
        write_report(inputs, llm, graph=graph)
        no_cache.append(1000 * (time.perf_counter() - t0))

    folder = args.qdrant_path or Path(tempfile.mkdtemp(prefix="bench_qdrant_"))
    cache = ReportCache(path=folder)
    cold, failures = [], 0
    for (_day, _ticker), inputs in base_inputs.items():
        t0 = time.perf_counter()
        result = write_report(inputs, llm, cache=cache, graph=graph)
        cold.append(1000 * (time.perf_counter() - t0))
        assert not result.cache_hit
        q = check_report_quality(
            result.markdown, result.verdict, inputs, result.critic_approved, result.author
        )
        failures += not q.passed
    cold_stats = (cache.stats.hits, cache.stats.misses, cache.stats.stores)

    # Replay after 3 tickers were retrained for the second half of the window.
    cache.stats.hits = cache.stats.misses = 0
    cached, replay_miss = [], []
    for i, day in enumerate(trading_days):
        for ticker in TICKERS:
            retrained = ticker in RETRAINED and i >= len(trading_days) // 2
            inputs = (
                build_inputs(frames, ticker, day, i, "4")
                if retrained
                else base_inputs[(day, ticker)]
            )
            t0 = time.perf_counter()
            result = write_report(inputs, llm, cache=cache, graph=graph)
            elapsed = 1000 * (time.perf_counter() - t0)
            (cached if result.cache_hit else replay_miss).append(elapsed)
            assert result.cache_hit != retrained, (day, ticker)
    expected_hits = len(base_inputs) - len(RETRAINED) * (len(trading_days) - len(trading_days) // 2)
    cache.close()
    if args.qdrant_path is None:
        shutil.rmtree(folder, ignore_errors=True)

    embed_ms = []
    texts = [inputs.cache_query_text() for inputs in list(base_inputs.values())[:30]]
    for text in texts:
        t0 = time.perf_counter()
        cache.embedder.embed([text])
        embed_ms.append(1000 * (time.perf_counter() - t0))

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead_url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    chosen = make_report_llm(dead_url, "llama3.2")
    probe_ms = 1000 * (time.perf_counter() - t0)
    ollama = OllamaReportLLM(dead_url, "llama3.2")
    ollama_graph = build_report_graph(ollama)
    first = next(iter(base_inputs.values()))
    t0 = time.perf_counter()
    fallback = write_report(first, ollama, graph=ollama_graph)
    fallback_ms = 1000 * (time.perf_counter() - t0)
    t0 = time.perf_counter()
    write_report(first, llm, graph=graph)
    same_report_ms = 1000 * (time.perf_counter() - t0)

    print(
        f"\nreports: {len(base_inputs)} cold + {len(base_inputs)} replayed; "
        f"quality failures: {failures}"
    )
    print(f"{'path':<34}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}")
    for name, values in (
        ("graph only (no cache)", no_cache),
        ("cold: miss + graph + store", cold),
        ("cached: hit", cached),
        ("replay miss (new model version)", replay_miss),
    ):
        print(
            f"{name:<34}{len(values):>5}"
            f"{statistics.median(values):>10.2f}{pct(values, 0.95):>10.2f}"
        )
    speedup = statistics.median(cold) / statistics.median(cached)
    print(f"cached vs cold p50 speed-up: {speedup:.1f}x")
    print(f"daily run: hits/misses/stores = {cold_stats[0]}/{cold_stats[1]}/{cold_stats[2]}")
    print(
        f"replay hit rate: {cache.stats.hits}/{cache.stats.lookups} = {cache.stats.hit_rate:.1%} "
        f"(expected {expected_hits}/{len(base_inputs)} = {expected_hits / len(base_inputs):.1%}: "
        f"{', '.join(RETRAINED)} retrained for the last "
        f"{len(trading_days) - len(trading_days) // 2} days)"
    )
    print(f"MiniLM embedding of one request: p50 {statistics.median(embed_ms):.2f} ms")
    print(
        f"Ollama configured, no server: make_report_llm probe -> {chosen.name} "
        f"in {probe_ms:.1f} ms; "
        f"past the probe, the real ChatOllama raised and the report fell back to {fallback.author} "
        f"in {fallback_ms:.1f} ms (deterministic alone: {same_report_ms:.1f} ms)"
    )
    print("  event:", next(e for e in fallback.events if "unavailable" in e)[:100])


if __name__ == "__main__":
    main()
